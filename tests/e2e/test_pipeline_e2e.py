"""The example DAG on a real multi-process Airflow (CeleryExecutor, two workers, triggerer) under faults.

The figures that matter per conversation: duplicates (a part accepted twice), order violations (ledger
or transcript out of part order) and lost parts; all must be 0 when a test ends. Tests run in file order;
the secrets scan is last because it inspects what all earlier runs left behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.cluster import APP_ID, FERNET_RE, sandbox_token_claims

pytestmark = pytest.mark.e2e

APPEND, WAIT, INSIGHTS = "conversation.append", "conversation.wait", "conversation.insights"
STATE_KEY = "symbl_append"
UNCONFIRMED = "answer never arrived"
FIGURES: dict[str, dict] = {}


def _zero(scenario, test: str) -> None:
    for key in scenario.parts:
        figures = scenario.figures(key)
        FIGURES[f"{test}/{key}"] = {k: figures[k] for k in ("duplicates", "order_violations", "lost")}
        print(f"\n{test}/{key}: {FIGURES[f'{test}/{key}']}")
        assert (figures["duplicates"], figures["order_violations"], figures["lost"]) == (0, 0, 0), figures
        assert figures["conversations"] == 1, figures


def _assert_success(cluster, scenario, run_id: str, test: str) -> None:
    assert cluster.run_state(run_id) == "success", cluster.describe(run_id)
    _zero(scenario, test)
    for key in scenario.parts:
        index = scenario.insights_index(key)
        assert index and index.get("conversation_id"), f"no insights index for {key}: {index}"


def _recover_unconfirmed(cluster, scenario, run_id: str, key: str) -> tuple[str, str]:
    """What an operator does after an 'unconfirmed' failure, following the message: a NEW run.

    Look the unconfirmed part (``sending`` in the conversation ledger) up in Symbl (here the sandbox's
    ledger of accepted submissions), then trigger a new run with ``on_unconfirmed="mark_sent"`` if Symbl has
    it, ``"resend"`` if not. Returns (what was found, the new run id) once that run ended.
    """
    ledger = scenario.state_file(key)
    sending = [p for p in ledger["parts"] if p["state"] == "sending"]
    assert len(sending) == 1, f"expected exactly one unconfirmed part, got {ledger['parts']}"
    uri = sending[0]["uri"]
    sha = next(p["sha256"] for p in scenario.parts[key] if uri.endswith(p["key"]))
    present = any(e["sha256"] == sha for e in cluster.sandbox.ledger())
    name = uri.rsplit("/", 1)[-1]
    new_run = cluster.trigger({**scenario.conf, "on_unconfirmed": "mark_sent" if present else "resend"})
    cluster.wait_run(new_run, timeout=300)
    return f"{name} {'accepted' if present else 'absent'}", new_run


def _faults(sandbox) -> list[dict]:
    data = sandbox.request("GET", "/sandbox/faults").json()
    return data["faults"] if isinstance(data, dict) else data


def _last_log(cluster, run_id: str, task_id: str, map_index: int) -> str:
    return cluster.task_log(run_id, task_id, map_index)


@pytest.mark.timeout(900)
def test_pipeline_success(airflow_cluster, scenario):
    """Three conversations through both workers and the triggerer: success, order, no duplicates, insights."""
    cluster = airflow_cluster
    assert cluster.warmup_state == "success"
    cluster.restart_sandbox()
    scenario.add("standup", 3)
    scenario.add("customer-call", 2)
    scenario.add("design-review", 1)
    started = time.monotonic()
    run_id = cluster.trigger(scenario.conf)
    cluster.wait_run(run_id, timeout=300)
    print(
        f"\nstartup {cluster.startup_seconds:.0f}s, warm-up {cluster.warmup_seconds:.0f}s, "
        f"run {time.monotonic() - started:.0f}s"
    )
    _assert_success(cluster, scenario, run_id, "success")

    # Run 2: one new part for one conversation -> exactly one more PUT, to the same conversation.
    before = len(cluster.sandbox.ledger())
    scenario.add("standup", 1)
    run_2 = cluster.trigger(scenario.conf)
    cluster.wait_run(run_2, timeout=300)
    _assert_success(cluster, scenario, run_2, "success-incremental")
    added = cluster.sandbox.ledger()[before:]
    assert [e["method"] for e in added] == ["PUT"], added


@pytest.mark.timeout(900)
def test_sigkill_worker_mid_body(airflow_cluster, scenario):
    """SIGKILL the worker while part 2's body is in flight (the sandbox stalls before reading it).

    The retry must refuse to resend the unconfirmed part (the default policy), send nothing, and fail
    with the 'unconfirmed' message; after the operator's check (absent in Symbl) and a clear, the run
    completes with every part exactly once, in order.
    """
    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox()
    scenario.add("kill-mid", 3, pad_mib=20)  # far more than the socket buffers hold
    sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="latency", delay=15, times=1)
    run_id = cluster.trigger(scenario.conf)

    def stalled() -> bool:
        return _faults(cluster.sandbox)[0]["applied"] == 1

    cluster.wait_until(stalled, 180, "part 2 upload in flight")
    time.sleep(1)  # the client is now blocked writing the body: mid-body
    victim = cluster.worker_uploading()
    assert victim, "no worker holds a connection to the sandbox"
    assert len(cluster.sandbox.ledger()) == 1  # part 1 only
    cluster.kill_component(victim)
    cluster.restart_component(victim)

    assert cluster.wait_run(run_id, timeout=300) == "failed", cluster.describe(run_id)
    ti = cluster.ti(run_id, APPEND, 0)
    assert ti["state"] == "failed" and ti["try_number"] >= 2, ti
    assert UNCONFIRMED in _last_log(cluster, run_id, APPEND, 0)
    figures = scenario.figures("kill-mid")
    assert (figures["duplicates"], figures["order_violations"], figures["lost"]) == (0, 0, 2), figures

    found, run_2 = _recover_unconfirmed(cluster, scenario, run_id, "kill-mid")
    FIGURES["sigkill-mid-body: killed part in Symbl"] = found
    assert found == "part-002.mp4 absent"
    _assert_success(cluster, scenario, run_2, "sigkill-mid-body")


@pytest.mark.timeout(900)
def test_sigkill_worker_after_accept(airflow_cluster, scenario):
    """SIGKILL the worker the moment Symbl accepted part 2 (seen in the ledger).

    Either the job id reached the task state first (the retry skips part 2 and finishes by itself) or
    it did not (the retry stops as 'unconfirmed'; Symbl has the part, so the operator records its job
    id and clears). Both must end with every part exactly once, in order.
    """
    cluster = airflow_cluster
    cluster.restart_sandbox()
    # 20 MiB: the upload lasts long enough to see which worker sends it (with strict order a part goes
    # out right after a deferral, on a fresh connection, and a 4 MiB body can be gone between two looks)
    scenario.add("kill-accept", 3, pad_mib=20)
    part2 = scenario.parts["kill-accept"][1]["sha256"]
    run_id = cluster.trigger(scenario.conf)
    victim = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        victim = cluster.worker_uploading() or victim
        if any(e["sha256"] == part2 for e in cluster.sandbox.ledger()):
            break
        time.sleep(0.01)
    else:
        pytest.fail("part 2 was never accepted")
    assert victim
    cluster.kill_component(victim)
    cluster.restart_component(victim)

    state = cluster.wait_run(run_id, timeout=300)
    branch = "completed by retry"
    if state == "failed":
        assert UNCONFIRMED in _last_log(cluster, run_id, APPEND, 0), cluster.describe(run_id)
        # The kill lands a few ms after the ledger shows part 2: e.g. before part 2's job id was stored
        # (part-002 accepted), during part 3's body (part-003 absent) or right after Symbl accepted part 3
        # (part-003 accepted). Each is one unconfirmed part, resolved from what Symbl really holds.
        found, run_id = _recover_unconfirmed(cluster, scenario, run_id, "kill-accept")
        assert found.split()[0] in ("part-002.mp4", "part-003.mp4"), found
        branch = f"unconfirmed ({found}) -> new run with on_unconfirmed from that finding"
    print(f"\nsigkill-after-accept: {branch}")
    FIGURES["sigkill-after-accept branch"] = branch
    _assert_success(cluster, scenario, run_id, "sigkill-after-accept")


@pytest.mark.timeout(900)
def test_triggerer_killed_and_restarted_while_jobs_wait(airflow_cluster, scenario):
    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox(speed=1.0, min_job_seconds=25)
    for key in ("t-one", "t-two", "t-three"):
        scenario.add(key, 2)
    run_id = cluster.trigger(scenario.conf)

    def all_deferred() -> bool:
        tis = [t for t in cluster.task_instances(run_id) if t["task_id"] == WAIT]
        return len(tis) == 3 and all(t["state"] == "deferred" for t in tis)

    cluster.wait_until(all_deferred, 180, "three deferred sensors")
    assert cluster.snapshot_triggers() >= 3
    assert sandbox.stats()["active_jobs"] > 0, "jobs finished before the triggerer was killed"
    cluster.kill_component("triggerer")
    time.sleep(3)
    assert sandbox.stats()["active_jobs"] > 0
    cluster.restart_component("triggerer")
    cluster.wait_run(run_id, timeout=300)
    _assert_success(cluster, scenario, run_id, "triggerer-restart")
    waits = [t for t in cluster.task_instances(run_id) if t["task_id"] == WAIT]
    FIGURES["triggerer-restart wait tries"] = [t["try_number"] for t in waits]


@pytest.mark.timeout(900)
def test_sandbox_storm_429_5xx_token_expiry(airflow_cluster, scenario):
    """429 storm, 30% 503 on every job and conversation call, tokens living 30 s (and revoked mid-run): exact
    appends. (A 503 to an upload whose whole body was sent is ambiguous since issue 22, not a refusal: that case
    is test_accepted_then_504_blocks_until_a_new_run_settles_it.)"""
    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox("--token-ttl", "30", speed=0.3, min_job_seconds=3)
    for key in ("s-one", "s-two", "s-three"):
        scenario.add(key, 2)
    sandbox.fault(match={"path": "/v1/*"}, action="status", status=429, headers={"Retry-After": "1"}, times=12)
    sandbox.fault(match={"method": "GET", "path": "/v1/*"}, action="status", status=503, rate=0.3, seed=11, times=None)
    run_id = cluster.trigger(scenario.conf)
    expired = []

    def expire_once() -> None:
        if not expired and sandbox.ledger():
            sandbox.expire_tokens()
            expired.append(time.monotonic())

    started = time.monotonic()
    cluster.wait_run(run_id, timeout=400, on_poll=expire_once)
    stats = sandbox.stats()
    FIGURES["storm stats"] = {
        "seconds": round(time.monotonic() - started),
        "tokens_issued": stats["tokens_issued"],
        "faults_applied": [f["applied"] for f in _faults(sandbox)],
    }
    print(f"\nstorm: {FIGURES['storm stats']}")
    sandbox.request("DELETE", "/sandbox/faults").raise_for_status()  # our own checks must not hit them
    _assert_success(cluster, scenario, run_id, "storm")
    assert expired and stats["tokens_issued"] >= 2, stats


@pytest.mark.timeout(900)
def test_connection_dropped_mid_body(airflow_cluster, scenario):
    """The sandbox closes the socket after 64 KiB of a 20 MiB PUT body, then of a 1 MiB one.

    20 MiB cannot sit in the socket buffers, so the client sees the body cut short: provably not
    accepted, resent by the hook, the run completes by itself. 1 MiB fits in the buffers: the client
    handed out every byte and got no answer, which is ambiguous, so the retry stops as 'unconfirmed';
    the operator finds the part absent in Symbl and clears. Both end exact.
    """
    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox()
    scenario.add("drop-big", 3, pad_mib=20)
    spec = {
        "match": {"method": "PUT", "path": "/v1/process/video/*"},
        "action": "drop",
        "phase": "mid_body",
        "after_bytes": 65536,
        "times": 1,
    }
    sandbox.fault(**spec)
    run_id = cluster.trigger(scenario.conf)
    assert cluster.wait_run(run_id, timeout=300) == "success", cluster.describe(run_id)
    assert _faults(sandbox)[0]["applied"] == 1
    assert cluster.ti(run_id, APPEND, 0)["try_number"] == 1  # resent inside the hook, no task retry
    _assert_success(cluster, scenario, run_id, "drop-mid-body-20MiB")

    small = type(scenario)(cluster, scenario.mp4_dir)
    small.add("drop-small", 3, pad_mib=1)
    sandbox.request("DELETE", "/sandbox/faults").raise_for_status()
    sandbox.fault(**spec)
    run_id = cluster.trigger(small.conf)
    state = cluster.wait_run(run_id, timeout=300)
    branch = "completed by itself"
    if state == "failed":
        assert UNCONFIRMED in _last_log(cluster, run_id, APPEND, 0), cluster.describe(run_id)
        figures = small.figures("drop-small")
        assert (figures["duplicates"], figures["lost"]) == (0, 2), figures
        found, run_id = _recover_unconfirmed(cluster, small, run_id, "drop-small")
        assert found == "part-002.mp4 absent"
        branch = "failed as unconfirmed -> new run with on_unconfirmed='resend'"
    FIGURES["drop-mid-body 1MiB branch"] = branch
    print(f"\ndrop-mid-body 1 MiB: {branch}")
    _assert_success(cluster, small, run_id, "drop-mid-body-1MiB")


@pytest.mark.timeout(900)
def test_failed_job_fails_only_its_conversation(airflow_cluster, scenario):
    """Part 2's job fails: part 3 is never sent (no hole), the next run refuses too, the other conversation is fine."""
    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox()
    scenario.add("f-bad", 3)
    scenario.add("f-good", 1)  # one part: a POST only, so the PUT fault can only hit f-bad
    sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="fail_job", times=1)
    run_id = cluster.trigger(scenario.conf)
    assert cluster.wait_run(run_id, timeout=300) == "failed"
    bad, good = scenario.map_index("f-bad"), scenario.map_index("f-good")
    states = {(t["task_id"], t["map_index"]): t["state"] for t in cluster.task_instances(run_id)}
    assert states[(APPEND, bad)] == "failed", states
    assert states[(INSIGHTS, bad)] == "upstream_failed", states
    assert states[(INSIGHTS, good)] == "success", states
    failed_job = next(e for e in sandbox.ledger() if e["method"] == "PUT")["jobId"]
    log = _last_log(cluster, run_id, APPEND, bad)
    assert f"Symbl job {failed_job}" in log and "part-002.mp4" in log and "is stopped" in log, log[-3000:]
    assert scenario.insights_index("f-good") and not scenario.insights_index("f-bad")
    figures = scenario.figures("f-bad")
    FIGURES["failed-job f-bad"] = {k: figures[k] for k in ("duplicates", "lost")}
    assert figures["duplicates"] == 0 and figures["lost"] == 1, figures  # part 3 held back: no hole
    # A later run with a new part refuses too, naming the failed part and job, and sends nothing.
    before = len(sandbox.ledger())
    scenario.add("f-bad", 1)
    run_2 = cluster.trigger(scenario.conf)
    assert cluster.wait_run(run_2, timeout=300) == "failed"
    assert failed_job in _last_log(cluster, run_2, APPEND, 0)
    assert len(sandbox.ledger()) == before
    _zero_good = scenario.figures("f-good")
    assert (_zero_good["duplicates"], _zero_good["order_violations"], _zero_good["lost"]) == (0, 0, 0)


