"""A green run on real workers and a real triggerer: quiet task logs, and every Symbl task has its link.

The append task defers between parts and the sensor defers until the jobs finish, so each resumes in
another worker process than the one that asked Symbl for the summary page: the link must survive that
without anyone reading XCom back (a miss is an error line in the task log).
"""

from __future__ import annotations

import json

import pytest

from symbl_airflow.links import SYMBL_CONVERSATION_LINK_NAME
from tests.e2e.cluster import DAG_ID

pytestmark = pytest.mark.e2e

TASKS = ("conversation.append", "conversation.wait", "conversation.insights")


def _records(log: str) -> list[dict]:
    records = []
    for line in log.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            records.append(item)
    return records


@pytest.mark.timeout(900)
def test_green_run_task_logs_are_quiet_and_linked(airflow_cluster, scenario):
    cluster = airflow_cluster
    cluster.restart_sandbox()
    scenario.add("quiet", 2)
    run_id = cluster.trigger(scenario.conf)
    assert cluster.wait_run(run_id, timeout=300) == "success", cluster.describe(run_id)
    map_index = scenario.map_index("quiet")
    for task_id in TASKS:
        links = cluster.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/links",
            params={"map_index": map_index},
        )["extra_links"]
        url = links.get(SYMBL_CONVERSATION_LINK_NAME)
        assert url and url.startswith(cluster.sandbox.url), (task_id, links)

        log = cluster.task_log(run_id, task_id, map_index)
        records = _records(log)
        assert records, f"no structured lines in the log of {task_id}: {log[:500]}"
        loud = [
            r
            for r in records
            if str(r.get("level", "")).lower() in ("error", "critical")
            or (str(r.get("level", "")).lower() == "warning" and "symbl_airflow" in str(r.get("logger", "")))
        ]
        assert loud == [], (task_id, loud)
        assert "XCom not found" not in log, task_id
