# The two commands of the README. Each bootstraps .venv and a project-local AIRFLOW_HOME first.
SHELL := /bin/bash
.PHONY: demo test e2e lint bench

demo:  ## the example pipeline end to end: sandbox + local S3 + SQLite Airflow
	source scripts/bootstrap.sh && python -m scripts.demo

# scripts/pytest.sh turns pytest's exit 5 (no tests collected) into a failure.
PYTEST = bash scripts/pytest.sh $(PYTEST_ARGS)

test:  ## unit + integration tests (real sandbox, real local S3, Airflow dag.test())
	source scripts/bootstrap.sh && $(PYTEST) -m "not e2e"

e2e:  ## the multi-process Airflow suite (PostgreSQL + Redis + Celery workers + triggerer)
	source scripts/bootstrap.sh && $(PYTEST) -m e2e

# ruff, then the package as it would be published: sdist + wheel built in isolation, metadata checked.
lint:
	source scripts/bootstrap.sh && ruff check . && ruff format --check . \
	  && rm -rf .tmp/dist && python -m build --installer uv --outdir .tmp/dist . \
	  && twine check --strict .tmp/dist/*

bench:
	source scripts/bootstrap.sh && python -m bench