@pytest.mark.timeout(900)
def test_lost_answer_blocks_the_next_run_until_a_run_settles_it(airflow_cluster, scenario):
    """Case 1 on Celery: part 2 accepted, answer lost. The next run (default conf) sends nothing; a run
    with on_unconfirmed='skip' (Symbl has it) completes with every part once, in order."""
    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox()
    scenario.add("lost", 3)
    sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="drop", phase="after_accept", times=1)
    run_1 = cluster.trigger(scenario.conf)
    assert cluster.wait_run(run_1, timeout=300) == "failed"
    assert cluster.ti(run_1, APPEND, 0)["try_number"] == 1  # not retried: a retry could only stop the same way
    assert UNCONFIRMED in _last_log(cluster, run_1, APPEND, 0)
    run_2 = cluster.trigger(scenario.conf)
    assert cluster.wait_run(run_2, timeout=300) == "failed"
    log = _last_log(cluster, run_2, APPEND, 0)
    assert UNCONFIRMED in log and run_1 in log  # names the run that sent it
    figures = scenario.figures("lost")
    assert (figures["duplicates"], figures["lost"]) == (0, 1), figures  # parts 1, 2 in Symbl; 3 held back
    found, run_3 = _recover_unconfirmed(cluster, scenario, run_2, "lost")
    assert found == "part-002.mp4 accepted"
    _assert_success(cluster, scenario, run_3, "lost-answer-next-run")


