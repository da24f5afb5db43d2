# make demo: set up (once) and run the main job on the bundled sample with the CPU defaults.
# make test: set up (once) and run the fast CPU test suite.
# make lock: regenerate requirements.lock from setup.cfg (UPGRADE=1: newest versions of all).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_OUT ?= runs/demo
LOCK_VENV  ?= .venv-lock
PIP_TOOLS  := pip-tools==7.6.2

.PHONY: install test test-slow demo demo-scene app browser lint clean lock

install: $(STAMP)

# Exactly the locked versions (torch's CPU build among them), nothing resolved on the day:
# the venv is made anew whenever the lock or the package metadata changes, and checked.
$(STAMP): setup.cfg pyproject.toml constraints.txt $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) --no-deps --no-build-isolation -r $(LOCK)
	$(PIP) --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	$(BIN)/python -m tools.check_lock lock=$(LOCK)
	touch $(STAMP)

# Resolve setup.cfg (with the test and app extras) under constraints.txt into exact pins. Without
# UPGRADE, pins already in the lock are kept and only what setup.cfg changed is resolved.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
	  $(LOCK_VENV)/bin/python -m pip install --quiet -c constraints.txt $(PIP_TOOLS); }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --extra test --extra app --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	  $(if $(UPGRADE),--upgrade) -c constraints.txt -o $(LOCK) setup.cfg

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the long and multi-process checks make test leaves out (CI runs them after it)
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

demo: $(STAMP)
	$(BIN)/python -m dreamdance.run stage=scene out=$(DEMO_OUT)
	$(BIN)/python -m dreamdance.run stage=animate out=$(DEMO_OUT)
	@echo "demo: see $(DEMO_OUT)/animate/animation.mp4 (model=puppet: the cut-out rigged and posed, no"
	@echo "      weights), its contact sheet $(DEMO_OUT)/animate/preview.png, the rig $(DEMO_OUT)/animate/rig.png,"
	@echo "      $(DEMO_OUT)/motion/preview.png and $(DEMO_OUT)/scene/preview.png."
	@echo "The diffusion model runs as: python -m dreamdance.run stage=animate model=cogvideox \\"
	@echo "  out=$(DEMO_OUT) device=cuda weights.cogvideox=DIR weights.clip=DIR model.transformer=DIR"
	@echo "(local folders; no trained DreamDance weights exist: train one with stage=train, see the README)."

# the bundled sample put into the second bundled scene (scene_image=)
DEMO_SCENE = scene_image=dreamdance/assets/scene.png motion.character_height=0.6 camera=zoom \
	out=runs/demo-scene
demo-scene: $(STAMP)
	$(BIN)/python -m dreamdance.run stage=scene $(DEMO_SCENE)
	$(BIN)/python -m dreamdance.run stage=animate $(DEMO_SCENE)
	@echo "demo-scene: see runs/demo-scene/animate/animation.mp4 and its preview.png"

# the web app on http://127.0.0.1:7860 (APP_ARGS: --host/--port/--runs and key=value overrides)
app: $(STAMP)
	$(BIN)/python -m dreamdance.app $(APP_ARGS)

# Debian's Chromium, which the app's browser test drives (Playwright's own download cannot work
# here); needs root, as in CI
browser:
	command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(LOCK_VENV) build dist *.egg-info .pytest_cache .ruff_cache
