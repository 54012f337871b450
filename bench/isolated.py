"""The plugin's own upload path, with the emulators taken out (``bench/servers.py``).

An in-memory S3 that honours ranged GETs feeds a discarding HTTP sink, so what is timed is the
client: boto3 reading, the hook's streamed body, requests/urllib3 writing. Each upload runs in a fresh
process (imports and the token are warmed up first, then the peak RSS is reset). Variants, interleaved
in every repeat so that each repeat is a *pair* measured under the same machine load:

* ``socket``: the floor: a plain socket copy (``recv_into`` one buffer from S3, ``sendall`` to the sink);
* ``plugin``: the operator's path: ``inspect_source`` (HEAD + the MP4 box walk, timed apart as the
  pre-upload checks), ``body_opener`` and ``SymblHook.submit_video`` with its progress logger;
* ``previous``: the same with the hook of the last single-module ``hooks.py`` (git ``PREVIOUS_REV``),
  the regression check of the hook package.

``chunk_size`` sweeps the plugin over 256 KiB - 8 MiB at one size.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, MiB, child_env, median, proc_status, reset_peak, run_child

#: The last commit with the single-module hooks.py (before the package and tenacity).
PREVIOUS_REV = "5c2b8fb"
VARIANTS = ("socket", "plugin", "previous")
CHUNK_SIZES = (256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20)
BUCKET, KEY = "bench", "video.mp4"


# ------------------------------------------------------------------------------------------- worker side
def load_previous_hooks(rev: str = PREVIOUS_REV):
    """Import ``plugins/symbl_airflow/hooks.py`` as it was at ``rev`` (as module ``symbl_previous_hooks``)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:plugins/symbl_airflow/hooks.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-previous-")) / "symbl_previous_hooks.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("symbl_previous_hooks", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _socket_copy(s3_port: int, sink_port: int, chunk_size: int) -> int:
    import socket

    def open_(port: int, head: str) -> tuple[socket.socket, object]:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(head.encode())
        return sock, sock.makefile("rb", buffering=chunk_size)

    src, rfile = open_(s3_port, f"GET /{BUCKET}/{KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    length = 0
    while (line := rfile.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    dst, dfile = open_(
        sink_port,
        f"PUT /v1/process/video/bench HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        "Content-Type: video/mp4\r\n\r\n",
    )
    buffer = memoryview(bytearray(chunk_size))
    remaining = length
    while remaining:
        n = rfile.readinto(buffer[: min(chunk_size, remaining)])
        if not n:
            raise RuntimeError("source closed early")
        dst.sendall(buffer[:n])
        remaining -= n
    status = dfile.readline()
    if b" 201 " not in status:
        raise RuntimeError(f"sink answered {status!r}")
    for sock in (src, dst):
        sock.close()
    return length


def worker(args: argparse.Namespace) -> dict:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.sources import ProgressLogger, body_opener, inspect_source

    logging.getLogger("airflow").setLevel(logging.WARNING)
    if args.variant == "previous":
        SymblHook = load_previous_hooks(args.previous_rev).SymblHook
    else:
        from symbl_airflow.hooks import SymblHook
    hook = SymblHook()
    hook.get_access_token()  # warm-up: token, connection pool, imports
    s3_hook = S3Hook(aws_conn_id="aws_default")
    s3_hook.get_conn().head_bucket(Bucket=BUCKET)
    uri = f"s3://{BUCKET}/{KEY}"

    baseline = proc_status()["VmRSS"]
    peak_reset = reset_peak()
    cpu_started = time.process_time()
    started = time.perf_counter()
    checks_s = 0.0
    if args.variant == "socket":
        size = _socket_copy(args.s3_port, args.sink_port, args.chunk_size)
    else:
        source = inspect_source(s3_hook, uri)
        checks_s = time.perf_counter() - started
        started = time.perf_counter()
        hook.submit_video(
            body_opener(s3_hook, source),
            source.size,
            conversation_id="bench-conversation",
            chunk_size=args.chunk_size,
            on_progress=ProgressLogger(logging.getLogger("bench.isolated"), uri, source.size),
        )
        size = source.size
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    status = proc_status()
    return {
        "variant": args.variant,
        "chunk_size": args.chunk_size,
        "size": size,
        "seconds": elapsed,
        "mib_s": size / MiB / elapsed,
        "cpu_s": cpu,
        "checks_s": checks_s,
        "extra_rss": max(0, status["VmHWM"] - baseline),
        "peak_reset": peak_reset,
    }


# ------------------------------------------------------------------------------------------- orchestrator
class _Server:
    def __init__(self, workdir: Path, kind: str, *args: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        port_file = workdir / f"{kind}.port"
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", kind, "--port-file", str(port_file), *args],
            cwd=ROOT,
            env=child_env(),
        )
        deadline = time.monotonic() + 120
        while not port_file.exists() or not port_file.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bench.servers {kind} did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _env(s3: _Server, sink: _Server) -> dict[str, str]:
    aws = {
        "conn_type": "aws",
        "login": "bench",
        "password": "bench",
        "extra": {"endpoint_url": f"http://127.0.0.1:{s3.port}", "region_name": "us-east-1"},
    }
    symbl = {"conn_type": "symbl", "host": f"http://127.0.0.1:{sink.port}", "login": "bench", "password": "bench"}
    return child_env(AIRFLOW_CONN_AWS_DEFAULT=json.dumps(aws), AIRFLOW_CONN_SYMBL_DEFAULT=json.dumps(symbl))


def _one(env, s3: _Server, sink: _Server, variant: str, chunk_size: int, previous_rev: str) -> dict:
    args = ["worker", "--variant", variant, "--chunk-size", str(chunk_size), "--previous-rev", previous_rev]
    args += ["--s3-port", str(s3.port), "--sink-port", str(sink.port)]
    return run_child("bench.isolated", args, env)


def run(
    sizes_mib: list[int],
    workdir: Path,
    *,
    repeat: int,
    chunk_size: int,
    sweep_mib: int | None,
    sweep_repeat: int,
    previous_rev: str = PREVIOUS_REV,
    log=print,
) -> dict:
    """Paired runs per size (socket, plugin, previous), then the chunk-size sweep at ``sweep_mib``."""
    runs: list[dict] = []
    sweep: list[dict] = []
    sink = _Server(workdir, "sink")
    try:
        for size_mib in sorted(set(sizes_mib) | ({sweep_mib} if sweep_mib else set())):
            s3 = _Server(workdir, "range-s3", "--size-mib", str(size_mib), "--bucket", BUCKET, "--key", KEY)
            try:
                env = _env(s3, sink)
                _one(env, s3, sink, "socket", chunk_size, previous_rev)  # warm-up of both servers, not reported
                if size_mib in sizes_mib:
                    for rep in range(repeat):
                        # The order rotates per repeat, so no variant always runs first (or last).
                        for variant in VARIANTS[rep % 3 :] + VARIANTS[: rep % 3]:
                            result = {**_one(env, s3, sink, variant, chunk_size, previous_rev), "size_mib": size_mib}
                            result["repeat"] = rep
                            runs.append(result)
                            log(_line(result))
                if size_mib == sweep_mib:
                    for rep in range(sweep_repeat):
                        shift = rep % len(CHUNK_SIZES)
                        for chunk in CHUNK_SIZES[shift:] + CHUNK_SIZES[:shift]:
                            result = {**_one(env, s3, sink, "plugin", chunk, previous_rev), "size_mib": size_mib}
                            result["repeat"] = rep
                            sweep.append(result)
                            log(_line(result))
            finally:
                s3.stop()
    finally:
        sink.stop()
    return {
        "chunk_size": chunk_size,
        "previous_rev": previous_rev,
        "runs": runs,
        "summary": summarize(runs),
        "sweep": sweep,
        "sweep_summary": summarize_sweep(sweep),
    }


def _line(r: dict) -> str:
    return (
        f"  {r['size_mib']:>5} MiB {r['variant']:<8} chunk {r['chunk_size'] >> 10:>5} KiB "
        f"{r['mib_s']:7.1f} MiB/s  cpu {r['cpu_s']:.2f} s  extra RSS {r['extra_rss'] / MiB:5.1f} MiB"
        f"  checks {r['checks_s'] * 1000:.1f} ms"
    )


def _spread(values: list[float]) -> dict:
    return {"median": median(values), "min": min(values), "max": max(values)}


def _paired(by: dict, reps: list[int], num: str, den: str, key: str = "mib_s") -> dict:
    """``num / den`` per repeat (both measured back to back), then median and min-max of those ratios."""
    return _spread([by[(num, rep)][key] / by[(den, rep)][key] for rep in reps])


def summarize(runs: list[dict]) -> list[dict]:
    """Per size: each variant's figures and the ratios paired by repeat (same repeat = same load)."""
    rows = []
    for size_mib in sorted({r["size_mib"] for r in runs}):
        at = [r for r in runs if r["size_mib"] == size_mib]
        by = {(r["variant"], r["repeat"]): r for r in at}
        reps = sorted({r["repeat"] for r in at})
        row: dict = {"size_mib": size_mib, "repeats": len(reps)}
        for variant in VARIANTS:
            mine = [by[(variant, rep)] for rep in reps]
            row[variant] = {
                "mib_s": _spread([r["mib_s"] for r in mine]),
                "cpu_s_per_gib": _spread([r["cpu_s"] / (r["size"] / (1 << 30)) for r in mine]),
                "extra_rss": _spread([r["extra_rss"] for r in mine]),
                "checks_s": _spread([r["checks_s"] for r in mine]),
            }

        row["plugin_vs_socket"] = _paired(by, reps, "plugin", "socket")
        row["plugin_vs_previous"] = _paired(by, reps, "plugin", "previous")
        # Higher is better throughout: previous CPU / plugin CPU.
        row["cpu_previous_over_plugin"] = _paired(by, reps, "previous", "plugin", "cpu_s")
        rows.append(row)
    return rows


def summarize_sweep(sweep: list[dict]) -> list[dict]:
    rows = []
    for chunk in sorted({r["chunk_size"] for r in sweep}):
        mine = [r for r in sweep if r["chunk_size"] == chunk]
        rows.append(
            {
                "chunk_size": chunk,
                "size_mib": mine[0]["size_mib"],
                "repeats": len(mine),
                "mib_s": _spread([r["mib_s"] for r in mine]),
                "cpu_s_per_gib": _spread([r["cpu_s"] / (r["size"] / (1 << 30)) for r in mine]),
                "extra_rss": _spread([r["extra_rss"] for r in mine]),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.isolated")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--variant", choices=VARIANTS, required=True)
    w.add_argument("--chunk-size", type=int, required=True)
    w.add_argument("--previous-rev", default=PREVIOUS_REV)
    w.add_argument("--s3-port", type=int, required=True)
    w.add_argument("--sink-port", type=int, required=True)
    r = sub.add_parser("run")
    r.add_argument("--sizes", default="64")
    r.add_argument("--repeat", type=int, default=2)
    r.add_argument("--sweep-mib", type=int, default=0)
    r.add_argument("--chunk-size", type=int, default=1 << 20)
    args = parser.parse_args(argv)
    if args.command == "worker":
        print(json.dumps(worker(args)), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="bench-isolated-") as tmp:
        out = run(
            [int(s) for s in args.sizes.split(",")],
            Path(tmp),
            repeat=args.repeat,
            chunk_size=args.chunk_size,
            sweep_mib=args.sweep_mib or None,
            sweep_repeat=args.repeat,
        )
    json.dump({"summary": out["summary"], "sweep": out["sweep_summary"]}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
