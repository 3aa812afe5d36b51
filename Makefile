# make demo  - set up everything, then run the simulated locker with a scripted load and pickup
# make test  - set up everything, then ruff, mypy and pytest
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test lint typecheck pytest bench clean

setup:
	@VENV=$(VENV) bash scripts/bootstrap.sh

demo: setup
	$(PY) -m locker.demo

test: setup lint typecheck pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(VENV)/bin/pytest

bench: setup
	$(PY) bench/pickup_latency.py
	$(PY) bench/outbox_drain.py --events 100000
	$(PY) bench/ticket_size.py
	$(PY) bench/ticket_rtt.py
	$(PY) bench/identity_latency.py --card idcard --samples 500
	$(PY) bench/fuzz_ga467.py --examples 100000
	$(PY) bench/fuzz_scanner.py --examples 100000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis demo-data
