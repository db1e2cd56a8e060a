# stratum-operator: the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)

PACKAGES := packages/sharelog/src packages/stratum-sim/src images/writer/src images/proxy/src operator/src

.PHONY: help provision provision-demo demo test test-fast test-e2e lint fmt bench bench-writer bench-retention bench-proxy bench-operator bench-vitess bench-images images test-images vitess-schema chart-crd clean

help:
	@echo "make demo         run the share pipeline on embedded defaults (SQLite)"
	@echo "make test         provision what the tests need, lint, then run every test"
	@echo "make test-e2e     the operator against a real control plane (helm, CRD, RBAC)"
	@echo "make lint         ruff + mypy --strict + hadolint"
	@echo "make bench        every benchmark; JSON lines in bench/results/"
	@echo "make images       build the proxy, writer and operator images with buildah"

provision:
	@bash tools/provision.sh

# the demo needs Python, our packages and SQLite only: no Go, no servers
provision-demo:
	@bash tools/provision.sh demo

demo: provision-demo
	$(PY) -m demo

test: provision lint
	$(PY) -m pytest -q

test-fast: provision
	$(PY) -m pytest -q -m "not slow"

# The real-control-plane suite alone: the chart, the CRD, the operator end to end.
test-e2e: provision
	$(PY) -m pytest -q tests/operator tests/e2e

lint: provision
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint $(wildcard images/*/Dockerfile operator/Dockerfile)
	$(VENV)/bin/mypy $(PACKAGES) tests bench demo

fmt: provision
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: bench-writer bench-retention bench-proxy bench-operator bench-vitess bench-images

bench-writer: provision
	PYTHONPATH=tests $(PY) -m bench.writer

bench-retention: provision
	PYTHONPATH=tests $(PY) -m bench.retention

bench-proxy: provision
	PYTHONPATH=tests $(PY) -m bench.proxy

bench-operator: provision
	PYTHONPATH=tests $(PY) -m bench.operator

bench-vitess: provision
	PYTHONPATH=tests $(PY) -m bench.vitess

bench-images: provision
	PYTHONPATH=tests $(PY) -m bench.images

# The proxy, writer and operator images, with buildah (no Docker engine needed); when the
# public base can't be pulled, a debootstrap stand-in is tagged under its name first.
images: provision
	bash tools/build-images.sh

# The images built and run as a pod runs them (part of `make test` too).
test-images: provision
	$(PY) -m pytest -q tests/images

# vitess/schema.sql (the MySQL migration history flattened) and vitess/vschema.json come
# from the writer package; tests fail when they drift.
# the chart carries a copy of the one CRD definition (helm warns on a symlink)
chart-crd:
	cp crds/stratumpools.stratum.io.yaml charts/stratum-operator/files/

vitess-schema: provision
	$(PY) -m stratum_writer.cli export-vitess vitess

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache bench/results/*.json