@pytest.mark.timeout(900)
def test_accepted_then_504_blocks_until_a_new_run_settles_it(airflow_cluster, scenario):
    """Issue 22 on Celery: Symbl accepts part 2, then a gateway answers 504. The part stays unconfirmed (no
    retry, no resend); a new run with on_unconfirmed='mark_sent' (Symbl has it) completes, every part once."""
    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox()
    scenario.add("gw504", 3)
    sandbox.fault(
        match={"method": "PUT", "path": "/v1/process/video/*"}, action="status", status=504, phase="after_accept"
    )
    run_1 = cluster.trigger(scenario.conf)
    assert cluster.wait_run(run_1, timeout=300) == "failed"
    assert cluster.ti(run_1, APPEND, 0)["try_number"] == 1  # not retried: a retry could only resend blindly
    log = _last_log(cluster, run_1, APPEND, 0)
    assert UNCONFIRMED in log and "HTTP 504" in log and "Check after" in log
    figures = scenario.figures("gw504")
    assert (figures["duplicates"], figures["lost"]) == (0, 1), figures  # parts 1, 2 in Symbl; 3 held back
    found, run_2 = _recover_unconfirmed(cluster, scenario, run_1, "gw504")
    assert found == "part-002.mp4 accepted"
    _assert_success(cluster, scenario, run_2, "accepted-then-504")


