"""Triggerer scale: N ``SymblJobTrigger``s in one event loop against the sandbox, jobs ending at staggered times.

The orchestrator submits N small real MP4s of different lengths (the sandbox's job time follows the
media length), with a ``webhookUrl`` pointing at a local sink that stamps each job's completion. A
fresh worker process then runs every trigger's ``run()`` generator as one asyncio task, as the
triggerer does, and reports its CPU time, its events and their times. Requests and token fetches
come from the sandbox's own counters.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import ROOT, MiB, child_env, median, percentile, run_child

JOB_ROUTE = "GET /v1/job/{jobId}"
TOKEN_ROUTE = "POST /oauth2/token:generate"


# ------------------------------------------------------------------------------------------- worker side
def _job_sandbox(path: Path, n: int):
    """A sandbox whose jobs take as long as their media (speed 1) and that admits ``n`` jobs at once."""
    from scripts.local_stack import start_sandbox

    return start_sandbox(
        path, "--max-concurrent-jobs", str(max(2000, 2 * n)), "--log-level", "WARNING", speed=1.0, min_job_seconds=1.0
    )


async def _drive(job_ids: list[str], poll_interval: float, timeout: float, spread: float = 0.0) -> dict:
    import asyncio
    import resource

    from symbl_airflow.tokens import TOKEN_CACHE
    from symbl_airflow.triggers import SymblJobTrigger

    events: dict[str, dict] = {}
    loop_lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        """How late the loop wakes a 100 ms sleeper: a blocked loop shows up here."""
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.1)
            loop_lags.append(time.perf_counter() - start - 0.1)

    async def one(index: int, job_id: str) -> None:
        if spread:  # triggers arriving over time, as deferring tasks hand them to the triggerer
            await asyncio.sleep(spread * index / len(job_ids))
        start = time.time()
        trigger = SymblJobTrigger(job_ids=job_id, poll_interval=poll_interval, end_time=start + timeout)
        async for event in trigger.run():
            events[job_id] = {"at": time.time(), "status": event.payload["status"], "start": start}
            break

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    started_at = time.time()
    tick = asyncio.create_task(ticker())
    await asyncio.gather(*(one(i, job_id) for i, job_id in enumerate(job_ids)))
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    done.set()
    await tick
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "started_at": started_at,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_share": cpu / wall,
        "ctx_switches": (usage1.ru_nvcsw - usage0.ru_nvcsw) + (usage1.ru_nivcsw - usage0.ru_nivcsw),
        "max_rss": usage1.ru_maxrss * 1024,
        "token_fetches_in_process": TOKEN_CACHE.fetch_count,
        "loop_lag_p50": percentile(loop_lags, 50),
        "loop_lag_p99": percentile(loop_lags, 99),
        "loop_lag_max": max(loop_lags, default=0.0),
        "events": events,
    }


async def _poll_with(hook_cls, job_ids: list[str], poll_interval: float) -> dict:
    import asyncio

    events: dict[str, dict] = {}

    async def one(job_id: str) -> None:
        async with hook_cls() as hook:
            while True:
                started = time.perf_counter()
                job = await hook.get_job(job_id)
                if job.is_terminal:
                    events[job_id] = {"status": "success" if job.is_completed else job.status}
                    return
                await asyncio.sleep(max(0.0, poll_interval - (time.perf_counter() - started)))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(job_id) for job_id in job_ids))
    return {"cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0, "events": events}


def worker(args: argparse.Namespace) -> dict:
    import asyncio
    import logging

    import symbl_airflow.triggers  # noqa: F401  (imports are not part of the measured window)

    if args.hook:
        # Hook pairs: the trigger's use of the hook (one session per wait, one GET per job per
        # interval) without the trigger, so a change of the trigger does not blur the comparison.
        # One process polls with both hooks, one batch each, as the orchestrator names them.
        from bench.isolated import load_previous_hooks
        from symbl_airflow.hooks import SymblAsyncHook

        hooks = {"previous": load_previous_hooks(args.previous_rev).SymblAsyncHook, "current": SymblAsyncHook}
        logging.getLogger("airflow").setLevel(logging.WARNING)
        print("ready", flush=True)
        for line in sys.stdin:
            name, ids = line.split(" ", 1)
            print(
                json.dumps({"hook": name, **asyncio.run(_poll_with(hooks[name], json.loads(ids), args.poll_interval))})
            )
            print("ready", flush=True)
        return {}

    logging.getLogger("airflow").setLevel(logging.WARNING)
    logging.getLogger("symbl_airflow").setLevel(logging.WARNING)
    print("ready", flush=True)
    job_ids = json.loads(sys.stdin.readline())  # the orchestrator sends the ids once all jobs are submitted
    return asyncio.run(_drive(job_ids, args.poll_interval, args.timeout, args.spread))


def poke_worker(args: argparse.Namespace) -> dict:
    """The cost of one poke of a poke-mode sensor (sync hook, token cached), and a task process's RSS."""
    import logging

    from bench.common import proc_status
    from symbl_airflow.hooks import SymblHook
    from symbl_airflow.sensors import SymblJobSensor  # noqa: F401  (what a poke-mode task process imports)

    logging.getLogger("airflow").setLevel(logging.WARNING)
    hook = SymblHook()
    hook.get_job(args.job_id)  # warm-up: token + keep-alive connection
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(args.pokes):
        hook.get_job(args.job_id)
    return {
        "pokes": args.pokes,
        "cpu_per_poke": (time.process_time() - cpu0) / args.pokes,
        "wall_per_poke": (time.perf_counter() - wall0) / args.pokes,
        "rss": proc_status()["VmRSS"],
    }


