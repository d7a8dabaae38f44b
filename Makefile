# newsarchive: the two front-door commands.
#   make demo   set up, serve the bundled demo news site on 127.0.0.1, crawl it, show a snapshot
#   make test   set up and run the test suite
# Everything is installed here, into .venv (and .venv-pywb, used by the replay test).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYWB   := .venv-pywb
NODE   := node_modules/.installed
RWP_VERSION := 2.4.6
RWP    := node_modules/.replaywebpage
PYTEST_ARGS ?=

# No telemetry from Prefect's server or client: tests talk only to loopback.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: all setup demo test test-under-load bench clean lock system-packages browser-packages

all: test

# Debian packages: what a fresh machine may lack to build the venv, PostgreSQL 15 and
# `ip` for the scale-out test, and the browser the tests drive (Debian's chromium:
# Playwright's own download fails here).
system-packages:
	@if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then \
	  echo "installing python3-venv with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv python3-pip; \
	fi
	@if ! [ -x /usr/lib/postgresql/15/bin/initdb ] || ! command -v ip >/dev/null 2>&1; then \
	  echo "installing postgresql and iproute2 with apt-get (the scale-out test: Prefect on PostgreSQL, network namespaces)"; \
	  apt-get update -qq && apt-get install -y -qq postgresql iproute2; \
	fi

# Each package only when it is missing: a nodejs that brings its own npm (NodeSource's)
# conflicts with Debian's npm package, so asking for both would fail the install.
browser-packages:
	@if ! [ -x /usr/bin/chromium ]; then \
	  echo "installing chromium with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq chromium; \
	fi
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "installing nodejs and npm with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq nodejs npm; \
	fi
	@# a font with Chinese glyphs, so screenshots of the reading room show them (1.6 MB)
	@if [ -z "$$(fc-list :lang=zh 2>/dev/null)" ]; then \
	  echo "installing fonts-wqy-microhei with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei; \
	fi

# npm packages the browser tests use, at the versions package-lock.json pins;
# ReplayWeb.page as its release tarball (npm pack): its bundles need no dependencies.
$(NODE): package.json package-lock.json | browser-packages
	npm ci --no-audit --no-fund --silent
	rm -rf $(RWP) && mkdir -p $(RWP)
	cd $(RWP) && npm pack --silent replaywebpage@$(RWP_VERSION) >/dev/null && tar xzf replaywebpage-$(RWP_VERSION).tgz
	touch $@

# Exact versions come from constraints.txt (the set the tests passed with);
# `make lock` resolves pyproject.toml afresh and rewrites it.
$(STAMP): pyproject.toml constraints.txt | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt 'pip'
	$(BIN)/pip install -q -c constraints.txt -e '.[test,dev]'
	touch $@

setup: $(STAMP)

# pywb pins its own dependencies, so it lives in a venv of its own: `serve`
# runs its `wayback` for rewritten replay (boto3 beside it reads s3:// archives),
# and the tests use it and py-wacz to prove they open our WARCs and WACZ exports.
$(PYWB)/.installed: Makefile constraints-pywb.txt
	$(PYTHON) -m venv $(PYWB)
	$(PYWB)/bin/pip install -q -c constraints-pywb.txt pywb wacz boto3
	touch $@

# Resolve the dependencies afresh (newest releases pyproject.toml allows) in
# throw-away venvs and pin what came out. Run `make test` after, then commit.
lock: | system-packages
	rm -rf .venv-lock .venv-lock-pywb
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q --upgrade pip
	.venv-lock/bin/pip install -q -e '.[test,dev]'
	.venv-lock/bin/pip freeze --all --exclude-editable | grep -vE '^(newsarchive|setuptools|wheel)==' > constraints.txt
	$(PYTHON) -m venv .venv-lock-pywb
	.venv-lock-pywb/bin/pip install -q pywb wacz boto3
	.venv-lock-pywb/bin/pip freeze --all | grep -vE '^(setuptools|wheel)==' > constraints-pywb.txt
	rm -rf .venv-lock .venv-lock-pywb

demo: $(STAMP)
	$(BIN)/newsarchive demo

test: $(STAMP) $(PYWB)/.installed $(NODE)
	NEWSARCHIVE_PYWB=$(CURDIR)/$(PYWB)/bin NEWSARCHIVE_NODE_MODULES=$(CURDIR)/node_modules \
	  $(BIN)/pytest $(PYTEST_ARGS)

# The suite's reliability check: the full suite LOAD_RUNS times in a row while
# stress-ng keeps every core busy (DEVELOPERS.md); stops at the first failure.
LOAD_RUNS ?= 3
test-under-load: $(STAMP) $(PYWB)/.installed $(NODE)
	@command -v stress-ng >/dev/null || { echo "installing stress-ng with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq stress-ng; }
	bash .ci/under-load $(LOAD_RUNS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(PYWB) node_modules .prefect .pytest_cache demo-archive
