# Host-side set-up, tests and device tools. GNU make.
# Needs only python3 (3.11, with venv), node 20 and npm; everything else is installed
# into .venv/ (requirements-dev.txt) and node_modules/ (package-lock.json).

PYTHON     ?= python3
VENV       := .venv
VPY        := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

PORT        ?= /dev/ttyUSB0
FIRMWARE    ?=
PYTEST_ARGS ?=    # e.g. make test PYTEST_ARGS="-k mpy -x"
DEMO_ARGS   ?=
CONFIG      ?=
SOAK_ARGS   ?=    # e.g. make soak SOAK_ARGS="--heap-kb 96 --slots 4000"

.PHONY: setup test bench soak demo flash deploy clean

setup: $(VENV_STAMP) $(NODE_STAMP)

$(VENV_STAMP): requirements-dev.txt
	@$(PYTHON) -c 'import venv, ensurepip' || { echo "error: $(PYTHON) lacks venv/ensurepip (Debian: apt-get install python3-venv)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $@

test: setup
	$(VPY) -m pytest host_tests -q $(PYTEST_ARGS)

bench: setup
	$(VPY) tools/bench.py

soak: setup
	$(VPY) tools/soak.py $(SOAK_ARGS)

demo: setup
	$(VPY) tools/demo.py $(DEMO_ARGS)

flash: $(VENV_STAMP)
	@test -n "$(FIRMWARE)" || { echo "usage: make flash PORT=/dev/ttyUSB0 FIRMWARE=ESP32_GENERIC-v1.29.0.bin" >&2; exit 2; }
	$(VPY) tools/flash.py --port $(PORT) --firmware $(FIRMWARE)

deploy: $(VENV_STAMP)
	$(VPY) tools/deploy.py --port $(PORT) $(if $(CONFIG),--config $(CONFIG))

clean:
	rm -rf $(VENV) node_modules build
