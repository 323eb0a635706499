# mnist_cnn: every command a user needs. The first one builds .venv from requirements.txt.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The default models: mnist_cnn.config.default_model(DATASET) (tests/test_config.py checks they agree).
DEFAULT_MODEL := models/mnist_cnn.keras
FASHION_MODEL := models/fashion/mnist_cnn.keras
# DATASET=mnist (default) or fashion: every command takes it; outputs for fashion go under
# models/fashion/ and reports/fashion/ (see README, Fashion-MNIST).
DATASET ?=
DATASET_MODEL = $(if $(filter fashion fashion-mnist Fashion-MNIST,$(DATASET)),$(FASHION_MODEL),$(DEFAULT_MODEL))
MODEL  ?= $(DATASET_MODEL)

# Make variables become command-line options only when set, so the CLI's defaults stay the single source.
opt = $(if $(strip $($(1))),$(2) $($(1)))
# Commands that take the data set pass $(DATASET_ARGS); the CLI resolves the default paths
# per data set (mnist_cnn.config.default_model, report_dir).
DATASET_ARGS = $(call opt,DATASET,--dataset)
# Training options except the data set (the default-model rules below name theirs).
RECIPE_ARGS  = $(call opt,EPOCHS,--epochs) $(call opt,BATCH,--batch-size) $(call opt,LR,--lr) \
               $(call opt,MOMENTUM,--momentum) $(call opt,L2,--l2) \
               $(call opt,LABEL_SMOOTHING,--label-smoothing) $(call opt,SEED,--seed) \
               $(call opt,PRECISION,--precision) $(call opt,TRAIN_LIMIT,--train-limit) \
               $(call opt,DATA,--data) $(if $(filter 1 yes true,$(AUGMENT)),--augment,$(if $(filter 0 no false,$(AUGMENT)),--no-augment,$(if $(AUGMENT),--augment=$(AUGMENT))))
TRAIN_ARGS   = $(DATASET_ARGS) $(RECIPE_ARGS)
# CLASS= is an alias of DIGIT= (an index or a name: CLASS=shirt); giving both is an error.
ANALYZE_ARGS = $(DATASET_ARGS) $(if $(DIGIT),--digit "$(DIGIT)") $(if $(CLASS),--class "$(CLASS)") \
               $(call opt,CONTRAST,--contrast) $(call opt,SAMPLES,--samples) \
               $(call opt,CMAP,--cmap) $(call opt,LAYERS,--layers) $(call opt,OUT,--out) \
               --model "$(MODEL)" $(call opt,DATA,--data)
OIP_ARGS     = $(DATASET_ARGS) --layer "$(LAYER)" $(call opt,STEPS,--steps) $(call opt,SEED,--seed) \
               $(call opt,MAPS,--maps) $(call opt,OUT,--out) --model "$(MODEL)" $(call opt,DATA,--data)
PREDICT_ARGS = $(DATASET_ARGS) $(call opt,CONTRAST,--contrast) $(call opt,THRESHOLD,--threshold) \
               $(call opt,OUT,--out) --model "$(MODEL)" $(call opt,DATA,--data)
CONCEPTS_ARGS = $(DATASET_ARGS) $(call opt,OUT,--out) $(call opt,IMAGES,--images) \
               $(call opt,SEEDS,--seeds) $(call opt,PERMUTATIONS,--permutations) --model "$(MODEL)" \
               $(call opt,DATA,--data)
EXPLORE_ARGS = $(DATASET_ARGS) $(call opt,OUT,--out) $(call opt,STEPS,--steps) \
               $(call opt,STARTS,--starts) $(call opt,SEED,--seed) --model "$(MODEL)" $(call opt,DATA,--data)

.PHONY: help venv train evaluate analyze oip explore concepts predict notebook experiments experiment info bench test clean
.DEFAULT_GOAL := help

