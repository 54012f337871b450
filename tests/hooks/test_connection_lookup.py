"""The async hook's connection lookup under a supervisor whose comms only talk synchronously (dag.test)."""

from __future__ import annotations

import asyncio
import json

import pytest

from symbl_airflow.hooks import SymblAsyncHook, aget_connection

pytestmark = pytest.mark.unit


class SyncOnlyComms:
    """Like Airflow 3.3's ``InProcessSupervisorComms``: ``send`` only."""

    def __init__(self):
        self.sent = []

    def send(self, msg):
        self.sent.append(msg)
        from airflow.sdk.execution_time.comms import ConnectionResult

        return ConnectionResult(
            conn_id=msg.conn_id,
            conn_type="symbl",
            host="http://db.example:1",
            schema=None,
            login="db-app",
            password="db-secret-77",
            port=None,
            extra=None,
        )


def test_sync_only_comms_use_the_sync_lookup(monkeypatch):
    from airflow.sdk.execution_time import task_runner

    comms = SyncOnlyComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    conn = asyncio.run(aget_connection("symbl_in_db"))
    assert (conn.conn_id, conn.login, conn.host) == ("symbl_in_db", "db-app", "http://db.example:1")
    assert type(comms.sent[0]).__name__ == "GetConnection"
    config = asyncio.run(SymblAsyncHook("symbl_in_db").aget_config())
    assert (config.base_url, config.app_id) == ("http://db.example:1", "db-app")


def test_without_a_supervisor_the_async_lookup_is_used(monkeypatch):
    from airflow.sdk.execution_time import task_runner

    monkeypatch.delattr(task_runner, "SUPERVISOR_COMMS", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_ENVONLY", json.dumps({"conn_type": "symbl", "login": "env-app", "password": "env-secret"})
    )
    conn = asyncio.run(aget_connection("symbl_envonly"))
    assert conn.login == "env-app"
