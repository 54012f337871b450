"""The insights operator stores the entities payload as Symbl sent it and its index names the shape."""

from __future__ import annotations

import json

import pytest
import requests

from symbl_airflow.insights import entity_shape
from tests.airflow_helpers import make_dag, ti_states
from tests.golden.examples import ENTITIES_CURRENT, ENTITIES_LEGACY


@pytest.mark.unit
def test_entity_shape_of_the_reference_examples():
    assert entity_shape(ENTITIES_CURRENT.example) == "current"
    assert entity_shape(ENTITIES_LEGACY.example) == "legacy"
    assert entity_shape({"entities": []}) == "empty"
    mixed = {"entities": [*ENTITIES_CURRENT.example["entities"], *ENTITIES_LEGACY.example["entities"]]}
    assert entity_shape(mixed) == "mixed"
    assert entity_shape({"entities": [{"name": "x"}]}) == "unknown"
    assert entity_shape([]) == "unknown" and entity_shape({"message": "x"}) == "unknown"


@pytest.mark.integration
@pytest.mark.parametrize("shape", ["current", "legacy"])
def test_operator_stores_entities_as_received_and_indexes_the_shape(shape, contexts, run_dag, s3, bucket, monkeypatch):
    from symbl_airflow import SymblInsightsOperator

    ctx = contexts[shape]
    conn_id = f"symbl_golden_{shape}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", ctx.server.conn_json())
    with make_dag("test_entity_shape") as dag:
        SymblInsightsOperator(
            task_id="insights",
            conversation_id=ctx.conversation_id,
            output_uri=f"s3://{bucket}/out/",
            insights=["entities"],
            symbl_conn_id=conn_id,
        )
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)

    client = s3.client()
    index = json.loads(client.get_object(Bucket=bucket, Key="out/index.json")["Body"].read())
    raw = client.get_object(Bucket=bucket, Key="out/entities.json")["Body"].read()
    direct = requests.get(
        f"{ctx.server.url}/v1/conversations/{ctx.conversation_id}/entities", headers=ctx.auth, timeout=10
    ).json()
    assert json.loads(raw) == direct  # as received: no reshaping between Symbl and S3
    assert index["insights"]["entities"]["shape"] == shape
    assert index["insights"]["entities"]["count"] == len(direct["entities"]) > 0
