# HCRM — two commands on a fresh machine: `make run` and `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PATIENTS ?= 2000

.PHONY: run test bench lint format messages check-messages venv clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

.env:
	@echo "Writing .env for the embedded default (SQLite, no other server)."
	@printf 'DEBUG=true\nSECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env

## Start HCRM with a demo hospital: web app on http://$(HOST):$(PORT) and a Celery worker with beat.
run: venv .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --patients $(DEMO_PATIENTS)
	@echo "Starting the web app on http://$(HOST):$(PORT) and background work (Ctrl-C stops both)."
	@trap 'kill 0' INT TERM EXIT; \
	$(VENV)/bin/celery -A hcrm worker --beat --pool=solo --queues=default,messages,hl7 --loglevel=INFO & \
	$(PY) manage.py runserver $(HOST):$(PORT)

## Run the whole test suite (PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set; SQLite otherwise).
test: venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## Measure performance on PostgreSQL and write docs/benchmarks.md.
bench: venv
	$(PY) -m bench.run $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Refresh the translation catalogues after changing user-facing strings, then compile them.
messages: venv
	$(PY) manage.py makemessages --locale zh_Hans --ignore '.venv/*' --ignore 'var/*' --no-obsolete
	$(PY) manage.py compilemessages --ignore '.venv/*'

## Fail when the committed .mo files do not match the .po files.
check-messages: venv
	$(PY) manage.py compilemessages --ignore '.venv/*' > /dev/null
	git diff --exit-code -- locale

clean:
	rm -rf var/cache var/broker .pytest_cache
