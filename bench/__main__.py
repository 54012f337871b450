"""``python -m bench``: every benchmark of issue #9, then docs/benchmarks.md and docs/benchmarks.png.

``python -m bench --quick`` runs small sizes in a few minutes and leaves the docs alone (unless
``--docs``); ``--only upload,trigger,parse`` picks benchmarks; ``--sizes 100,500`` sets the MiB sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import ordered, parse, report, trigger, upload
from bench.common import ROOT, machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, 200 triggers, short jobs")
    parser.add_argument("--only", default="parse,trigger,upload,ordered", help="comma-separated benchmarks to run")
    parser.add_argument("--sizes", help="upload sizes in MiB (default 100,500,2048; quick: 16,64)")
    parser.add_argument("--repeat", type=int, help="runs per upload variant and size (default 3; quick: 2)")
    parser.add_argument("--triggers", type=int, help="number of triggers (default 1000; quick: 200)")
    parser.add_argument("--poll-interval", type=float, help="trigger poll interval in s (default 10; quick: 3)")
    parser.add_argument("--docs", action="store_true", help="write docs/ even for --quick")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/<full|quick>.json)")
    args = parser.parse_args(argv)

    quick = args.quick
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    sizes = [int(s) for s in (args.sizes or ("16,64" if quick else "100,500,2048")).split(",")]
    repeat = args.repeat or (2 if quick else 3)
    n = args.triggers or (200 if quick else 1000)
    poll = args.poll_interval or (3.0 if quick else 10.0)
    job_range = (5.0, 20.0) if quick else (15.0, 75.0)
    out_path = args.out or ROOT / "bench" / "results" / f"{'quick' if quick else 'full'}.json"

    results: dict = {
        "mode": "quick" if quick else "full",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "loadavg_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="symbl-bench-") as tmp:
        workdir = Path(tmp)
        if "parse" in only:
            print("DAG parse", flush=True)
            results["parse"] = parse.run(repeat=3 if quick else 7)
        if "trigger" in only:
            results["trigger"] = []
            for spread in (0.0, poll):
                label = "all at once" if not spread else f"starts spread over {spread:g} s"
                print(f"Triggerer scale: {n} triggers, {label}", flush=True)
                results["trigger"].append(
                    trigger.run(workdir / f"trigger-{spread:g}", n, poll, *job_range, spread=spread)
                )
        if "upload" in only:
            print(f"Upload path: sizes {sizes} MiB, {repeat} run(s) per variant", flush=True)
            results["upload"] = upload.run(sizes, workdir / "upload", repeat=repeat)
        if "ordered" in only:
            print("Strict order: append N parts with and without waiting for each job (deferred)", flush=True)
            results["ordered"] = ordered.run(workdir / "ordered", parts=5, repeat=2 if quick else 3)
    results["loadavg_after"] = os.getloadavg()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")

    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {out_path}")
    if (not quick or args.docs) and not args.no_docs:
        md, png = report.write(results, ROOT / "docs")
        print(f"wrote {md} and {png}")
    for line in report.verdicts(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
