"""Insights as tables at 1,000 conversations: what the tables add to the raw JSON writes.

Per conversation, both variants run against one local S3 (moto server), in this process, on the same
payloads (realistic sizes: a 60-message transcript, topics, questions, action items, follow-ups,
entities, a tracker, analytics of 3 members, a summary):

* **raw JSON** (the baseline, what ``SymblInsightsOperator`` wrote before): one PUT per insight kind
  (11) plus ``index.json``;
* **tables**: what the tables add, through the operator's own code (``symbl_airflow.tables.publish``):
  the GET of the earlier ``index.json``, the meeting date (HEAD + the MP4 box walk of the first video,
  a real small MP4 per conversation), the rows of 10 tables and one PUT per table; run twice, the
  second time replacing the first write (the re-run case).

Reported: time and S3 requests per conversation, bytes written, and tables / raw JSON as a paired
ratio per repeat; also Parquet's encoding time apart.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.common import ROOT

BUCKET = "bench-tables"
SECTION_START = "<!-- bench.tables: start -->"
SECTION_END = "<!-- bench.tables: end -->"
HEADING = "## 10. Insights as tables: 1,000 conversations (issue #21)"
INTRO = "`bench/tables.py`: the tables' writes against the raw JSON writes of the same conversations."
#: Conversations written at once (mapped insights tasks run side by side; one boto3 client is thread-safe).
WORKERS = 8


def payloads(i: int) -> dict:
    """One conversation's insights in Symbl's shapes (ids vary per conversation)."""
    c = f"{5_000_000_000_000_000 + i}"
    members = [{"id": f"u{i}-{m}", "name": f"Speaker {m}", "email": f"s{m}@example.com"} for m in range(3)]
    t0 = "2026-12-06T10:00:00.000Z"
    messages = [
        {"id": f"{c}{n:04d}", "text": f"Sentence number {n} of the meeting about the launch plan and budget.",
         "from": members[n % 3], "startTime": t0, "endTime": t0, "timeOffset": n * 4.0, "duration": 4.0,
         "conversationId": c, "phrases": [], "sentiment": {"polarity": {"score": 0.1}, "suggested": "neutral"}}
        for n in range(60)
    ]  # fmt: skip

    def item(kind: str, n: int) -> dict:
        return {"id": f"{c}{kind}{n}", "text": messages[n * 7]["text"], "type": kind, "score": 0.9,
                "messageIds": [messages[n * 7]["id"]], "from": members[n % 3], "assignee": members[(n + 1) % 3],
                "definitive": True, "dueBy": "2026-12-08T00:00:00.000Z",
                "phrases": [{"type": "action_phrase", "text": "send the plan"}],
                "entities": [{"type": "date", "text": "Tuesday", "offset": 3, "value": "2026-12-08"}]}  # fmt: skip

    refs = [{"id": m["id"], "text": m["text"], "offset": 4} for m in messages[:3]]
    return {
        "conversation": {"id": c, "type": "meeting", "name": f"Meeting {i}", "startTime": t0, "endTime": t0,
                         "members": members, "metadata": {}},
        "messages": {"messages": messages},
        "topics": {"topics": [{"id": f"{c}t{n}", "text": f"topic {n}", "type": "topic", "score": 0.7,
                               "messageIds": [m["id"] for m in messages[n::10]], "parentRefs": [],
                               "sentiment": {"polarity": {"score": 0.2}, "suggested": "positive"}} for n in range(5)]},
        "questions": {"questions": [{**item("question", n), "type": "question"} for n in range(4)]},
        "action_items": {"actionItems": [item("action_item", n) for n in range(3)]},
        "follow_ups": {"followUps": [item("follow_up", n) for n in range(2)]},
        "entities": {"entities": [{"id": f"{c}e{n}", "type": "date", "subType": "date", "category": "Managed",
                                   "matches": [{"detectedValue": "Tuesday", "value": "2026-12-08",
                                                "messageRefs": refs}]} for n in range(4)]},
        "trackers": [{"id": f"{c}k", "name": "Pricing", "matches": [
            {"type": "vocabulary", "value": "budget", "messageRefs": refs, "insightRefs": []}]}],
        "analytics": {"metrics": [{"type": "total_talk_time", "percent": 100.0, "seconds": 240.0}],
                      "members": [{**m, "pace": {"wpm": 150}, "talkTime": {"percentage": 33.3, "seconds": 80.0},
                                   "listenTime": {"percentage": 66.7, "seconds": 160.0}, "overlap": {}}
                                  for m in members]},
        "summary": {"summary": [{"id": f"{c}s{n}", "text": messages[n]["text"],
                                 "messageRefs": [{"id": messages[n]["id"]}]} for n in range(3)]},
        "members": {"members": members},
    }  # fmt: skip


class _Counter:
    """S3 requests by operation, from botocore's events on the one client both variants use."""

    def __init__(self, client) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        client.meta.events.register("before-call.s3.*", self._count)

    def _count(self, model, **_kwargs) -> None:
        with self.lock:
            self.counts[model.name] += 1

    def take(self) -> dict[str, int]:
        with self.lock:
            out, self.counts = dict(self.counts), Counter()
        return out


