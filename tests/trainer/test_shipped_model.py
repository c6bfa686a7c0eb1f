"""Regression test: the embedded student keeps the accuracy its model card reports."""

import json
from pathlib import Path

from okpose.core.spec import ModelSpec
from service.settings import DEFAULT_POSE_MODEL
from trainer.card import CI_SUBSET
from trainer.cli_eval import onnx_predictor
from trainer.data import load_coco
from trainer.evaluate import coco_ap, predict_records

CARD = DEFAULT_POSE_MODEL.with_suffix(".card.json")
MARGIN = 0.02


def test_model_card_belongs_to_the_shipped_model():
    import onnxruntime as ort

    card = json.loads(CARD.read_text())
    meta = ort.InferenceSession(str(DEFAULT_POSE_MODEL), providers=["CPUExecutionProvider"]).get_modelmeta()
    spec = ModelSpec.from_metadata(meta.custom_metadata_map)
    assert card["spec"]["version"] == spec.version and card["spec"]["name"] == spec.name
    assert (Path(DEFAULT_POSE_MODEL).parent / "MODEL_CARD.md").read_text().count(spec.version) >= 1


def test_shipped_student_ap_on_held_out_subset(data_root):
    card = json.loads(CARD.read_text())
    ann = data_root / "annotations" / "person_keypoints_val.json"
    records = load_coco(ann, data_root / "images")[:CI_SUBSET]
    predict, spec = onnx_predictor(str(DEFAULT_POSE_MODEL))
    kps = predict_records(predict, records, spec, flip_test=True)["onnx"]
    ap = coco_ap(str(ann), records, kps)["AP"]
    assert ap >= card["ci_subset"]["AP"] - MARGIN, f"AP {ap:.3f} < card {card['ci_subset']['AP']:.3f} - {MARGIN}"


def test_served_configuration_keeps_its_accuracy(data_root):
    """What users get: the service's frame path with its defaults (NanoDet boxes, no flip, default
    thresholds) on the CI subset's images, against the card's figure for the same configuration."""
    from trainer.peers import evaluate_served

    card = json.loads(CARD.read_text())["served_ci_subset"]
    ann = data_root / "annotations" / "person_keypoints_val.json"
    records = load_coco(ann, data_root / "images")[:CI_SUBSET]
    res = evaluate_served(DEFAULT_POSE_MODEL, ann, data_root / "images", {r.image_id for r in records})
    assert res["images"] == card["images"]
    assert res["AP"] >= card["AP"] - MARGIN, f"served AP {res['AP']:.3f} < card {card['AP']:.3f} - {MARGIN}"
