# One entry point for humans: make run | test | lint | bench | demo
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py load_rate_cards
	@echo "Switchboard on http://$(HOST):$(PORT)/ (Ctrl-C stops every process)"
	PATH="$(CURDIR)/$(BIN):$$PATH" WEB_HOST=$(HOST) WEB_PORT=$(PORT) \
		SANDBOX_WEBHOOK_URL=http://$(HOST):$(PORT)/webhooks/whatsapp/ $(BIN)/honcho --procfile Procfile start

# The product with the sandbox's simulated customers calling in all the time.
demo: export SANDBOX_CALLS_PER_MINUTE ?= 6
demo: run

test: install
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

bench: install
	@for script in bench/*.py; do \
		case "$$script" in */benchlib.py) continue;; esac; \
		echo "== $$script"; $(BIN)/python "$$script" || exit 1; \
	done