def _raw(client, prefix: str, p: dict) -> int:
    """What the operator writes without tables: one object per kind, then the index."""
    written = 0
    for kind, payload in p.items():
        data = json.dumps(payload, ensure_ascii=False).encode()
        client.put_object(Bucket=BUCKET, Key=f"{prefix}{kind}.json", Body=data)
        written += len(data)
    index = json.dumps({"conversation_id": p["conversation"]["id"], "insights": {k: {} for k in p}}).encode()
    client.put_object(Bucket=BUCKET, Key=f"{prefix}index.json", Body=index)
    return written + len(index)


def run(workdir: Path, *, conversations: int = 1000, repeat: int = 2) -> dict:
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    import logging
    import os

    from scripts.local_stack import start_s3

    s3 = start_s3(workdir / "s3")
    try:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = s3.conn_json()
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from symbl_airflow import tables as T
        from symbl_airflow.tables.rows import common_columns, table_rows
        from symbl_airflow.tables.writer import encode
        from symbl_sandbox.samples import make_mp4

        log = logging.getLogger("bench.tables")
        log.setLevel(logging.WARNING)  # one INFO line per conversation otherwise
        hook = S3Hook(aws_conn_id="aws_default")
        client = hook.get_conn()
        client.create_bucket(Bucket=BUCKET)
        make_mp4(workdir / "part.mp4", [("Alice", "Hello."), ("Bob", "Hi.")])
        video = (workdir / "part.mp4").read_bytes()
        for i in range(conversations):
            client.put_object(Bucket=BUCKET, Key=f"videos/conv-{i:05d}/part-001.mp4", Body=video)
        data = [payloads(i) for i in range(conversations)]
        counter = _Counter(client)
        plain = s3.client()

        def timed(label: str, one) -> dict:
            """``one(i, p) -> bytes written`` over every conversation, 8 at a time (as mapped tasks run)."""
            counter.take()
            t0, c0 = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(WORKERS) as pool:
                written = sum(pool.map(one, range(conversations), data))
            return {"variant": label, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                    "requests": counter.take(), "bytes": written}  # fmt: skip

        runs = []
        for r in range(repeat):
            config = T.resolve_config(f"tables-{r}/", "jsonl", BUCKET, None, None)

            def tables_one(i: int, p: dict, r=r, config=config) -> int:
                index_key = f"insights-{r}/conv-{i:05d}/index.json"
                previous = T.read_json_object(client, f"s3://{BUCKET}/{index_key}")
                entry = T.publish(
                    hook, config, conversation_id=p["conversation"]["id"], payloads=p, missing=[],
                    append=None, sources=[f"s3://{BUCKET}/videos/conv-{i:05d}/part-001.mp4"],
                    output_prefix=f"insights-{r}/conv-{i:05d}/", previous=previous, log=log,
                )  # fmt: skip
                # The index entry the operator keeps, so the next pass replaces. The index.json PUT itself is
                # the baseline's (written with or without tables): an uncounted client writes it.
                plain.put_object(Bucket=BUCKET, Key=index_key, Body=json.dumps({"tables": entry}).encode())
                return sum(f["bytes"] for f in entry["files"].values())

            raw = timed("raw", lambda i, p, r=r: _raw(client, f"raw-{r}/conv-{i:05d}/", p))
            first = timed("tables (first write)", tables_one)
            again = timed("tables (re-run: replaced)", tables_one)
            runs.append({"repeat": r, "raw": raw, "tables": first, "rerun": again})
            print(f"  repeat {r}: raw {raw['seconds']:.1f} s, tables {first['seconds']:.1f} s, re-run", end=" ")
            print(f"{again['seconds']:.1f} s", flush=True)

        # Encoding alone (CPU, no S3): rows + gzip JSON Lines vs rows + Parquet, per conversation.
        enc = {}
        day = datetime(2026, 12, 6).date()
        for fmt in ("jsonl", "parquet"):
            t0 = time.process_time()
            for p in data[: min(200, conversations)]:
                common = common_columns(p["conversation"]["id"], "k", day, [], datetime(2026, 12, 6, tzinfo=UTC))
                for table, rows in table_rows(p, common).items():
                    encode(table, rows, fmt)
            enc[fmt] = (time.process_time() - t0) / min(200, conversations) * 1000
        n = conversations

        def per(run: dict) -> dict:
            ops = {k: v / n for k, v in sorted(run["requests"].items())}
            return {"ms": run["seconds"] / n * 1000, "cpu_ms": run["cpu"] / n * 1000, "kib": run["bytes"] / n / 1024,
                    "requests": sum(run["requests"].values()) / n, "by_op": ops}  # fmt: skip

        return {
            "conversations": n,
            "repeat": repeat,
            "runs": runs,
            "raw": per(runs[-1]["raw"]),
            "tables": per(runs[-1]["tables"]),
            "rerun": per(runs[-1]["rerun"]),
            "time_ratio": [x["tables"]["seconds"] / x["raw"]["seconds"] for x in runs],
            "rerun_ratio": [x["rerun"]["seconds"] / x["raw"]["seconds"] for x in runs],
            "request_ratio": sum(runs[-1]["tables"]["requests"].values()) / sum(runs[-1]["raw"]["requests"].values()),
            "encode_ms": enc,
        }
    finally:
        s3.stop()


