"""Polling on the expected completion time, against a real sandbox whose jobs work half their length.

The sandbox (speed 0.5: a 10 s video takes 5 s) is five times slower than the trigger assumes before
it learned anything, so the figures below hold only if the rate is learned from completed jobs.
"""

from __future__ import annotations

import asyncio
import io
import time

import pytest

from scripts.local_stack import start_sandbox
from symbl_airflow import polling
from symbl_airflow.triggers import SymblJobTrigger

pytestmark = pytest.mark.integration

JOB_ROUTE = "GET /v1/job/{jobId}"
CONN_ID = "symbl_hints_sandbox"
SPEED = 0.5
LENGTHS = [4.0, 6.0, 8.0, 10.0, 12.0]


@pytest.fixture(scope="module")
def slow_sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("hints-sandbox"), speed=SPEED, min_job_seconds=0.2)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def conn(slow_sandbox, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", slow_sandbox.conn_json())
    polling.reset_rate_estimates()
    yield slow_sandbox
    polling.reset_rate_estimates()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from symbl_sandbox.samples import make_mp4

    folder = tmp_path_factory.mktemp("clips")
    return {s: make_mp4(folder / f"{s:.0f}.mp4", [], seconds_per_cue=s, captions=False).read_bytes() for s in LENGTHS}


async def _wave(sandbox, clips, count: int, *, hints: bool, interval: float = 1.0, spacing: float = 0.05) -> dict:
    """Submit ``count`` jobs (lengths interleaved) and wait for each with its own trigger, all at once."""
    from symbl_airflow.hooks import SymblHook

    hook = SymblHook(CONN_ID)
    before = sandbox.stats()["requests"].get(JOB_ROUTE, 0)

    async def one(i: int) -> dict:
        await asyncio.sleep(spacing * i)  # jobs arrive over time, as sensors defer
        seconds = LENGTHS[i % len(LENGTHS)]
        body = clips[seconds]
        sub = await asyncio.to_thread(hook.submit_video, lambda: io.BytesIO(body), len(body))
        kwargs = {}
        if hints:
            kwargs = {"media_seconds": {sub.job_id: seconds}, "submitted_at": {sub.job_id: time.time()}}
        trigger = SymblJobTrigger(
            job_ids=sub.job_id,
            symbl_conn_id=CONN_ID,
            poll_interval=interval,
            end_time=time.time() + 120,
            spread_first_poll=True,
            **kwargs,
        )
        return [event async for event in trigger.run()][0].payload

    try:
        events = await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        hook.close()
    gets = sandbox.stats()["requests"].get(JOB_ROUTE, 0) - before
    return {"events": events, "gets": gets, "per_job": gets / count}


async def test_with_hints_a_job_of_known_length_costs_at_most_2_5_gets(conn, clips):
    learning = await _wave(conn, clips, 25, hints=True)
    assert all(e["status"] == "success" for e in learning["events"])
    rate = polling.rate_estimator(CONN_ID).rate
    assert 0.3 <= rate <= 0.9, rate  # learned: the sandbox works 0.5 s per media second (+ overhead)

    measured = await _wave(conn, clips, 25, hints=True)
    assert all(e["status"] == "success" for e in measured["events"])
    assert measured["per_job"] <= 2.5, measured["gets"]

    # The same jobs without hints cost more: one GET per interval from the start.
    plain = await _wave(conn, clips, 25, hints=False)
    assert all(e["status"] == "success" for e in plain["events"])
    assert plain["per_job"] > measured["per_job"] + 1, (plain["per_job"], measured["per_job"])
    print(
        f"\n[measure] job GETs per job, 1 s interval, jobs of 2-6 s: learning wave {learning['per_job']:.2f}, "
        f"with hints {measured['per_job']:.2f}, without {plain['per_job']:.2f} (learned rate {rate:.2f})"
    )


async def test_triggers_of_one_process_share_one_pool_of_sockets(conn, clips, monkeypatch):
    """Thirty triggers at once: the hook's sessions are one pooled session, never thirty."""
    import aiohttp

    sessions: list = []
    original = aiohttp.ClientSession.__init__

    def counting(self, *args, **kwargs):
        sessions.append((self, kwargs.get("connector")))
        original(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", counting)
    result = await _wave(conn, clips, 30, hints=True, spacing=0.0)
    assert all(e["status"] == "success" for e in result["events"])
    ((session, connector),) = sessions
    assert connector.limit == polling.MAX_SOCKETS
    assert session.closed  # closed with the last trigger
