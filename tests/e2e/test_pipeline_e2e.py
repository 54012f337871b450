"""The example DAG on a real multi-process Airflow (CeleryExecutor, two workers, triggerer) under faults."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_happy_path(airflow_cluster, scenario):
    cluster = airflow_cluster
    print("startup", cluster.startup_seconds, "warmup", cluster.warmup_state, cluster.warmup_seconds)
    scenario.add("standup", 3)
    scenario.add("customer-call", 2)
    run_id = cluster.trigger(scenario.conf)
    state = cluster.wait_run(run_id, timeout=300)
    assert state == "success", cluster.describe(run_id)
    for key in scenario.parts:
        figures = scenario.figures(key)
        assert (figures["duplicates"], figures["order_violations"], figures["lost"]) == (0, 0, 0), figures
        assert scenario.insights_index(key), key
