"""Discovery at scale: N conversation folders, 5 parts each, a few new; the indexed scan vs a full read.

The full read is what discovery did before (list, then read every folder's ledger); the indexed scan
lists, reads one index object and only the ledgers of folders whose listing changed. Both run in
the same process against the same local S3 (moto server), and count their S3 requests. Then the
capped mapping: ``new`` conversations discovered in batches of ``cap`` until none is left, each
batch marked done the way the append task would (its ledger written), with no batch above the cap.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import ROOT

BUCKET, PREFIX = "bench-discovery", "videos/"


def _ledger(folder: str, parts: dict[str, str]) -> bytes:
    return json.dumps(
        {
            "version": 2,
            "conversation_id": f"c-{folder}",
            "parts": [
                {"uri": f"s3://{BUCKET}/{PREFIX}{folder}/{name}", "seq": i + 1, "etag": etag, "size": 3}
                | {"state": "completed", "job_id": f"j-{folder}-{i}"}
                for i, (name, etag) in enumerate(sorted(parts.items()))
            ],
        }
    ).encode()


def _populate(client, folders: int, parts_per_folder: int, new: int) -> None:
    """``folders`` conversations fully appended (ledger present), then ``new`` extra parts in some of them."""

    def one(i: int) -> None:
        folder = f"conv-{i:05d}"
        etags = {}
        for p in range(1, parts_per_folder + 1):
            name = f"part-{p:03d}.mp4"
            etags[name] = client.put_object(Bucket=BUCKET, Key=f"{PREFIX}{folder}/{name}", Body=b"mp4")["ETag"].strip(
                '"'
            )
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}{folder}/_symbl.json", Body=_ledger(folder, etags))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(folders)))
    step = max(folders // max(new, 1), 1)
    for i in range(new):
        folder = f"conv-{(i * step) % folders:05d}"
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}{folder}/part-{parts_per_folder + 1:03d}.mp4", Body=b"mp4")


def _classify(keys: list[str], repeat: int) -> dict:
    """CPU of sorting a listing's keys into parts and the rest: the rule before layouts (one folder level,
    ``.mp4`` only) vs ``Layout.place`` (any depth, every object accounted for), alternating, same keys."""
    from symbl_airflow.discovery import Layout

    def before(key: str) -> object:  # discovery's split_part_key + is_part before folder_depth
        if not key.startswith(PREFIX):
            return None
        conversation, _, part = key[len(PREFIX) :].partition("/")
        if not conversation or not part or "/" in part:
            return None
        return part.lower().endswith(".mp4") and not part.startswith("_")

    layout = Layout.of(BUCKET, PREFIX, 1)
    rows: dict[str, list[float]] = {"before": [], "layout": []}
    for r in range(repeat):
        for name, fn in (("before", before), ("layout", layout.place))[:: 1 if r % 2 == 0 else -1]:
            c0 = time.process_time()
            for key in keys:
                fn(key)
            rows[name].append(time.process_time() - c0)
    b, a = statistics.median(rows["before"]), statistics.median(rows["layout"])
    return {"keys": len(keys), "before_cpu_s": rows["before"], "layout_cpu_s": rows["layout"],
            "us_per_key_before": b / len(keys) * 1e6, "us_per_key_layout": a / len(keys) * 1e6}  # fmt: skip


def run(workdir: Path, *, folders: int = 10_000, parts_per_folder: int = 5, new: int = 10, repeat: int = 3,
        mapped: int = 2000, cap: int = 500) -> dict:  # fmt: skip
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    import os

    from scripts.local_stack import start_s3

    s3 = start_s3(workdir / "s3")
    try:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = s3.conn_json()
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from symbl_airflow.discovery import scan

        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        started = time.monotonic()
        _populate(client, folders, parts_per_folder, new)
        populate_s = time.monotonic() - started
        hook = S3Hook(aws_conn_id="aws_default")
        scan(hook, BUCKET, PREFIX, "insights/", limit=10**6)  # builds the index once, as the first run would
        rows = {"indexed": [], "full": []}
        for r in range(repeat):
            order = ("indexed", "full") if r % 2 == 0 else ("full", "indexed")
            for variant in order:
                t0, c0 = time.monotonic(), time.process_time()
                found = scan(hook, BUCKET, PREFIX, "insights/", limit=10**6, use_index=variant == "indexed")
                seconds, cpu = time.monotonic() - t0, time.process_time() - c0
                assert len(found.work) == new, (variant, len(found.work))
                rows[variant].append(
                    {"seconds": seconds, "cpu_seconds": cpu, "requests": sum(found.requests.values()), **found.requests}
                )
        indexed, full = rows["indexed"], rows["full"]
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX, MaxKeys=1000)["Contents"]]
        result = {
            "classify": _classify(keys * 50, repeat=5),
            "folders": folders,
            "parts": folders * parts_per_folder + new,
            "new_parts": new,
            "populate_seconds": populate_s,
            "indexed": indexed,
            "full": full,
            "indexed_seconds_median": statistics.median(x["seconds"] for x in indexed),
            "full_seconds_median": statistics.median(x["seconds"] for x in full),
            "indexed_requests": indexed[0]["requests"],
            "full_requests": full[0]["requests"],
            "request_ratio": full[0]["requests"] / indexed[0]["requests"],
            "time_ratio_paired": [f["seconds"] / i["seconds"] for f, i in zip(full, indexed, strict=True)],
        }

        # Capped mapping: `mapped` brand-new conversations, discovered `cap` at a time.
        for i in range(mapped):
            client.put_object(Bucket=BUCKET, Key=f"{PREFIX}new-{i:05d}/part-001.mp4", Body=b"mp4")
        batches = []
        while True:
            t0 = time.monotonic()
            found = scan(hook, BUCKET, PREFIX, "insights/", limit=cap)
            batch = [w for w in found.work if "/new-" in w["ledger_uri"]]
            if not batch:
                break
            assert len(found.work) <= cap
            batches.append({"mapped": len(found.work), "left": len(found.deferred), "seconds": time.monotonic() - t0})
            for item in batch:  # what the append task does: the ledger now holds the part
                folder = item["ledger_uri"].split("/")[-2]
                etag = client.head_object(Bucket=BUCKET, Key=f"{PREFIX}{folder}/part-001.mp4")["ETag"].strip('"')
                client.put_object(
                    Bucket=BUCKET, Key=f"{PREFIX}{folder}/_symbl.json", Body=_ledger(folder, {"part-001.mp4": etag})
                )
        result["capped"] = {"conversations": mapped, "cap": cap, "batches": batches}
        return result
    finally:
        s3.stop()


if __name__ == "__main__":
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory(prefix="symbl-bench-discovery-") as tmp:
        print(json.dumps(run(Path(tmp), folders=n, repeat=2, mapped=min(2000, n), cap=500), indent=1))


def markdown(result: dict) -> list[str]:
    """The report section (``{{DISCOVERY}}``)."""
    indexed, full = result["indexed"], result["full"]

    def row(label: str, runs: list[dict], median_s: float) -> str:
        first = runs[0]
        times = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        counts = f"{first['requests']:,} ({first['list']} / {first['get']} / {first['put']})"
        cpu = [r["cpu_seconds"] for r in runs if "cpu_seconds" in r]
        cpu_text = f"{statistics.median(cpu):.1f} s" if cpu else "-"
        return f"| {label} | {counts} | {median_s:.1f} s | {cpu_text} | {times} |"

    lines = [
        f"{result['folders']:,} conversation folders, {result['parts']:,} parts, {result['new_parts']} of them new;"
        " one local S3 (moto server); repeats alternate the two variants:",
        "",
        "| variant | S3 requests (LIST / GET / PUT) | time median | client CPU median | runs |",
        "|---|---:|---:|---:|---|",
        row("indexed scan (listing + `_symbl_index.json`)", indexed, result["indexed_seconds_median"]),
        row("full read (listing + every ledger, as before)", full, result["full_seconds_median"]),
        "",
        f"**{result['request_ratio']:.0f}x fewer S3 requests**; time full / indexed paired:"
        f" {', '.join(f'{x:.1f}x' for x in result['time_ratio_paired'])}. The indexed scan's time is the listing"
        f" ({indexed[0]['list']} pages of 1,000 keys in moto), which an event-driven run skips.",
    ]
    classify = result.get("classify")
    if classify:
        lines += [
            "",
            f"Sorting a listing into parts and the rest (`Layout.place`: any `folder_depth`, every object accounted"
            f" for) costs {classify['us_per_key_layout']:.2f} µs of CPU per key against"
            f" {classify['us_per_key_before']:.2f} µs for the rule before layouts (one level, `.mp4` only),"
            f" alternating on the same {classify['keys']:,} keys:"
            f" {(classify['us_per_key_layout'] - classify['us_per_key_before']) * result['parts'] / 1e6:.2f} s more"
            f" per scan of {result['parts']:,} keys, beside the client CPU above (mostly the listing's XML) and"
            " the wall time (mostly moto paging the listing).",
        ]
    capped = result.get("capped")
    if capped:
        batches = capped["batches"]
        lines += [
            "",
            f"Capped mapping: {capped['conversations']:,} new conversations, cap {capped['cap']} per run (always below"
            " `[core] max_map_length`, 1,024 by default): "
            + ", ".join(f"{b['mapped']} mapped ({b['left']} left, {b['seconds']:.1f} s)" for b in batches)
            + f"; {len(batches)} runs, none over the cap, no expansion error possible.",
        ]
    return lines


def targets(result: dict) -> list[tuple[str, str, str, bool]]:
    return [
        (
            "discovery",
            f">= 20x fewer S3 requests than a full read at {result['folders']:,} folders",
            f"{result['request_ratio']:.0f}x",
            result["request_ratio"] >= 20,
        ),
        (
            "discovery",
            f"indexed scan < 30 s at {result['folders']:,} folders",
            f"{result['indexed_seconds_median']:.1f} s",
            result["indexed_seconds_median"] < 30,
        ),
    ]
