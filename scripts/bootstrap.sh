#!/usr/bin/env bash
# Sourced by the Makefile targets (and by hand: `source scripts/bootstrap.sh`): makes .venv when missing
# or stale, then exports a project-local AIRFLOW_HOME and the paths. A no-op when the venv matches the
# requirement files. No `set -e` here: it would leak into the shell that sources this file.

_symbl_bootstrap() {
  local root venv stamp want py uv
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  stamp="$venv/.requirements.sha256"
  want="$(cat "$root/requirements.txt" "$root/requirements-dev.txt" "$root/constraints.txt" "$root/pyproject.toml" \
    | sha256sum | cut -d' ' -f1)"

  # The pinned set (constraints.txt) needs Python >= 3.11.5 (soupsieve, via the Amazon provider).
  _py_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11, 5) else 1)' 2>/dev/null; }
  if [[ -x "$venv/bin/python" ]] && ! _py_ok "$venv/bin/python"; then
    echo "bootstrap: $venv uses $("$venv/bin/python" --version 2>&1), too old; recreating it"
    rm -rf "$venv"
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    py=""
    for c in ${PYTHON:-} python3.11 python3 python3.12 python3.13 "$HOME"/.pyenv/versions/3.1[123]*/bin/python3; do
      if command -v "$c" >/dev/null 2>&1 && _py_ok "$c"; then py="$(command -v "$c")"; break; fi
    done
    if [[ -z "$py" ]]; then
      echo "bootstrap: needs Python >= 3.11.5 (python3 is $(python3 --version 2>&1)); set PYTHON=/path/to/python" >&2
      return 1
    fi
    echo "bootstrap: creating $venv with $("$py" --version 2>&1)"
    "$py" -m venv "$venv" || return 1
  fi
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "bootstrap: installing requirements (first run takes ~1 min)"
    uv="$(command -v uv 2>/dev/null)"
    if [[ -z "$uv" ]]; then
      "$venv/bin/python" -m pip install -q --disable-pip-version-check uv >/dev/null 2>&1 && uv="$venv/bin/uv"
    fi
    if [[ -n "$uv" ]]; then
      "$uv" pip install --python "$venv/bin/python" --compile-bytecode -q \
        -r "$root/requirements-dev.txt" -c "$root/constraints.txt" -e "$root" || return 1
    else
      "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$root/requirements-dev.txt" -c "$root/constraints.txt" -e "$root" || return 1
      "$venv/bin/python" -m compileall -q "$venv/lib" >/dev/null
    fi
    echo "$want" >"$stamp"
  fi

  export PATH="$venv/bin:$PATH"
  export AIRFLOW_HOME="${AIRFLOW_HOME:-$root/.airflow}"
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
  export AIRFLOW__CORE__DAGS_FOLDER="$root/dags"
  export AIRFLOW__CORE__PLUGINS_FOLDER="$root/plugins"
  export PYTHONPATH="$root/plugins:$root${PYTHONPATH:+:$PYTHONPATH}"
  mkdir -p "$AIRFLOW_HOME"
}

_symbl_bootstrap || { echo "bootstrap: failed (see above)" >&2; return 1 2>/dev/null || exit 1; }
unset -f _symbl_bootstrap _py_ok
