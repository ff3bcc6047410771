# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: demo test bench clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

# torch==2.13.0 first: it is the CPU build on these machines, and it satisfies the [clip] extra
# (a torch requirement it does not satisfy would pull several GB of CUDA packages).
$(VENV)/.test: $(VENV)/.base
	$(PIP) torch==2.13.0
	$(PIP) -e '.[clip,test]'
	touch $@

demo: $(VENV)/.base
	$(BIN)/laionsearch demo

# The browser test drives Debian's Chromium; it is skipped, saying why, where that cannot be installed.
test: $(VENV)/.test
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium >/dev/null) || echo "Chromium could not be installed: browser test skipped"
	$(BIN)/python -m pytest

bench: $(VENV)/.test
	$(PIP) -e '.[bench]'
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) laionsearch-data laionsearch-demo
