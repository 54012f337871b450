"""The one-command demo: the example pipeline end to end on local servers and a SQLite Airflow.

1. starts the Symbl sandbox and a local S3 (moto server) on loopback;
2. uploads captioned sample videos: 3 conversations of 2-3 parts;
3. runs ``symbl_video_pipeline`` with ``airflow dags test``;
4. adds one more part to one conversation and runs again (only that part is appended);
5. event-driven: starts a real Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor)
   with ``symbl_video_events`` watching the bucket's S3 notifications (moto's SQS), drops one more part
   and waits until it is in Symbl, with no run started by hand;
6. prints a summary per conversation, then "action items this week" from the insight tables with the
   README's DuckDB query, and stops everything it started.

With ``AIRFLOW_CONN_SYMBL_DEFAULT`` already set, the real Symbl API (or any endpoint it names) is used
instead of the sandbox. Run it with ``make demo``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "symbl-demo"
INPUT_PREFIX = "videos/"
OUTPUT_PREFIX = "insights/"

#: conversation key -> parts -> cues ("Speaker", "text"); captions become the sandbox transcript.
CONVERSATIONS = {
    "standup-2024-06-03": [
        [
            ("Alice", "Good morning team, let's start the standup."),
            ("Bob", "Yesterday I finished the billing migration."),
            ("Alice", "Great work on the billing migration."),
        ],
        [
            ("Carol", "I am blocked on the staging database."),
            ("Bob", "Can you share the error log with me?"),
            ("Carol", "I will send the error log after the meeting."),
        ],
    ],
    "customer-call-acme": [
        [
            ("Dana", "Thanks for joining, how is the pilot going?"),
            ("Erin", "The pilot is going well but pricing is a concern."),
        ],
        [
            ("Dana", "What pricing would work for your team?"),
            ("Erin", "We need a discount for the annual plan."),
            ("Dana", "I will follow up with a pricing proposal by Friday."),
        ],
        [
            ("Erin", "Please include the onboarding costs."),
            ("Dana", "Let's schedule a call next week to review it."),
        ],
    ],
    "design-review": [
        [
            ("Frank", "The new dashboard design is ready for review."),
            ("Grace", "Does the dashboard support dark mode?"),
        ],
        [
            ("Frank", "Dark mode ships in the next release."),
            ("Grace", "We need to test the dashboard on mobile."),
        ],
    ],
}
#: Dropped while Airflow runs for real: the event-driven DAG appends it.
EVENT_PART = (
    "standup-2024-06-03",
    [("Carol", "Quick update, the staging database is fixed."), ("Alice", "Thanks Carol, that unblocks the release.")],
)
EXTRA_PART = (
    "standup-2024-06-03",
    [
        ("Bob", "One more thing, the release is on Thursday."),
        ("Alice", "Please update the release notes before Thursday."),
    ],
)


def _wait_accepted(client, key: str, uri: str, airflow, timeout: float) -> dict:
    """Until the conversation's ledger records ``uri`` as accepted by Symbl (no run started by us)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        airflow.check()
        try:
            raw = client.get_object(Bucket=BUCKET, Key=f"{INPUT_PREFIX}{key}/_symbl.json")["Body"].read()
            part = next((p for p in json.loads(raw)["parts"] if p["uri"] == uri), None)
        except client.exceptions.NoSuchKey:
            part = None
        if part and part.get("state") in ("accepted", "completed"):
            return part
        time.sleep(0.5)
    raise SystemExit(f"{uri} did not reach Symbl within {timeout}s (logs: {airflow.log_dir})")


