# make demo  - set up everything, then run the kiosk (embedded hall, simulated devices) with lockerd
#              on a simulated lock board; HEADLESS=1 (or no $DISPLAY) plays a scripted journey under
#              Xvfb and writes screenshots to $(DEMO_SCREENS)
# make demo-locker - lockerd alone with a scripted load and pickup, in the terminal
# make test  - set up everything, then ruff, mypy and pytest
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo demo-locker test lint typecheck pytest bench clean
DEMO_SCREENS ?= demo-screens
HEADLESS ?= $(if $(DISPLAY),0,1)

setup:
	@VENV=$(VENV) bash scripts/bootstrap.sh

demo: setup
ifeq ($(HEADLESS),1)
	xvfb-run -a -s "-screen 0 1080x1920x24" $(PY) -m kiosk.demo --headless $(DEMO_SCREENS)
else
	$(PY) -m kiosk.demo
endif

demo-locker: setup
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
	xvfb-run -a -s "-screen 0 1080x1920x24" $(PY) bench/kiosk_start.py
	$(PY) bench/identity_latency.py --card idcard --samples 500
	$(PY) bench/fuzz_ga467.py --examples 100000
	$(PY) bench/fuzz_scanner.py --examples 100000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis demo-data $(DEMO_SCREENS)
