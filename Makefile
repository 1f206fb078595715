# The only two commands a new user needs: `make demo` and `make test`. Each does its own set-up on a fresh Debian
# machine: Debian packages for the real peers the tests run against, and a project-local virtualenv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := mosquitto mosquitto-clients influxdb chromium python3-venv openipmi libopenipmi-dev ipmitool gcc libfaketime debootstrap \
	prometheus-alertmanager
# The programs those packages provide, checked first so that a machine that has them needs no apt run.
APT_PROGRAMS := /usr/sbin/mosquitto /usr/bin/mosquitto_pub /usr/bin/influxd /usr/bin/chromium /usr/bin/ipmi_sim /usr/bin/ipmitool \
	/usr/bin/gcc /usr/include/OpenIPMI/mcserv.h /usr/sbin/debootstrap /usr/bin/prometheus-alertmanager
# libfaketime (the clock-step test) lives under the machine's multiarch directory.
FAKETIME_LIB := $(firstword $(wildcard /usr/lib/*/faketime/libfaketimeMT.so.1))

# snmpsim (the PDU stand-in) insists on dropping root to `nobody`, who must be able to read its Python: so it gets a
# venv of Debian's own python3 in a world-readable place, not one in the (possibly private) checkout.
SNMPSIM_VENV ?= /opt/powerhub-test/snmpsim

PORT ?= 8080

.PHONY: help demo test unit check bench soak lint typecheck system-deps clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

# Everything the tests, the linters and the benchmarks need (about 1.1 GB: Ansible, Playwright, schemathesis, ...).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(BIN)/.demo-installed

# Only what the demo needs: powerhub and its embedded broker.
$(BIN)/.demo-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[demo]'
	touch $@

system-deps:
	@for prog in $(APT_PROGRAMS); do [ -e $$prog ] || missing=1; done; \
	[ -n "$(FAKETIME_LIB)" ] || missing=1; \
	/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing=1; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi

$(SNMPSIM_VENV)/.installed:
	$(SUDO) /usr/bin/python3 -m venv $(SNMPSIM_VENV)
	$(SUDO) $(SNMPSIM_VENV)/bin/python -m pip install -q snmpsim snmpsim-data cryptography
	$(SUDO) chmod -R a+rX $(SNMPSIM_VENV)
	$(SUDO) touch $@

demo: $(BIN)/.demo-installed  ## the whole system here, dashboard on 127.0.0.1:8080 (make demo PORT=8090)
	$(BIN)/powerhub demo --port $(PORT)

# ansible-lint offline: it must not try to fetch collections (the `ansible` package brings the ones we use).
lint: $(BIN)/.installed  ## ruff, ansible-lint, the playbook's syntax
	$(BIN)/ruff check .
	cd ansible && PATH=$(abspath $(BIN)):$$PATH $(abspath $(BIN))/ansible-lint --profile production --offline -q
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/ansible-playbook -i ansible/inventory.example ansible/site.yml --syntax-check

typecheck: $(BIN)/.installed  ## mypy
	$(BIN)/mypy

# Every test, against the real peers: Debian packages (root or sudo), about 15 minutes on 2 cores.
test: system-deps $(BIN)/.installed $(SNMPSIM_VENV)/.installed lint typecheck  ## lint, types and every test (as CI)
	@echo "make test: every test against real peers (Mosquitto, InfluxDB, snmpsim, ipmi_sim, chromium, ...): ~15 min"
	SNMPSIM_VENV=$(SNMPSIM_VENV) $(BIN)/pytest

# The fast loop: the tests that need no peer and no root, in about a minute.
unit: $(BIN)/.installed  ## the tests that need no peer, no root (about a minute)
	$(BIN)/pytest -m "not peers" -q -n 2

check: lint typecheck unit  ## lint, types and the unit tests

# The performance figures (`name: value`, also in bench/results.json), against the same real peers as the tests.
bench: system-deps $(BIN)/.installed $(SNMPSIM_VENV)/.installed  ## the performance figures (name: value)
	SNMPSIM_VENV=$(SNMPSIM_VENV) $(BIN)/python -m bench.run

# Ten minutes of one agent with a blink meter, 3 BMCs and 2 PDUs: its RSS at start and end, every series shown.
soak: system-deps $(BIN)/.installed $(SNMPSIM_VENV)/.installed  ## ten minutes of an agent with live peers
	SNMPSIM_VENV=$(SNMPSIM_VENV) $(BIN)/python -m bench.soak_readers

clean:  ## remove the virtualenv, ./var and test artifacts
	rm -rf $(VENV) var build *.egg-info tests/artifacts
