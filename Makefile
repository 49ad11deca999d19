# One entry point for humans: make run | test | lint | bench | demo
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install system-packages run test lint format bench demo clean

# Debian packages the suite and the benchmarks use: Chromium drives the dashboard in the browser
# tests; espeak-ng speaks the calls of the speech-to-text benchmark (bench/asr.py). Each is checked
# by what it installs; missing ones are installed with apt-get when make runs as root, or make
# stops at once (before the Python install) with the one command to run.
SYSTEM_PACKAGES := chromium:/usr/lib/chromium/chromium espeak-ng:/usr/bin/espeak-ng iproute2:/bin/ip

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

system-packages:
	@missing=""; \
	for entry in $(SYSTEM_PACKAGES); do \
		[ -x "$${entry#*:}" ] || missing="$$missing $${entry%%:*}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "Missing system packages:$$missing. Install them with:" >&2; \
		echo "  sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi; \
	echo "Installing Debian packages:$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null

# The demo account's approved templates (messaging/demo.py) for the outreach that needs one once a
# customer's 24-hour window has closed; set either variable to use another template.
run: export CALL_PERMISSION_TEMPLATE ?= call_permission
run: export CALL_BUTTON_TEMPLATE ?= call_us
run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py load_rate_cards
	@echo "Switchboard on http://$(HOST):$(PORT)/ (Ctrl-C stops every process)"
	PATH="$(CURDIR)/$(BIN):$$PATH" WEB_HOST=$(HOST) WEB_PORT=$(PORT) \
		SANDBOX_WEBHOOK_URL=http://$(HOST):$(PORT)/webhooks/whatsapp/ $(BIN)/honcho --procfile Procfile start

# The product with the sandbox's simulated customers calling and writing in all the time.
demo: export SANDBOX_CALLS_PER_MINUTE ?= 6
demo: export SANDBOX_CHATS_PER_MINUTE ?= 2
demo: run

test: system-packages install
	mkdir -p var
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var/*.sqlite3* var/celerybeat-schedule* var/static

bench: system-packages install
	@for script in bench/*.py; do \
		case "$$script" in */benchlib.py) continue;; esac; \
		echo "== $$script"; $(BIN)/python "$$script" || exit 1; \
	done
