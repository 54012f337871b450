#!/usr/bin/env bash
# Sourced by the Makefile targets: makes .venv (when missing or stale) and a project-local Airflow home.
# Safe to run repeatedly; a no-op when the venv matches the requirement files.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$ROOT/constraints.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "bootstrap: creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]]; then
  echo "bootstrap: installing requirements (first run takes ~1 min)"
  if command -v uv >/dev/null 2>&1; then
    UV=uv
  else
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check uv || true
    UV="$VENV/bin/uv"
  fi
  if [[ -x "$(command -v "$UV" 2>/dev/null || echo "$UV")" ]]; then
    "$UV" pip install --python "$VENV/bin/python" --compile-bytecode -q \
      -r "$ROOT/requirements-dev.txt" -c "$ROOT/constraints.txt" -e "$ROOT"
  else
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      -r "$ROOT/requirements-dev.txt" -c "$ROOT/constraints.txt" -e "$ROOT"
    "$VENV/bin/python" -m compileall -q "$VENV/lib" >/dev/null || true
  fi
  echo "$want" > "$STAMP"
fi

export PATH="$VENV/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__UNIT_TEST_MODE="${AIRFLOW__CORE__UNIT_TEST_MODE:-False}"
export PYTHONPATH="$ROOT/plugins:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$AIRFLOW_HOME"