@pytest.mark.timeout(900)
def test_two_writers_dags_test_beside_a_scheduled_run(airflow_cluster, scenario):
    """Case 5 on Celery: `airflow dags test` (its own process, same S3 and Symbl) starts beside a
    scheduled run on the same new conversation folders: one conversation each, every part once, in order."""
    import threading

    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox()
    scenario.add("two-a", 3)
    scenario.add("two-b", 2)
    # Slow Symbl's answers so both writers are alive at the same time.
    sandbox.fault(match={"path": "/v1/process/video*"}, action="latency", delay=1.5, times=4)
    outcome: dict[str, object] = {}

    def dags_test() -> None:
        try:
            outcome["dags_test"] = cluster.airflow(
                "dags", "test", "symbl_video_pipeline", "-c", json.dumps(scenario.conf)
            )
        except Exception as exc:  # the figures below decide; keep its output for the report
            outcome["dags_test_error"] = str(exc)[-2000:]

    run_id = cluster.trigger(scenario.conf)
    other = threading.Thread(target=dags_test)
    other.start()
    cluster.wait_run(run_id, timeout=400)
    other.join(400)
    for key in scenario.parts:
        figures = scenario.figures(key)
        FIGURES[f"two-writers/{key}"] = {
            k: figures[k] for k in ("duplicates", "order_violations", "lost", "conversations")
        }
        assert (figures["duplicates"], figures["order_violations"], figures["lost"]) == (0, 0, 0), (figures, outcome)
        assert figures["conversations"] == 1, figures
        history = [h["event"] for h in scenario.state_file(key).get("history", [])]
        FIGURES[f"two-writers/{key} ledger events"] = history
    posts = [e for e in sandbox.ledger() if e["method"] == "POST"]
    assert len(posts) == 2, posts  # one conversation per folder, never two