# ------------------------------------------------------------------------------------------- orchestrator
class _Sink(BaseHTTPRequestHandler):
    stamps: dict[str, dict[str, float]] = {}
    lock = threading.Lock()

    def do_POST(self) -> None:
        now = time.time()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with self.lock:
            self.stamps.setdefault(body.get("jobId", "?"), {})[body.get("status", "?")] = now
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def run(
    workdir: Path,
    n: int = 1000,
    poll_interval: float = 10.0,
    min_s: float = 15.0,
    max_s: float = 75.0,
    spread: float = 0.0,
    log=print,
) -> dict:
    import requests

    from symbl_sandbox.samples import make_mp4

    steps = 13
    durations = [min_s + (max_s - min_s) * i / (steps - 1) for i in range(steps)]
    media = []
    for i, seconds in enumerate(durations):
        path = make_mp4(workdir / f"clip-{i}.mp4", [("Alice", "Tick."), ("Bob", "Tock.")], seconds_per_cue=seconds / 2)
        media.append(path.read_bytes())

    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    sink.daemon_threads = True
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    webhook = f"http://127.0.0.1:{sink.server_address[1]}/hook"

    sandbox = _job_sandbox(workdir / "sandbox", n)
    proc = None
    try:
        env = child_env(AIRFLOW_CONN_SYMBL_DEFAULT=sandbox.conn_json())
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.trigger",
                "worker",
                "--poll-interval",
                str(poll_interval),
                "--spread",
                str(spread),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-3000:]

        log(f"  submitting {n} jobs lasting {min_s:.0f}..{max_s:.0f} s ...")
        token = sandbox.token()
        session = requests.Session()
        job_ids, submitted_at = [], {}
        t0 = time.time()
        for i in range(n):
            resp = session.post(
                sandbox.url + "/v1/process/video",
                params={"webhookUrl": webhook},
                data=media[i % steps],
                headers={"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"},
                timeout=60,
            )
            resp.raise_for_status()
            job_ids.append(resp.json()["jobId"])
            submitted_at[job_ids[-1]] = time.time()
        submit_s = time.time() - t0
        stats0 = sandbox.stats()
        proc.stdin.write(json.dumps(job_ids) + "\n")
        proc.stdin.flush()
        log(
            f"  {n} jobs submitted in {submit_s:.1f} s; {n} triggers running "
            f"(poll interval {poll_interval:g} s, starts spread over {spread:g} s) ..."
        )
        out, err = proc.communicate(timeout=max_s * 4 + 600)
        if proc.returncode != 0:
            raise RuntimeError(f"trigger worker failed: {err[-3000:]}")
        result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
        stats1 = sandbox.stats()
        time.sleep(0.5)

        # A poke-mode sensor for comparison: one poke measured in its own process.
        poke = run_child("bench.trigger", ["poke", "--job-id", job_ids[0], "--pokes", "200"], env)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        sandbox.stop()
        sink.shutdown()

    events = result.pop("events")
    lags, early, missing = [], 0, 0
    for job_id in job_ids:
        completed = _Sink.stamps.get(job_id, {}).get("completed")
        event = events.get(job_id)
        if completed is None or event is None or event["status"] != "success":
            missing += 1
            continue
        if completed < event["start"]:
            early += 1  # finished before its trigger started: no lag to speak of
            continue
        lags.append(event["at"] - completed)
    requests_sent = stats1["requests"].get(JOB_ROUTE, 0) - stats0["requests"].get(JOB_ROUTE, 0)
    token_fetches = stats1["token_requests"] - stats0["token_requests"]
    wait_s = [
        _Sink.stamps[j]["completed"] - events[j]["start"]
        for j in job_ids
        if "completed" in _Sink.stamps.get(j, {}) and j in events
    ]
    _Sink.stamps = {}
    return {
        "triggers": n,
        "spread_s": spread,
        "poll_interval": poll_interval,
        "job_seconds": [min_s, max_s],
        "submit_s": submit_s,
        **result,
        "events_success": sum(1 for e in events.values() if e["status"] == "success"),
        "events_other": {
            s: sum(1 for e in events.values() if e["status"] == s)
            for s in {e["status"] for e in events.values()} - {"success"}
        },
        "missing": missing,
        "finished_before_start": early,
        "lag_n": len(lags),
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "lag_max": max(lags, default=float("nan")),
        "lag_min": min(lags, default=float("nan")),
        "requests_sent": requests_sent,
        "requests_per_trigger": requests_sent / n,
        "requests_ideal": sum(math.ceil(max(0.0, w) / poll_interval) + 1 for w in wait_s),
        "token_fetches": token_fetches,
        "poke": poke,
        "poke_mode": _poke_math(n, poll_interval, poke, result, requests_sent),
    }


