# The two commands of the README. Each bootstraps .venv and a project-local AIRFLOW_HOME first.
SHELL := /bin/bash
.PHONY: demo test test-all e2e lint bench

demo:  ## the example pipeline end to end: sandbox + local S3 + SQLite Airflow
	source scripts/bootstrap.sh && python -m scripts.demo

test:  ## unit + integration tests (real sandbox, real local S3, Airflow dag.test())
	source scripts/bootstrap.sh && python -m pytest -m "not e2e" $(PYTEST_ARGS)

test-all:  ## everything, including the multi-process e2e suite (what CI runs)
	source scripts/bootstrap.sh && python -m pytest $(PYTEST_ARGS)

e2e:
	source scripts/bootstrap.sh && python -m pytest -m e2e $(PYTEST_ARGS)

lint:
	source scripts/bootstrap.sh && ruff check . && ruff format --check .

bench:
	source scripts/bootstrap.sh && python -m bench
