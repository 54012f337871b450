"""DAG parse: import time of each DAG file over a bare ``import airflow.sdk``, under a socket guard.

Each measurement is a fresh process. The guard replaces every way to open a connection or resolve a
name with one that records the attempt and raises, so a DAG that touches the network at parse time
fails to import *and* is counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.common import ROOT, child_env, median, run_child

MARKER = "--- bench: dag import starts ---"


# ------------------------------------------------------------------------------------------- worker side
def install_socket_guard() -> list[str]:
    import socket

    attempts: list[str] = []

    def refuse(what):
        def guard(*args, **kwargs):
            attempts.append(f"{what}{args[1:2] if what.startswith('socket.') else args[:1]}")
            raise OSError(f"bench socket guard: {what} during DAG parse")

        return guard

    socket.socket.connect = refuse("socket.connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse("socket.connect_ex")  # type: ignore[method-assign]
    socket.socket.sendto = refuse("socket.sendto")  # type: ignore[method-assign]
    socket.create_connection = refuse("create_connection")  # type: ignore[assignment]
    socket.getaddrinfo = refuse("getaddrinfo")  # type: ignore[assignment]
    socket.gethostbyname = refuse("gethostbyname")  # type: ignore[assignment]
    socket.gethostbyname_ex = refuse("gethostbyname_ex")  # type: ignore[assignment]
    return attempts


def worker(args: argparse.Namespace) -> dict:
    attempts = install_socket_guard()
    before = set(sys.modules)
    started = time.perf_counter()
    import airflow.sdk  # noqa: F401

    sdk_s = time.perf_counter() - started
    if args.path is None:
        return {"sdk_s": sdk_s, "network_attempts": attempts}

    import importlib.util

    from airflow.sdk import DAG

    mid = set(sys.modules)
    print(MARKER, file=sys.stderr, flush=True)
    path = Path(args.path)
    spec = importlib.util.spec_from_file_location(f"bench_dag_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    error = None
    started = time.perf_counter()
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # reported, not raised: the guard's refusal is a finding
        error = f"{type(exc).__name__}: {exc}"
    dag_s = time.perf_counter() - started
    dags = [v.dag_id for v in vars(module).values() if isinstance(v, DAG)]
    added = sorted(set(sys.modules) - mid)
    return {
        "sdk_s": sdk_s,
        "dag_s": dag_s,
        "dags": dags,
        "tasks": sum(len(v.tasks) for v in vars(module).values() if isinstance(v, DAG)),
        "error": error,
        "network_attempts": attempts,
        "modules_before_sdk": len(before),
        "modules_added_by_dag": len(added),
        "heavy_modules_loaded": [m for m in ("boto3", "botocore", "requests", "aiohttp", "av") if m in sys.modules],
    }


# ------------------------------------------------------------------------------------------- orchestrator
def _importtime_top(path: Path, env: dict[str, str], top: int = 6) -> list[dict]:
    """``-X importtime`` of the DAG part only: the slowest top-level imports it triggers."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bench.parse", "worker", "--path", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stderr.splitlines()
    try:
        lines = lines[lines.index(MARKER) + 1 :]
    except ValueError:
        return []
    rows = []
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        try:
            cumulative = int(parts[1].strip())
        except ValueError:
            continue
        raw_name = parts[2]
        depth = (len(raw_name) - len(raw_name.lstrip(" ")) - 1) // 2
        if depth == 0:
            rows.append({"module": raw_name.strip(), "cumulative_s": cumulative / 1e6})
    rows.sort(key=lambda r: r["cumulative_s"], reverse=True)
    return rows[:top]


def run(repeat: int = 5, log=print) -> dict:
    env = child_env()
    dags = sorted((ROOT / "dags").glob("*.py"))
    baseline = [run_child("bench.parse", ["worker"], env) for _ in range(repeat)]
    sdk_s = median([b["sdk_s"] for b in baseline])
    log(f"  bare import airflow.sdk: {sdk_s:.3f} s (median of {repeat})")
    rows = []
    plan = [(path, env, None) for path in dags]
    for path, run_env, what_if in plan:
        runs = [run_child("bench.parse", ["worker", "--path", str(path)], run_env) for _ in range(repeat)]
        row = {
            "file": f"dags/{path.name}",
            "what_if": what_if,
            "dag_s": median([r["dag_s"] for r in runs]),
            "dag_s_min": min(r["dag_s"] for r in runs),
            "dag_s_max": max(r["dag_s"] for r in runs),
            "sdk_s": median([r["sdk_s"] for r in runs]),
            "dags": runs[0]["dags"],
            "tasks": runs[0]["tasks"],
            "errors": sorted({r["error"] for r in runs if r["error"]}),
            "network_attempts": sum(len(r["network_attempts"]) for r in runs),
            "heavy_modules_loaded": runs[0]["heavy_modules_loaded"],
            "modules_added_by_dag": runs[0]["modules_added_by_dag"],
            "importtime_top": _importtime_top(path, run_env),
        }
        row["ratio_to_sdk"] = row["dag_s"] / sdk_s
        log(
            f"  {row['file']}{' (' + what_if + ')' if what_if else ''}: +{row['dag_s']:.3f} s over airflow.sdk, "
            f"{row['tasks']} tasks, "
            f"network attempts {row['network_attempts']}, errors {row['errors'] or 'none'}"
        )
        rows.append(row)
    return {
        "repeat": repeat,
        "sdk_s": sdk_s,
        "sdk_network_attempts": sum(len(b["network_attempts"]) for b in baseline),
        "dags": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parse")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--path")
    r = sub.add_parser("run")
    r.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "worker":
        print(json.dumps(worker(args)), flush=True)
    else:
        json.dump(run(args.repeat), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