help:
	@echo "make COMMAND [VARIABLE=value ...]; train, evaluate, analyze, oip, explore take DATASET=mnist|fashion DATA=file.npz, all but train MODEL=path.keras"
	@echo "  train        train the CNN -> models/ (mnist_cnn.keras, metrics.json, figures; fashion: models/fashion/)"
	@echo "               EPOCHS= BATCH= LR= MOMENTUM= L2= LABEL_SMOOTHING= SEED= PRECISION= AUGMENT=0|1 TRAIN_LIMIT="
	@echo "  evaluate     test accuracy and confusion matrix of MODEL -> printed"
	@echo "  analyze      DIGIT=4 (or CLASS=shirt) [CONTRAST= SAMPLES= CMAP= LAYERS= OUT=] -> reports/digit-4/index.html"
	@echo "  oip          LAYER=conv_3 [STEPS= SEED= MAPS=0,5,17 OUT=] -> reports/oip/conv_3.png and .npz"
	@echo "  explore      [STEPS= STARTS= SEED= OUT=] one page per unit, a draw page -> reports/explorer/index.html, draw.html"
	@echo "  concepts     [IMAGES= SEEDS= PERMUTATIONS= OUT=] which human concepts (loops, thickness, slant...) the layers carry -> reports/concepts/index.html"
	@echo "  predict      IMAGE=digit.png (several: IMAGE=\"a.png b.jpg\") [CONTRAST= THRESHOLD= OUT=] -> reports/predict/<name>/index.html"
	@echo "  notebook     open notebooks/tour.ipynb in Jupyter: the series in order, on your own network"
	@echo "  experiments  all four filter experiments -> reports/experiments/<name>/"
	@echo "  experiment   NAME=single-image|lines|reference|two-runs -> reports/experiments/NAME/"
	@echo "  info         layers, shapes, parameters, receptive fields -> printed"
	@echo "  bench        speed and accuracy vs the keras-io example [BENCH_SEEDS=3] -> bench/results.json"
	@echo "  test         the test suite [TEST_WORKERS=2] -> printed"
	@echo "  venv         build .venv from requirements.txt (every command does this first) -> .venv/"
	@echo "  clean        remove reports/, bench/results.json, models/logs, models/backup, and the hidden"
	@echo "               temporary files a killed run left in models/ and bench/"
	@echo "  help         this list"
	@echo "analyze, oip, explore and predict first train the default model when it is missing: models/mnist_cnn.keras (fashion: models/fashion/)."
	@echo "Your own model: MODEL=my.keras on evaluate, analyze, oip, explore, predict, info (docs/own-model.md)."
	@echo "Guides: README.md and docs/."

# The stamp is written only after every requirement imports at its pinned version
# (mnist_cnn/envcheck.py). pip records a package before all its files are in place, so a make
# killed during pip can leave a .venv that pip calls "satisfied"; one that fails the check is
# built afresh. PIP_ARGS passes options to pip (tests use a local wheel folder), VENV_ARGS to
# `python -m venv` (e.g. --system-site-packages).
PIP_INSTALL = $(PY) -m pip install --quiet $(PIP_ARGS) --upgrade pip && \
              $(PY) -m pip install --quiet $(PIP_ARGS) -r requirements.txt
ENVCHECK    = TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m mnist_cnn.envcheck requirements.txt 2>/dev/null
venv: $(STAMP)
$(STAMP): requirements.txt
	@rm -f $@
	@if test -x $(PY) && $(PIP_INSTALL) && $(ENVCHECK); then :; else \
	  if test -e $(VENV); then echo "make: $(VENV) is incomplete; building it afresh" >&2; rm -rf $(VENV); fi; \
	  echo "make: building $(VENV) from requirements.txt" >&2; \
	  $(PYTHON) -m venv $(VENV_ARGS) $(VENV) && $(PIP_INSTALL) && TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m mnist_cnn.envcheck requirements.txt; \
	fi
	@touch $@

train: $(STAMP)
	$(PY) -m mnist_cnn train $(TRAIN_ARGS)

# Each data set's default model is built by its default training when it is missing.
$(DEFAULT_MODEL): | $(STAMP)
	$(PY) -m mnist_cnn train --dataset mnist $(RECIPE_ARGS)

$(FASHION_MODEL): | $(STAMP)
	$(PY) -m mnist_cnn train --dataset fashion $(RECIPE_ARGS)

evaluate: $(STAMP)
	$(PY) -m mnist_cnn evaluate $(DATASET_ARGS) --model "$(MODEL)" $(call opt,DATA,--data)

