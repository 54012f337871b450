# The two commands of the README. Each bootstraps .venv and a project-local AIRFLOW_HOME first.
SHELL := /bin/bash
.PHONY: demo test e2e compat lint bench stack stack-stop

demo:  ## the example pipeline end to end: sandbox + local S3 + SQLite Airflow
	source scripts/bootstrap.sh && python -m scripts.demo

# The sandbox + a local S3 left running for your own DAGs (README: "Your own DAG against the local stack").
# make stack SANDBOX_PORT=8910 S3_PORT=8911 BUCKET=my-bucket to change the defaults (8900, 8901, symbl-demo).
STACK_ARGS = $(if $(SANDBOX_PORT),--sandbox-port $(SANDBOX_PORT)) $(if $(S3_PORT),--s3-port $(S3_PORT)) \
	$(if $(BUCKET),--bucket $(BUCKET))
stack:  ## start the Symbl sandbox + local S3 in the background; prints the AIRFLOW_CONN_* exports
	@source scripts/bootstrap.sh && python -m scripts.local_stack start $(STACK_ARGS)

stack-stop:  ## stop exactly what `make stack` started (PIDs from .tmp/stack/stack.json)
	@source scripts/bootstrap.sh && python -m scripts.local_stack stop

# scripts/pytest.sh turns pytest's exit 5 (no tests collected) into a failure.
PYTEST = bash scripts/pytest.sh $(PYTEST_ARGS)

test:  ## unit + integration tests (real sandbox, real local S3, Airflow dag.test())
	source scripts/bootstrap.sh && $(PYTEST) -m "not e2e"

# The same suites against other Airflow versions, each in its own venv under .tmp/compat/<version>/.
# `make test` is the lowest leg (constraints.txt pins the floor pyproject declares); the default adds the
# next line, pre-releases included. `make compat COMPAT_AIRFLOW="lowest 3.4"` runs both in fresh venvs.
COMPAT_AIRFLOW ?= 3.4
compat:  ## unit + integration tests against the next Airflow (see scripts/compat.py)
	source scripts/bootstrap.sh && python -m scripts.compat $(COMPAT_AIRFLOW)

# The browser test needs Chromium (installed here when missing); screenshots go to $(E2E_OUTPUT).
E2E_OUTPUT ?= .tmp/e2e-output
e2e:  ## the multi-process Airflow suite (PostgreSQL + Redis + Celery workers + triggerer + headless Chromium)
	bash scripts/install_chromium.sh && source scripts/bootstrap.sh \
	  && SYMBL_E2E_OUTPUT="$(abspath $(E2E_OUTPUT))" $(PYTEST) -m e2e

# ruff, then the package as it would be published: sdist + wheel built in isolation, metadata checked.
lint:
	source scripts/bootstrap.sh && ruff check . && ruff format --check . \
	  && rm -rf .tmp/dist && python -m build --installer uv --outdir .tmp/dist . \
	  && twine check --strict .tmp/dist/*

bench:
	source scripts/bootstrap.sh && python -m bench