def run_hook_pairs(
    workdir: Path, n: int, poll_interval: float, job_seconds: float, repeat: int, previous_rev: str, log=print
) -> dict:
    """The trigger's polling path with the current hook vs the previous one: CPU per job GET, paired.

    Each repeat starts one process that polls, after a small warm-up batch with each hook, ``n`` fresh
    jobs of ``job_seconds`` from ``n`` concurrent waits (one hook and session per wait, as
    ``SymblJobTrigger`` does) with one hook, then ``n`` more with the other, back to back in the same
    process (so a pair shares the machine's load and the process state), the order alternating.
    """
    import requests

    from symbl_sandbox.samples import make_mp4

    clip = make_mp4(workdir / "clip.mp4", [("Alice", "Tick."), ("Bob", "Tock.")], seconds_per_cue=job_seconds / 2)
    media = clip.read_bytes()
    sandbox = _job_sandbox(workdir / "sandbox-pairs", n)
    runs = []
    try:
        env = child_env(AIRFLOW_CONN_SYMBL_DEFAULT=sandbox.conn_json())
        token = sandbox.token()
        session = requests.Session()
        for rep in range(repeat):
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.trigger", "worker", "--poll-interval", str(poll_interval),
                 "--hook", "pairs", "--previous-rev", previous_rev],
                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-3000:]
                # A warm-up batch first (not reported), then the pair, its order alternating per repeat.
                order = ["current", "previous"] + (["previous", "current"] if rep % 2 == 0 else ["current", "previous"])
                for index, hook in enumerate(order):
                    job_ids = []
                    for _ in range(n if index >= 2 else 20):
                        resp = session.post(
                            sandbox.url + "/v1/process/video",
                            data=media,
                            timeout=60,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"},
                        )
                        resp.raise_for_status()
                        job_ids.append(resp.json()["jobId"])
                    before = sandbox.stats()["requests"].get(JOB_ROUTE, 0)
                    proc.stdin.write(f"{hook} {json.dumps(job_ids)}\n")
                    proc.stdin.flush()
                    result = json.loads(proc.stdout.readline())
                    assert proc.stdout.readline().strip() == "ready"
                    if index < 2:
                        continue
                    gets = sandbox.stats()["requests"].get(JOB_ROUTE, 0) - before
                    ok = sum(1 for e in result["events"].values() if e["status"] == "success")
                    runs.append(
                        {
                            "hook": hook,
                            "repeat": rep,
                            "gets": gets,
                            "cpu_s": result["cpu_s"],
                            "wall_s": result["wall_s"],
                            "ms_per_get": 1000 * result["cpu_s"] / max(1, gets),
                            "success": ok,
                            "triggers": n,
                        }
                    )
                    log(
                        f"  {hook:<8} repeat {rep}: {gets} GETs, "
                        f"{runs[-1]['ms_per_get']:.3f} ms CPU per GET, {ok}/{n} ok"
                    )
                proc.stdin.close()
                proc.wait(60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        sandbox.stop()
    by = {(r["hook"], r["repeat"]): r for r in runs}
    # > 1 means the current hook spends less CPU per GET than the previous one.
    ratios = [by[("previous", rep)]["ms_per_get"] / by[("current", rep)]["ms_per_get"] for rep in range(repeat)]
    return {
        "triggers": n,
        "poll_interval": poll_interval,
        "job_seconds": job_seconds,
        "previous_rev": previous_rev,
        "runs": runs,
        "speed_ratio": {"median": median(ratios), "min": min(ratios), "max": max(ratios)},
    }


def _poke_math(n: int, poll_interval: float, poke: dict, result: dict, requests_sent: int) -> dict:
    """What the same wait costs as N poke-mode sensors: a worker slot (task process) held per sensor."""
    pokes = requests_sent  # the same number of status checks at the same interval
    return {
        "worker_slots_held": n,
        "task_process_rss_each": poke["rss"],
        "rss_total": n * poke["rss"],
        "cpu_s_for_pokes": pokes * poke["cpu_per_poke"],
        "deferrable_rss_total": result["max_rss"],
        "deferrable_cpu_s": result["cpu_s"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trigger")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--poll-interval", type=float, default=10.0)
    w.add_argument("--timeout", type=float, default=3600.0)
    w.add_argument("--spread", type=float, default=0.0)
    w.add_argument("--hook", choices=("pairs",), help="hook pairs: poll batches named on stdin with either hook")
    w.add_argument("--previous-rev", default="")
    p = sub.add_parser("poke")
    p.add_argument("--job-id", required=True)
    p.add_argument("--pokes", type=int, default=200)
    r = sub.add_parser("run")
    r.add_argument("--triggers", type=int, default=1000)
    r.add_argument("--poll-interval", type=float, default=10.0)
    r.add_argument("--min-seconds", type=float, default=15.0)
    r.add_argument("--max-seconds", type=float, default=75.0)
    r.add_argument("--spread", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.command == "worker":
        print(json.dumps(worker(args)), flush=True)
    elif args.command == "poke":
        print(json.dumps(poke_worker(args)), flush=True)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-trigger-") as tmp:
            out = run(Path(tmp), args.triggers, args.poll_interval, args.min_seconds, args.max_seconds, args.spread)
        out["max_rss_mib"] = out["max_rss"] / MiB
        json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
