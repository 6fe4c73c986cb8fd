# Dibao — developer and CI entry points. `make` alone lists the targets.
#
# Everything a developer or CI needs is installed from here: the Python
# environment (`venv`) and the Debian packages (`sysdeps`). CI runs
# `bash .ci/run`, which starts RabbitMQ/PostgreSQL if needed and then `make test`.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.11 (pyproject: requires-python >=3.11,<3.12); fall back to python3.
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
STAMP := $(VENV)/.installed

# Debian packages the project needs, at run time and in tests: one list, which
# both `make run` and `make test` install (`sysdeps`); `dibao doctor` checks
# that every run-time file they provide is there (cli/doctor.py).
#   fonts-wqy-zenhei — a TrueType CJK font the printable notice PDFs (公示)
#   embed (reportlab cannot embed the CFF/OpenType fonts of fonts-noto-cjk).
#   chromium, chromium-driver — the headless browser (and its WebDriver) the
#   console's tests drive (tests/browser_helpers.py); not needed to run.
DEB_PACKAGES := fonts-wqy-zenhei chromium chromium-driver
# Of those, the ones only the tests use: the service image (Dockerfile) leaves them out.
DEB_TEST_ONLY := chromium chromium-driver

# Extra arguments for pytest, e.g. `make test PYTEST_ARGS='-m "not integration" -x'`.
PYTEST_ARGS ?=

.PHONY: help venv sysdeps run test bench screenshots clean

help: ## list the targets
	@echo "Dibao make targets:"
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
	  sed -E 's/^([^:]+):.*## (.*)$$/  \1\t\2/' | expand -t 12

venv: $(STAMP) ## create .venv and install the project with its test extras (quick when nothing changed)

$(STAMP): pyproject.toml constraints.txt
	@if [ ! -x $(VENV)/bin/python ]; then \
	  echo "venv: creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version 2>&1))"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	@echo "venv: installing the project (-c constraints.txt -e '.[test]')"
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[test]'
	@touch $@

sysdeps: ## install the Debian packages in DEB_PACKAGES that are missing
	@if ! command -v dpkg >/dev/null 2>&1; then \
	  echo "sysdeps: no dpkg here (not Debian?): make sure these are installed: $(DEB_PACKAGES)"; \
	  exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "sysdeps: all present ($(DEB_PACKAGES))"; exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  echo "sysdeps: missing:$$missing — not root, so not installing; run:"; \
	  echo "  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$$missing"; \
	  exit 0; \
	fi; \
	echo "sysdeps: installing$$missing"; \
	apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing </dev/null

run: venv sysdeps ## install what the services need (DEB_PACKAGES), check it (dibao doctor), set up the broker's users (dibao broker setup), run every service (dibao up)
	@$(VENV)/bin/dibao doctor || echo "run: something above is missing; the services run anyway (notice PDFs wait for the font)"
	$(VENV)/bin/dibao broker setup
	$(VENV)/bin/dibao up

# The suite runs as TEST_SHARDS pytest processes side by side (tests/shards.py: files
# shared out on their seconds in tests/durations.json; TEST_SHARDS=1 is plain pytest).
TEST_SHARDS ?= 2

test: venv sysdeps ## run the test suite as TEST_SHARDS processes (PYTEST_ARGS=... appended to each)
	TEST_SHARDS=$(TEST_SHARDS) $(VENV)/bin/python tests/shards.py $(PYTEST_ARGS)

screenshots: venv sysdeps ## retake the console's screenshots in docs/console/ (the browser tests, in headless Chromium)
	DIBAO_SCREENSHOTS_DIR=$(CURDIR)/docs/console $(VENV)/bin/python -m pytest -q tests/integration/test_console*.py tests/integration/test_public_pages.py

# Benchmarks are pytest files under bench/ (test_*.py or bench_*.py) that write figures.
bench: venv ## run the benchmarks under bench/
	$(VENV)/bin/python -m pytest bench -q -s -o 'python_files=test_*.py bench_*.py'

clean: ## remove var/ and .venv
	rm -rf var $(VENV)