@pytest.mark.timeout(900)
def test_event_path_a_dropped_part_reaches_symbl_with_no_run_started_by_hand(airflow_cluster, tmp_path):
    """S3 notification -> SQS -> AssetWatcher (triggerer) -> symbl_video_events run -> the part in Symbl.

    Batched and duplicate notifications are harmless: the ledger decides what is sent.
    """
    from tests.e2e.cluster import EVENTS_DAG_ID
    from tests.e2e.conftest import Scenario

    cluster = airflow_cluster
    sandbox = cluster.restart_sandbox()
    scenario = Scenario(cluster, tmp_path, bucket=cluster.events_bucket)
    cluster.enable_notifications(scenario.bucket)
    runs_before = {r["dag_run_id"] for r in cluster.dag_runs(EVENTS_DAG_ID)}

    def accepted() -> int:
        shas = {p["sha256"] for parts in scenario.parts.values() for p in parts}
        return sum(1 for e in sandbox.ledger() if e["sha256"] in shas)

    def new_runs() -> list[dict]:
        return [r for r in cluster.dag_runs(EVENTS_DAG_ID) if r["dag_run_id"] not in runs_before]

    def settled() -> bool:
        runs = new_runs()
        return bool(runs) and all(r["state"] in ("success", "failed") for r in runs)

    dropped = time.monotonic()
    scenario.add("ev-one", 2)
    scenario.add("ev-two", 1)
    cluster.wait_until(lambda: accepted() == 3, 300, "3 parts accepted through events")
    first_latency = time.monotonic() - dropped
    cluster.wait_until(settled, 300, "event runs finished")
    runs = new_runs()
    FIGURES["event path"] = {
        "drop-to-3-accepted s": round(first_latency, 1),
        "runs": len(runs),
        "run types": sorted({r["run_type"] for r in runs}),
    }
    print(f"\nevent path: {FIGURES['event path']}")
    assert all(r["run_type"] == "asset_triggered" and r["state"] == "success" for r in runs), runs
    for key in scenario.parts:
        figures = scenario.figures(key)
        assert (figures["duplicates"], figures["order_violations"], figures["lost"]) == (0, 0, 0), figures

    # A duplicate notification (same bytes re-written) starts a run that sends nothing.
    before, runs_before = len(sandbox.ledger()), {r["dag_run_id"] for r in cluster.dag_runs(EVENTS_DAG_ID)}
    key = scenario.parts["ev-two"][0]["key"]
    scenario.s3.copy_object(
        Bucket=scenario.bucket,
        Key=key,
        CopySource={"Bucket": scenario.bucket, "Key": key},
        MetadataDirective="REPLACE",
        Metadata={"touched": "1"},
    )
    cluster.wait_until(settled, 300, "the duplicate's run finished")
    assert len(sandbox.ledger()) == before

    # A new part lands: appended (PUT) to its conversation, in order.
    runs_before = {r["dag_run_id"] for r in cluster.dag_runs(EVENTS_DAG_ID)}
    scenario.add("ev-two", 1)
    cluster.wait_until(lambda: accepted() == 4, 300, "the new part accepted through events")
    cluster.wait_until(settled, 300, "its run finished")
    for key in scenario.parts:
        figures = scenario.figures(key)
        FIGURES[f"event path/{key}"] = {k: figures[k] for k in ("duplicates", "order_violations", "lost")}
        assert (figures["duplicates"], figures["order_violations"], figures["lost"]) == (0, 0, 0), figures
        assert figures["conversations"] == 1


