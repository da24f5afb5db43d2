# make demo: set up (once) and run the main job on the bundled sample with the CPU defaults.
# make test: set up (once) and run the fast CPU test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_OUT ?= runs/demo

.PHONY: install test demo lint clean

install: $(STAMP)

# torch first and always under constraints.txt: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python -m dreamdance.run stage=motion out=$(DEMO_OUT)
	$(BIN)/python -m dreamdance.run stage=scene out=$(DEMO_OUT)
	$(BIN)/python -m dreamdance.run stage=animate model=preview out=$(DEMO_OUT)
	@echo "demo: see $(DEMO_OUT)/motion/preview.png, $(DEMO_OUT)/scene/preview.png and"
	@echo "      $(DEMO_OUT)/animate/animation.mp4 (model=preview: the layout check, no diffusion)."
	@echo "The diffusion model runs as: python -m dreamdance.run stage=animate model=cogvideox \\"
	@echo "  out=$(DEMO_OUT) device=cuda weights.cogvideox=DIR weights.clip=DIR model.transformer=DIR"
	@echo "(local folders; no trained DreamDance weights exist: train one with stage=train, see the README)."

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
