# syntax=docker/dockerfile:1.7
# okpose inference image. Targets:
#   runtime-gpu (default): CUDA 12 + cuDNN 9 runtime, onnxruntime-gpu (CUDA, TensorRT when its libs are present)
#   runtime-cpu          : python slim, onnxruntime (CPU)
# No torch in either runtime. The default person detector (NanoDet, models/nanodet-coco-int8.onnx) is
# part of the build context; a YOLO detector can be exported instead with --build-arg EXPORT_DETECTOR=1
# (needs network; a failed export fails the build).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------- wheels (no torch)
FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY okpose okpose
COPY service service
COPY clients clients
COPY trainer trainer
# the embedded models are part of the okpose wheel (okpose/models: `okpose track` works in the image); the runtime
# stages also keep them at /models, where the settings, compose and k8s manifests point
COPY models models
# CPU: every wheel for this interpreter; GPU: only okpose's own (pure Python) wheel, its dependencies
# resolve in the GPU stage for that image's interpreter
RUN pip wheel --no-cache-dir -c constraints.txt --wheel-dir /wheels/cpu ".[serve]" \
 && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels/okpose .

# ---------------------------------------------------------------- detector export (optional, needs network)
FROM ${PYTHON_IMAGE} AS detector
ARG EXPORT_DETECTOR=0
ARG DETECTOR_WEIGHTS=yolo11n.pt
ARG DETECTOR_IMGSZ=320
ARG TORCH_VERSION=2.5.1
ARG TORCHVISION_VERSION=0.20.1
ARG ULTRALYTICS_VERSION=8.3.40
ARG ONNX_VERSION=1.17.0
WORKDIR /export
COPY deploy/export_detector.py .
# torch CPU wheels keep this stage small; off by default (the image ships NanoDet)
RUN mkdir -p /models \
 && if [ "$EXPORT_DETECTOR" = "1" ]; then \
      pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
          "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" \
      && pip install --no-cache-dir "ultralytics==${ULTRALYTICS_VERSION}" "onnx==${ONNX_VERSION}" \
      && python export_detector.py --weights "$DETECTOR_WEIGHTS" --imgsz "$DETECTOR_IMGSZ" --out /models/yolo11n.onnx; \
    fi

# ---------------------------------------------------------------- CPU runtime
FROM ${PYTHON_IMAGE} AS runtime-cpu
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=1 \
    POSE_HOST=0.0.0.0 POSE_PORT=8000 POSE_THREADS=2 POSE_WORKERS=2 \
    POSE_POSE_MODEL=/models/okpose-movenet.onnx POSE_DETECTOR_MODEL=/models/nanodet-coco-int8.onnx \
    POSE_VIDEO_MODEL=/models/okdhp-movenet-video-int8.onnx
RUN useradd --create-home --uid 10001 okpose
COPY --from=wheels /wheels/cpu /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "$(echo /wheels/okpose-*.whl)[serve]" && rm -rf /wheels
COPY --chown=okpose:okpose models/ /models/
COPY --from=detector --chown=okpose:okpose /models/ /models/
USER 10001:10001
WORKDIR /home/okpose
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["python", "-m", "service"]

# ---------------------------------------------------------------- GPU runtime (default target)
FROM ${CUDA_IMAGE} AS runtime-gpu
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=1 \
    POSE_HOST=0.0.0.0 POSE_PORT=8000 POSE_THREADS=4 POSE_WORKERS=4 POSE_PROVIDERS=auto \
    POSE_POSE_MODEL=/models/okpose-movenet.onnx POSE_DETECTOR_MODEL=/models/nanodet-coco-int8.onnx \
    POSE_VIDEO_MODEL=/models/okdhp-movenet-video-int8.onnx \
    PATH=/opt/venv/bin:$PATH
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && useradd --create-home --uid 10001 okpose
COPY --from=wheels /wheels/okpose /wheels
# dependencies (numpy, opencv, onnxruntime-gpu pinned to the CUDA 12 builds) resolve for this interpreter
RUN pip install --no-cache-dir "$(echo /wheels/okpose-*.whl)[gpu]" && rm -rf /wheels
COPY --chown=okpose:okpose models/ /models/
COPY --from=detector --chown=okpose:okpose /models/ /models/
USER 10001:10001
WORKDIR /home/okpose
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["python", "-m", "service"]
