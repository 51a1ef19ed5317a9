# The two commands of the README: `make demo` and `make test`.
# Both install what they need (Debian packages as root/sudo, a virtual environment).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := var/demo-archive
export LICK_ARCHIVE_CONFIG ?= conf/lick-archive.toml

.PHONY: demo test setup system-packages lint docs clean bench

system-packages:
	scripts/install-system-packages

$(BIN)/lick-archive: pyproject.toml | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

setup: system-packages $(BIN)/lick-archive

demo: setup
	$(BIN)/lick-archive db init
	$(BIN)/lick-archive demo-data $(DEMO_DIR)
	LICK_ARCHIVE_INGEST_ROOTS=$(DEMO_DIR) $(BIN)/lick-archive ingest $(DEMO_DIR)
	LICK_ARCHIVE_INGEST_ROOTS=$(DEMO_DIR) $(BIN)/lick-archive serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy vo_service tap_schema ingest auth
	$(BIN)/lint-imports

# The documentation site (mkdocs.yml) into build/site; strict: a warning (a broken link,
# a configuration key without its text) fails the build, and so `make test`.
docs: setup
	$(BIN)/mkdocs build --strict --quiet

test: lint docs
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python -m bench

clean:
	-$(BIN)/lick-archive db stop
	rm -rf var