def _wait_event_run(airflow, timeout: float) -> dict:
    """Until the event-started run of symbl_video_events (append, wait, insights) has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        airflow.check()
        runs = airflow.runs("symbl_video_events")
        done = [r for r in runs if r.get("state") in ("success", "failed")]
        if done and len(done) == len(runs):
            if any(r["state"] == "failed" for r in done):
                raise SystemExit(f"an event run failed (logs: {airflow.log_dir})")
            return done[0]
        time.sleep(2)
    raise SystemExit(f"the event run did not finish within {timeout}s (logs: {airflow.log_dir})")


def _say(msg: str) -> None:
    print(f"\n=== {msg}", flush=True)


def _airflow(args: list[str], env: dict[str, str], log_path: Path) -> None:
    started = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise SystemExit(f"airflow {' '.join(args[:3])} failed (exit {proc.returncode}); log tail:\n{tail}")
    print(f"    airflow {' '.join(args[:3])}: ok in {time.monotonic() - started:.1f}s (log: {log_path})")


def _upload_parts(s3_client, make_mp4, workdir: Path, key: str, parts: list, start_index: int) -> list[str]:
    keys = []
    for i, cues in enumerate(parts, start=start_index):
        path = workdir / f"{key}-{i}.mp4"
        make_mp4(path, cues, seconds_per_cue=2.0)
        object_key = f"{INPUT_PREFIX}{key}/part-{i:03d}.mp4"
        s3_client.upload_file(str(path), BUCKET, object_key)
        keys.append(object_key)
    return keys


def _summary(s3_client, sandbox) -> None:
    from symbl_airflow.hooks import SymblHook

    hook = SymblHook()
    ledger = sandbox.ledger() if sandbox else []
    for key in CONVERSATIONS:
        state = json.loads(s3_client.get_object(Bucket=BUCKET, Key=f"{INPUT_PREFIX}{key}/_symbl.json")["Body"].read())
        conversation_id = state["conversation_id"]
        index = json.loads(s3_client.get_object(Bucket=BUCKET, Key=f"{OUTPUT_PREFIX}{key}/index.json")["Body"].read())
        messages = hook.get_insight(conversation_id, "messages").get("messages", [])
        topics = hook.get_insight(conversation_id, "topics").get("topics", [])
        questions = hook.get_insight(conversation_id, "questions").get("questions", [])
        actions = hook.get_insight(conversation_id, "action_items").get("actionItems", [])
        appends = [e for e in ledger if e["conversationId"] == conversation_id]
        print(f"\n--- {key}")
        print(f"    Symbl conversation {conversation_id}; {len(state['parts'])} part(s) appended:")
        for part in state["parts"]:
            name = part["uri"].rsplit("/", 1)[-1]
            print(f"      {part['seq']}. {name}  job {part['job_id']}  {part.get('state', '')}")
        if ledger:
            print(
                f"    sandbox ledger: {' '.join(e['method'] for e in appends)} (no duplicates: "
                f"{len({e['sha256'] for e in appends}) == len(appends)})"
            )
        print(f"    {len(messages)} messages:")
        for m in messages:
            print("      " + textwrap.shorten(f"[{m['from'].get('name', '?')}] {m['text']}", 94))
        print(f"    top topics: {', '.join(t['text'] for t in topics[:5]) or '-'}")
        print(f"    questions: {'; '.join(q['text'] for q in questions) or '-'}")
        print(f"    action items: {'; '.join(a['text'] for a in actions) or '-'}")
        print(
            f"    insights: s3://{BUCKET}/{OUTPUT_PREFIX}{key}/ ({len(index.get('insights', {}))} files"
            f"{', missing: ' + ', '.join(index['missing']) if index.get('missing') else ''})"
        )


def _tables(s3_client, workdir: Path) -> None:
    """The README's DuckDB query on the pipeline's tables (copied from the local S3: no DuckDB extension)."""
    from scripts.tables_query import ACTION_ITEMS_THIS_WEEK, action_items_this_week, mirror

    copied = mirror(s3_client, BUCKET, "tables/", workdir / "tables-copy")
    print(f"    {copied} table objects under s3://{BUCKET}/tables/ (one per conversation and table)")
    print(textwrap.indent(ACTION_ITEMS_THIS_WEEK, "    "))
    names, rows = action_items_this_week(workdir / "tables-copy")
    widths = [12, 20, 56, 13, 19]
    print("    " + " | ".join(n[:w].ljust(w) for n, w in zip(names, widths, strict=True)))
    for row in rows:
        cells = ["" if v is None else str(v) for v in row]
        print(
            "    "
            + " | ".join(textwrap.shorten(c, w, placeholder="…").ljust(w) for c, w in zip(cells, widths, strict=True))
        )
    print(f"    ({len(rows)} action item(s) of this week's meetings)")


def main() -> int:
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    from scripts.local_stack import start_s3, start_sandbox
    from symbl_sandbox.samples import make_mp4

    workdir = Path(tempfile.mkdtemp(prefix="symbl-demo-"))
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow"))
    airflow_home.mkdir(parents=True, exist_ok=True)
    log_path = airflow_home / "demo.log"
    log_path.write_text("")
    sandbox = s3 = None
    try:
        real_symbl = bool(os.environ.get("AIRFLOW_CONN_SYMBL_DEFAULT"))
        _say("Starting local servers")
        s3 = start_s3(workdir / "s3")
        print(f"    local S3 (moto server): {s3.endpoint_url}  pid {s3.proc.pid}")
        if real_symbl:
            print("    AIRFLOW_CONN_SYMBL_DEFAULT is set: using that Symbl endpoint, not the sandbox")
        else:
            sandbox = start_sandbox(workdir / "sandbox", speed=0.1, min_job_seconds=1.0)
            print(f"    Symbl sandbox: {sandbox.url}  pid {sandbox.proc.pid}")
            os.environ["AIRFLOW_CONN_SYMBL_DEFAULT"] = sandbox.conn_json()
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = s3.conn_json()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "SYMBL_PIPELINE_POLL_INTERVAL": "1",
            "SYMBL_PIPELINE_POOL": "symbl",  # created below
        }

        _say("Preparing Airflow (SQLite metadata DB, pool 'symbl')")
        _airflow(["db", "migrate"], env, log_path)
        _airflow(["pools", "set", "symbl", "5", "Symbl concurrent jobs", "--include-deferred"], env, log_path)

        _say("Uploading sample videos")
        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        for key, parts in CONVERSATIONS.items():
            keys = _upload_parts(client, make_mp4, workdir, key, parts, 1)
            print(f"    {key}: {len(keys)} parts")

        _say("Run 1: symbl_video_pipeline (all parts are new)")
        conf = json.dumps({"bucket": BUCKET, "input_prefix": INPUT_PREFIX, "output_prefix": OUTPUT_PREFIX})
        _airflow(["dags", "test", "symbl_video_pipeline", "--conf", conf], env, log_path)
        before = len(sandbox.ledger()) if sandbox else None

        key, cues = EXTRA_PART
        _say(f"Run 2: one more part for {key}; only it is appended")
        _upload_parts(client, make_mp4, workdir, key, [cues], len(CONVERSATIONS[key]) + 1)
        _airflow(["dags", "test", "symbl_video_pipeline", "--conf", conf], env, log_path)
        if sandbox:
            added = sandbox.ledger()[before:]
            print(f"    submissions in run 2: {[(e['method'], e['conversationId']) for e in added]}")
            if len(added) != 1 or added[0]["method"] != "PUT":
                raise SystemExit("run 2 should have appended exactly one part")

        CONVERSATIONS[key] = [*CONVERSATIONS[key], cues]

        _say("Event-driven: drop a part in S3; symbl_video_events appends it, no run started by hand")
        events_key, events_cues = EVENT_PART
        queue_url = s3.notify_queue(BUCKET, "symbl-demo-uploads")
        print(f"    {BUCKET} notifies SQS queue {queue_url} (moto) of every new object")
        from scripts.local_airflow import LocalAirflow

        airflow = LocalAirflow(
            {
                **env,
                "SYMBL_EVENTS_QUEUE_URL": queue_url,
                "SYMBL_EVENTS_POLL_SECONDS": "1",
                "SYMBL_PIPELINE_BUCKET": BUCKET,
            },
            airflow_home / "demo-airflow-logs",
        )
        try:
            started = time.monotonic()
            airflow.start()
            airflow.wait_for_dag("symbl_video_events")
            print(f"    api-server, scheduler, dag-processor, triggerer up in {time.monotonic() - started:.0f}s")
            index = len(CONVERSATIONS[events_key]) + 1
            dropped = time.monotonic()
            _upload_parts(client, make_mp4, workdir, events_key, [events_cues], index)
            uri = f"s3://{BUCKET}/{INPUT_PREFIX}{events_key}/part-{index:03d}.mp4"
            print(f"    dropped {uri}")
            accepted = _wait_accepted(client, events_key, uri, airflow, timeout=240)
            print(f"    in Symbl {time.monotonic() - dropped:.1f}s after the drop: job {accepted['job_id']}")
            run = _wait_event_run(airflow, timeout=240)
            print(f"    run {run['run_id']} ({run.get('run_type', 'asset_triggered')}): {run['state']}")
        finally:
            airflow.stop()
        CONVERSATIONS[events_key] = [*CONVERSATIONS[events_key], events_cues]

        _say("Summary")
        _summary(client, sandbox)
        _say("Insights as tables: action items this week (the README's DuckDB query)")
        _tables(client, workdir)
        print("\nDemo finished: every part appended exactly once, in order.")
        return 0
    finally:
        _say("Stopping local servers")
        for server in (sandbox, s3):
            if server is not None:
                server.stop()
        print("    stopped")


if __name__ == "__main__":
    raise SystemExit(main())
