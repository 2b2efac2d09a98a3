# Operator entry points. Both `up` and `test` set up everything on a fresh machine first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ENV := . setup/env.sh &&
PYTEST_ARGS ?=

.PHONY: help setup up down test lint unit
help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup: ## install everything: Debian packages, virtualenv, Pulumi engine, Docker engine, host image, Alluxio
	@setup/bootstrap.sh

up: setup ## set up, start the local sandbox cluster and deploy the local stack
	@$(ENV) python -m sandbox.up

down: ## destroy the local stack and stop the sandbox cluster
	@$(ENV) python -m sandbox.up --down

lint: ## ruff over the whole tree, and the executor's Python 3.9 compatibility check
	@$(ENV) ruff check . && ruff format --check . && python -m executor.compat_check

unit: ## fast unit tests only (assumes `make setup` ran)
	@$(ENV) pytest tests/unit $(PYTEST_ARGS)

test: setup lint ## set up, then run the whole suite (unit, integration, e2e)
	@$(ENV) pytest tests $(PYTEST_ARGS)