def bench(settings, workdir: Path) -> dict:
    n = 200 if settings.quick else 1000
    print(f"Insights as tables: {n} conversations, raw JSON writes vs tables")
    return run(workdir / "tables", conversations=n, repeat=settings.repeat or (1 if settings.quick else 2))


def markdown(result: dict) -> list[str]:
    """The report section (``{{TABLES}}`` in bench/benchmarks_template.md), without its heading."""
    raw, tab, again = result["raw"], result["tables"], result["rerun"]

    def ops(x: dict) -> str:
        return ", ".join(f"{k} {v:g}" for k, v in x["by_op"].items())

    def ratio(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f}x ({min(xs):.2f}-{max(xs):.2f})"

    return [
        "`python -m bench.tables` (or `python -m bench --only tables`): "
        f"{result['conversations']:,} conversations written {WORKERS} at a time to a local S3 (moto server),"
        f" {result['repeat']} repeat(s); the payloads have Symbl's shapes and sizes of a ~4-minute meeting"
        " (60 messages, 3 members). Per conversation (last repeat):",
        "",
        "| variant | time | CPU | S3 requests | written |",
        "|---|---:|---:|---|---:|",
        f"| raw JSON (baseline: 11 kinds + index.json) | {raw['ms']:.1f} ms | {raw['cpu_ms']:.1f} ms"
        f" | {raw['requests']:g} ({ops(raw)}) | {raw['kib']:.1f} KiB |",
        f"| tables, first write (10 tables) | {tab['ms']:.1f} ms | {tab['cpu_ms']:.1f} ms"
        f" | {tab['requests']:g} ({ops(tab)}) | {tab['kib']:.1f} KiB |",
        f"| tables, re-run (every object replaced) | {again['ms']:.1f} ms | {again['cpu_ms']:.1f} ms"
        f" | {again['requests']:g} ({ops(again)}) | {again['kib']:.1f} KiB |",
        "",
        f"Tables / raw JSON, paired per repeat: time {ratio(result['time_ratio'])} on the first write,"
        f" {ratio(result['rerun_ratio'])} on a re-write; S3 requests {result['request_ratio']:.2f}x on the first"
        " write. Beyond one PUT per table, a first write reads the earlier `index.json` (1 GET, for"
        " replacement) and the meeting date from the first video (a HEAD, then the MP4 box walk: a HEAD and"
        " 2-3 ranged GETs of a few bytes, each a full request to moto); a re-write finds the same video"
        " (URI and ETag) in the index and reuses its date after one HEAD, so it costs as many requests as the"
        f" raw JSON writes, on objects {raw['kib'] / tab['kib']:.0f}x smaller (gzip; the raw JSON is kept as"
        " well, so the tables add this, they replace nothing). Encoding alone (rows of all 10 tables, no S3):"
        f" {result['encode_ms']['jsonl']:.2f} ms per conversation as gzip JSON Lines,"
        f" {result['encode_ms']['parquet']:.2f} ms as Parquet.",
    ]


def targets(result: dict) -> list[tuple[str, str, str, bool]]:
    first, rerun = statistics.median(result["time_ratio"]), statistics.median(result["rerun_ratio"])
    return [
        ("tables", "a conversation's first tables write: at most 1.5x the time of its raw JSON writes",
         f"{first:.2f}x", first <= 1.5),
        ("tables", "a re-write (re-run, new part): at most 1.5x the time of the raw JSON writes",
         f"{rerun:.2f}x", rerun <= 1.5),
        ("tables", "S3 requests per conversation: at most 16 on the first write, 12 on a re-write",
         f"{result['tables']['requests']:g} / {result['rerun']['requests']:g}",
         result["tables"]["requests"] <= 16 and result["rerun"]["requests"] <= 12),
    ]  # fmt: skip


def write_docs(result: dict, path: Path = ROOT / "docs" / "benchmarks.md") -> None:
    """Put the figures into docs/benchmarks.md between this section's markers (heading added if missing)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    rows = [f"| {t} | {m} | {'met' if ok else '**missed**'} |" for _, t, m, ok in targets(result)]
    body = "\n".join(
        [SECTION_START, *markdown(result), "", "| target | measured | |", "|---|---|---|", *rows, SECTION_END]
    )
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + body + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{INTRO}\n\n{body}\n"
    path.write_text(text)


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.tables")
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tables.json")
    parser.add_argument("--docs", action="store_true", help="write the docs/benchmarks.md section")
    parser.add_argument("--from-results", action="store_true", help="only write the docs from --out's figures")
    args = parser.parse_args()
    if args.from_results:
        write_docs(json.loads(args.out.read_text()))
        sys.exit(0)
    with tempfile.TemporaryDirectory(prefix="symbl-bench-tables-") as tmp:
        out = run(Path(tmp), conversations=args.conversations, repeat=args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print("\n".join(markdown(out)))
    if args.docs:
        write_docs(out)