@pytest.mark.timeout(600)
def test_no_secret_in_logs_xcom_rendered_fields_or_triggers(airflow_cluster):
    """Runs last: the App Secret and every sandbox-issued token appear nowhere Airflow stored things."""
    cluster = airflow_cluster
    secret = cluster.app_secret.encode()
    # The token detector must work, or the scan proves nothing.
    assert sandbox_token_claims(cluster.sandbox.token().encode()), "token detector found no token"

    blobs: list[tuple[str, bytes]] = []
    for root in (cluster.home / "logs", cluster.workdir / "logs"):
        for path in Path(root).rglob("*"):
            if path.is_file():
                blobs.append((str(path), path.read_bytes()))
    queries = {
        "xcom": "SELECT dag_id, run_id, task_id, map_index, value::text FROM xcom",
        "rendered_task_instance_fields": "SELECT dag_id, run_id, task_id, map_index, rendered_fields::text "
        "FROM rendered_task_instance_fields",
        "trigger": "SELECT id, classpath, kwargs FROM trigger",
        "task_state_store": "SELECT dag_id, run_id, task_id, map_index, value FROM task_state_store",
        "dag_run.conf": "SELECT dag_id, run_id, conf::text FROM dag_run",
    }
    counts = {}
    for table, query in queries.items():
        rows = cluster.sql(query)
        counts[table] = len(rows)
        for row in rows:
            blobs.append((f"{table}:{row[:4]}", " ".join(map(str, row)).encode()))
    counts["trigger (seen while deferred)"] = len(cluster.trigger_rows)
    for row in cluster.trigger_rows:
        blobs.append((f"trigger snapshot {row[0]}", str(row[2]).encode()))
    # Trigger kwargs (and anything else Fernet-encrypted) are scanned decrypted too.
    for where, blob in list(blobs):
        for token in FERNET_RE.findall(blob):
            plain = cluster.decrypt(token)
            if plain:
                blobs.append((f"{where} (decrypted)", plain))
    readable_triggers = [w for w, b in blobs if w.startswith("trigger") and b'"job_ids"' in b]
    assert counts["xcom"] and counts["rendered_task_instance_fields"] and counts["trigger (seen while deferred)"]
    # Trigger kwargs are stored readable here (or decrypted above): the scan sees their content.
    assert readable_triggers, f"trigger kwargs unreadable, the scan would be blind: {cluster.trigger_rows[:1]}"

    hits = []
    for where, blob in blobs:
        if secret in blob:
            hits.append((where, "app secret"))
        for claims in sandbox_token_claims(blob):
            hits.append((where, f"access token jti={claims.get('jti')}"))
    FIGURES["secrets scan"] = {"sources": len(blobs), "hits": len(hits), **counts}
    print(f"\nsecrets scan: {FIGURES['secrets scan']}")
    print("figures: " + json.dumps(FIGURES, indent=1))
    assert not hits, hits[:20]
    assert APP_ID  # the detector keys on this app id
