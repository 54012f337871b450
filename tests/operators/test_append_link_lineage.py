"""SymblAppendVideoOperator: the "Symbl conversation" link, OpenLineage, and the request-URL pre-check."""

from __future__ import annotations

import pytest
import requests

from symbl_airflow.links import SYMBL_CONVERSATION_LINK_NAME, SYMBL_CONVERSATION_URL_XCOM_KEY, SymblConversationLink
from tests.airflow_helpers import make_dag, task_xcoms, ti_states

pytestmark = pytest.mark.integration

CUES = [("Alice", "Welcome to the link test."), ("Bob", "Glad to be here.")]


def test_append_task_links_to_the_summary_page(run_dag, clean_sandbox, s3, bucket, mp4):
    from symbl_airflow import SymblAppendVideoOperator

    s3.client().put_object(Bucket=bucket, Key="m/part-1.mp4", Body=mp4.make(CUES))
    with make_dag("test_append_link") as dag:
        SymblAppendVideoOperator(task_id="append", source=f"s3://{bucket}/m/part-1.mp4")
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)
    xcoms = task_xcoms(dag.dag_id, "append")
    url = xcoms[SYMBL_CONVERSATION_URL_XCOM_KEY]
    assert xcoms[SymblConversationLink().xcom_key] == url
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and xcoms["return_value"]["conversation_id"] in page.text
    assert [link.name for link in SymblAppendVideoOperator.operator_extra_links] == [SYMBL_CONVERSATION_LINK_NAME]


def test_append_lineage_through_the_providers_extractor(clean_sandbox, s3, bucket, mp4):
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors.base import DefaultExtractor

    from symbl_airflow import SymblAppendVideoOperator

    s3.client().put_object(Bucket=bucket, Key="m/part-1.mp4", Body=mp4.make(CUES))
    op = SymblAppendVideoOperator(task_id="append", source=f"s3://{bucket}/m/part-1.mp4")
    result = op.execute({"task_state_store": None})

    class TI:  # what the listener passes: the task's own XCom is read back
        task_id, map_index = "append", -1

        def xcom_pull(self, task_ids, map_indexes):
            return result

    lineage = DefaultExtractor(op).extract_on_complete(TI())
    assert lineage.inputs == [Dataset(f"s3://{bucket}", "m/part-1.mp4")]
    assert lineage.outputs == [Dataset(clean_sandbox.url, f"conversations/{result['conversation_id']}")]


def test_too_long_options_fail_before_anything_is_sent(clean_sandbox, s3, bucket, mp4):
    from airflow.sdk.exceptions import AirflowFailException

    from symbl_airflow import SymblAppendVideoOperator

    s3.client().put_object(Bucket=bucket, Key="m/part-1.mp4", Body=mp4.make(CUES))
    op = SymblAppendVideoOperator(
        task_id="append", source=f"s3://{bucket}/m/part-1.mp4", name="Réunion trimestrielle, planification " * 200
    )
    with pytest.raises(AirflowFailException, match=r"'name' is too long.*8,190"):
        op.execute({"task_state_store": None})
    assert clean_sandbox.ledger() == []
    assert not any("/v1/" in route for route in clean_sandbox.stats()["requests"])
