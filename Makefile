# One-command set-up on a fresh machine: `make demo` (main job) and `make test` (test suite).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vidpop-installed

.PHONY: setup demo test lint bench clean browser models serve report

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: this spec takes the local CPU wheel instead of a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/vidpop demo

test: setup browser
	$(PY) -m pytest -q

# Debian's headless Chromium for the Playwright browser test (no browser downloads: the distribution's package).
# If it cannot be installed (no root, no sudo) the suite still runs and the browser test says why it skipped.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "WARNING: could not install Debian's chromium: tests/test_browser.py will be skipped"

# The default model bundle behind `vidpop predict/explain/recommend/serve models`, trained on the real data.
# views: the best popularity model on validation (`vidpop train best`: LightGBM default/tuned, retrieval
# features off/on; the winner and its validation metrics in popularity/selection.json); likes, comments,
# the experts' shares and the title what-if (paired samples): the variational PoE.
MODELS ?= models
models: setup
	$(VENV)/bin/vidpop train best --data microlens --trials 20 --out $(MODELS)/popularity
	$(VENV)/bin/vidpop train variational_poe --data microlens --set kl_weight=0.01 --set n_hidden=2 --out $(MODELS)/poe
	$(VENV)/bin/vidpop train attention_explain --data youtube_views_subscribers_2025 --out $(MODELS)/explain
	$(VENV)/bin/vidpop train rec_itemknn --data microlens --out $(MODELS)/itemknn
	$(VENV)/bin/vidpop train rec_cb --data microlens --out $(MODELS)/cb

serve: setup
	@test -d $(MODELS) || { echo "no $(MODELS)/ yet: run 'make models' first"; exit 2; }
	$(VENV)/bin/vidpop serve --models $(MODELS)

report: setup
	$(VENV)/bin/vidpop report --data microlens --out runs/report

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

bench: setup
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
