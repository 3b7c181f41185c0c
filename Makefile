# The whole set-up is two commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
SANDBOX_PORT ?= 5001

.PHONY: run test lint format bench stack load install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a requirements file changed.
# rapidocr-onnxruntime declares opencv-python, whose cv2 would overwrite opencv-python-headless's: it is
# installed without its dependencies (the others are in requirements.txt), and the install fails if a
# second OpenCV got in anyway.
$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt requirements-nodeps.txt constraints.txt
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt -c constraints.txt
	@! $(BIN)/pip show -q opencv-python opencv-contrib-python 2>/dev/null || \
		{ echo "opencv-python is installed beside opencv-python-headless: remove both, then make install"; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# The embedded mode: SQLite under var/, in-process Redis, worker in-process; the WeChat sandbox in a
# process of its own on SANDBOX_PORT (WeChat is another system: its calls must never wait for the
# service's threads). Ctrl-C stops both.
run: export SANDBOX ?= 1
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: export SANDBOX_URL ?= http://$(HOST):$(SANDBOX_PORT)
run: export LOG_FORMAT ?= text
run: $(STAMP)
	@mkdir -p var
	@printf '# written by make run: `flask --app wsgi ...` beside it reads these\nSANDBOX=%s\nPUBLIC_BASE_URL=%s\nSANDBOX_URL=%s\n' \
		"$$SANDBOX" "$$PUBLIC_BASE_URL" "$$SANDBOX_URL" > var/run.env
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo load
	@trap 'kill -INT $$sandbox 2>/dev/null; wait $$sandbox 2>/dev/null' EXIT; \
	$(BIN)/gunicorn -c gunicorn_sandbox.conf.py --bind $(HOST):$(SANDBOX_PORT) 'app.sandbox.server:create_app()' & \
	sandbox=$$!; \
	until $(BIN)/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
			"$$SANDBOX_URL/healthz" 2>/dev/null; do \
		kill -0 $$sandbox 2>/dev/null || { echo "the WeChat sandbox did not start: is port $(SANDBOX_PORT) free?"; exit 1; }; \
		sleep 0.2; \
	done; \
	echo "WeChat sandbox (phone, emulated WeChat and WeChat Pay): $$SANDBOX_URL/_sandbox/"; \
	echo "Service (student H5 pages, staff review, /wechat):       $$PUBLIC_BASE_URL/review/"; \
	$(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

# Uses DATABASE_URL / REDIS_URL when set (PostgreSQL and Redis), the embedded defaults otherwise.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/wechat_endpoint.py

# The production shape on this machine: nginx, two app hosts (gunicorn + outbox worker each), PostgreSQL
# (database `stack`, recreated), Redis (db 14, flushed), moto's S3 and the WeChat sandbox, each a process
# of its own (bench/stack.py, README "Production shape"). Ctrl-C stops everything.
stack: $(STAMP)
	$(BIN)/python bench/stack.py $(STACK_ARGS)

# The whole journey under load against a running `make stack`, then the audit (bench/load_journey.py).
load: $(STAMP)
	$(BIN)/python bench/load_journey.py $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
