"""``python -m bench``: every benchmark, then docs/benchmarks.md and docs/benchmarks.png.

``python -m bench --quick`` runs small sizes in a few minutes and leaves the docs alone (unless
``--docs``); ``--only isolated,hooks`` picks benchmarks (names: see ``BENCHMARKS``); ``--reuse FILE``
takes the sections not run now from an earlier results file (their own dates are kept and shown).

Adding a benchmark: write ``bench/<name>.py`` with ``bench(settings: Settings, workdir: Path) -> dict``
(JSON-serializable) and, for the report, ``markdown(result: dict) -> list[str]`` (a section placed at
``{{<NAME>}}`` in ``bench/benchmarks_template.md``) and optionally ``targets(result) -> [(benchmark,
target, measured, met)]``; then add it to ``BENCHMARKS`` below. ``report.py`` needs no change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import discovery, events, isolated, media, ordered, parse, report, tables, trigger, triggerer, upload
from bench.common import ROOT, machine


@dataclass(frozen=True)
class Settings:
    """What a benchmark may read from the command line."""

    quick: bool
    sizes_mib: list[int] | None
    repeat: int | None
    triggers: int | None
    poll_interval: float | None


def _parse(s: Settings, workdir: Path) -> dict:
    return parse.run(repeat=3 if s.quick else 7)


def _trigger(s: Settings, workdir: Path) -> list[dict]:
    n, poll = s.triggers or (200 if s.quick else 1000), s.poll_interval or (3.0 if s.quick else 10.0)
    job_range = (5.0, 20.0) if s.quick else (15.0, 75.0)
    runs = []
    for spread in (0.0, poll):
        print(f"Triggerer scale: {n} triggers, {'all at once' if not spread else f'spread over {spread:g} s'}")
        runs.append(trigger.run(workdir / f"trigger-{spread:g}", n, poll, *job_range, spread=spread))
    return runs


def _hooks(s: Settings, workdir: Path) -> dict:
    n = s.triggers or (200 if s.quick else 500)
    print(f"Trigger path, current vs previous hook: {n} triggers, paired")
    return trigger.run_hook_pairs(
        workdir / "hook-pairs",
        n,
        1.0 if s.quick else 2.0,
        6.0 if s.quick else 10.0,
        2 if s.quick else 4,
        isolated.PREVIOUS_REV,
    )


def _isolated(s: Settings, workdir: Path) -> dict:
    from symbl_airflow.hooks import DEFAULT_CHUNK_SIZE

    sizes = s.sizes_mib or ([64, 256] if s.quick else [64, 512, 2048])
    print(f"Isolated upload path: sizes {sizes} MiB; chunk-size sweep")
    return isolated.run(
        sizes,
        workdir / "isolated",
        repeat=s.repeat or (3 if s.quick else 5),
        chunk_size=DEFAULT_CHUNK_SIZE,
        sweep_mib=256 if s.quick else 1024,
        sweep_repeat=2 if s.quick else 3,
    )


def _upload(s: Settings, workdir: Path) -> dict:
    sizes = s.sizes_mib or ([16, 64] if s.quick else [100, 500, 2048])
    print(f"Upload path with the local emulators: sizes {sizes} MiB")
    return upload.run(sizes, workdir / "upload", repeat=s.repeat or (2 if s.quick else 3))


def _ordered(s: Settings, workdir: Path) -> dict:
    print("Strict order: N parts with and without waiting for each job (deferred)")
    return ordered.run(workdir, parts=5, repeat=s.repeat or (2 if s.quick else 3))


def _discovery(s: Settings, workdir: Path) -> dict:
    folders = 1000 if s.quick else 10_000
    print(f"Discovery: {folders:,} conversation folders, indexed scan vs full read; capped mapping")
    return discovery.run(
        workdir, folders=folders, repeat=s.repeat or (2 if s.quick else 3), mapped=min(2000, folders), cap=500
    )


def _events(s: Settings, workdir: Path) -> dict:
    drops = 10 if s.quick else 50
    print(f"Event path: {drops} drops, drop-to-accepted latency")
    return events.run(workdir, drops=drops, intervals=(8.0, 2.0))


#: name -> (run, module with the optional ``markdown``/``targets`` of its report section)
BENCHMARKS: dict[str, tuple] = {
    "parse": (_parse, parse),
    "trigger": (_trigger, trigger),
    "hooks": (_hooks, trigger),
    "isolated": (_isolated, isolated),
    "upload": (_upload, upload),
    "ordered": (_ordered, ordered),
    "discovery": (_discovery, discovery),
    "events": (_events, events),
    "triggerer": (triggerer.bench, triggerer),
    "media": (media.bench, media),
    "tables": (tables.bench, tables),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, 200 triggers, short jobs")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks to run")
    parser.add_argument("--sizes", help="upload sizes in MiB")
    parser.add_argument("--repeat", type=int, help="runs (pairs) per upload variant and size")
    parser.add_argument("--triggers", type=int, help="number of triggers")
    parser.add_argument("--poll-interval", type=float, help="trigger poll interval in s (default 10; quick: 3)")
    parser.add_argument("--reuse", type=Path, help="results JSON to take the sections not run from")
    parser.add_argument("--docs", action="store_true", help="write docs/ even for --quick")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/<full|quick>.json)")
    args = parser.parse_args(argv)

    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    settings = Settings(
        quick=args.quick,
        sizes_mib=[int(s) for s in args.sizes.split(",")] if args.sizes else None,
        repeat=args.repeat,
        triggers=args.triggers,
        poll_interval=args.poll_interval,
    )
    out_path = args.out or ROOT / "bench" / "results" / f"{'quick' if args.quick else 'full'}.json"
    results: dict = {
        "mode": "quick" if args.quick else "full",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "loadavg_before": os.getloadavg(),
        "measured": {},
    }
    if args.reuse:
        earlier = json.loads(args.reuse.read_text())
        for name in BENCHMARKS:
            if name in earlier and name not in only:
                results[name] = earlier[name]
                results["measured"][name] = earlier.get("measured", {}).get(name) or earlier.get("started")
    with tempfile.TemporaryDirectory(prefix="symbl-bench-") as tmp:
        for name in only:
            run, _ = BENCHMARKS[name]
            results[name] = run(settings, Path(tmp) / name)
            results["measured"][name] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["loadavg_after"] = os.getloadavg()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")

    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {out_path}")
    if (not args.quick or args.docs) and not args.no_docs:
        md, png = report.write(results, ROOT / "docs", BENCHMARKS)
        print(f"wrote {md} and {png}")
    for line in report.verdicts(results, BENCHMARKS):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
