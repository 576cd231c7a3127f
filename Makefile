# Two entry points for people: `make demo` and `make test` (see README.md).
# A system Python builds the venv, so an ordinary user can run it (a pyenv shim under root's
# home could not be entered by the test user).
PYTHON ?= $(shell command -v /usr/bin/python3 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test venv venv-test bench compat lint clean

demo: venv
	$(VENV)/bin/python -m vufuse.demo

test:
	tools/run-tests.sh

bench: venv-test
	@if [ "$$(id -u)" -eq 0 ]; then tools/install-deps.sh test && tools/fetch-libfuse-examples.sh; fi
	$(VENV)/bin/python -m benchmarks

compat: venv-test
	@if [ "$$(id -u)" -eq 0 ]; then compat-tests/setup.sh; fi
	$(VENV)/bin/python compat-tests/run.py --backend all

lint: venv-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

venv:
	@tools/install-deps.sh build
	@$(MAKE) --no-print-directory $(STAMP) EXTRAS=

venv-test:
	@$(MAKE) --no-print-directory $(STAMP)-test EXTRAS=test,bench

$(STAMP) $(STAMP)-test: pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip "setuptools>=77"
	$(VENV)/bin/pip install -q --disable-pip-version-check -e ".$(if $(EXTRAS),[$(EXTRAS)])"
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info hypervisor/_tracer*.so