# Arguments are checked first (no TensorFlow, instant), so a typo never starts a training run.
analyze: $(STAMP)
	@$(PY) -m mnist_cnn analyze $(ANALYZE_ARGS) --check-only
	@if [ "$(MODEL)" = "$(DATASET_MODEL)" ]; then $(MAKE) --no-print-directory $(DATASET_MODEL); fi
	$(PY) -m mnist_cnn analyze $(ANALYZE_ARGS)

oip: $(STAMP)
	@$(PY) -m mnist_cnn oip $(OIP_ARGS) --check-only
	@if [ "$(MODEL)" = "$(DATASET_MODEL)" ]; then $(MAKE) --no-print-directory $(DATASET_MODEL); fi
	$(PY) -m mnist_cnn oip $(OIP_ARGS)

# A static site with one page per unit; the arguments (OUT, MODEL, DATA) are checked first.
# DATASET=fashion: the Fashion-MNIST model's site in reports/fashion/explorer.
explore: $(STAMP)
	@$(PY) -m mnist_cnn explore $(EXPLORE_ARGS) --check-only
	@if [ "$(MODEL)" = "$(DATASET_MODEL)" ]; then $(MAKE) --no-print-directory $(DATASET_MODEL); fi
	$(PY) -m mnist_cnn explore $(EXPLORE_ARGS)

# Which human concepts the network uses (docs/concepts.md); measurements are cached per data set.
concepts: $(STAMP)
	@$(PY) -m mnist_cnn concepts $(CONCEPTS_ARGS) --check-only
	@if [ "$(MODEL)" = "$(DATASET_MODEL)" ]; then $(MAKE) --no-print-directory $(DATASET_MODEL); fi
	$(PY) -m mnist_cnn concepts $(CONCEPTS_ARGS)

# Your own image(s): IMAGE="a.png b.jpg" for several. The images and arguments are checked
# first (Pillow, no TensorFlow), so a bad file never starts a training of the default model.
predict: $(STAMP)
	@if [ -z "$(IMAGE)" ]; then echo "make predict: give IMAGE=path/to/digit.png (several: IMAGE=\"a.png b.png\")" >&2; exit 2; fi
	@$(PY) -m mnist_cnn predict $(IMAGE) $(PREDICT_ARGS) --check-only
	@if [ "$(MODEL)" = "$(DATASET_MODEL)" ]; then $(MAKE) --no-print-directory $(DATASET_MODEL); fi
	$(PY) -m mnist_cnn predict $(IMAGE) $(PREDICT_ARGS)

# The tour notebook (docs/notebook.md) in Jupyter: the one in .venv first (its kernel has the
# project's packages), else one on PATH. Jupyter is not a requirement: without it, say how to add it.
NOTEBOOK := notebooks/tour.ipynb
notebook: $(STAMP)
	@for j in $(VENV)/bin/jupyter-lab $(VENV)/bin/jupyter-notebook \
	          "$$(command -v jupyter-lab)" "$$(command -v jupyter-notebook)"; do \
	  if test -n "$$j" && test -x "$$j"; then echo "make notebook: $$j $(NOTEBOOK)"; exec "$$j" $(NOTEBOOK); fi; \
	done; \
	echo "make notebook: Jupyter is not installed; install it with \`$(VENV)/bin/pip install jupyterlab\`, then run \`make notebook\` again"

experiments: $(STAMP)
	$(PY) -m mnist_cnn experiment all

experiment: $(STAMP)
	$(PY) -m mnist_cnn experiment "$(NAME)"

# MODEL=path.keras: that model's layers (any accepted model, docs/own-model.md); default the
# series' network, untrained.
info: $(STAMP)
	$(PY) -m mnist_cnn info $(if $(filter command line environment,$(origin MODEL)),--model "$(MODEL)")

bench: $(STAMP)
	$(PY) -m mnist_cnn bench $(call opt,BENCH_SEEDS,--seeds)

# Two workers (pytest-xdist): most tests keep one core busy. Tests that share a trained fixture
# stay in one worker (tests/conftest.py), so each fixture is trained once. TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

# The hidden temporaries of killed writes (mnist_cnn/leftovers.py, standard library only: no
# .venv needed); each run removes those of dead writers beside what it writes.
clean:
	rm -rf reports bench/results.json models/logs models/backup
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m mnist_cnn.leftovers models bench
