# The only two commands a new user needs: `make demo` and `make test`. Each does its own set-up on a fresh Debian
# machine: Debian packages for the real peers the tests run against, and a project-local virtualenv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := mosquitto influxdb chromium
# The programs those packages provide, checked first so that a machine that has them needs no apt run.
APT_PROGRAMS := /usr/sbin/mosquitto /usr/bin/influxd /usr/bin/chromium

.PHONY: demo test lint typecheck unit system-deps clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

system-deps:
	@for prog in $(APT_PROGRAMS); do [ -x $$prog ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi

demo: $(BIN)/.installed
	$(BIN)/powerhub demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

test: system-deps $(BIN)/.installed lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var build *.egg-info tests/artifacts
