"""The "Symbl conversation" extra link and OpenLineage of SymblInsightsOperator, on the real sandbox and S3."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
import requests

from symbl_airflow.links import SYMBL_CONVERSATION_LINK_NAME, SYMBL_CONVERSATION_URL_XCOM_KEY, SymblConversationLink
from tests.airflow_helpers import make_dag, task_xcoms, ti_states

pytestmark = pytest.mark.integration

LINK_XCOM_KEY = SymblConversationLink().xcom_key


def test_link_stored_in_xcom_and_opens_the_summary_page(run_dag, clean_sandbox, conversation, s3, bucket):
    from symbl_airflow import SymblInsightsOperator

    with make_dag("test_insights_link") as dag:
        SymblInsightsOperator(
            task_id="insights",
            conversation_id=conversation,
            output_uri=f"s3://{bucket}/out/",
            insights=["messages"],
        )
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)

    xcoms = task_xcoms(dag.dag_id, "insights")
    url = xcoms[SYMBL_CONVERSATION_URL_XCOM_KEY]
    # What the api-server reads for the button: the worker copies the URL under the link's own key.
    assert xcoms[LINK_XCOM_KEY] == url
    assert url.startswith(clean_sandbox.url + "/")
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Bob" in page.text  # the summary page shows the conversation's speakers
    # The serialized task tells the api-server which XCom holds the link.
    from airflow.serialization.serialized_objects import DagSerialization

    (task,) = DagSerialization.to_dict(dag)["dag"]["tasks"]
    assert task["__var"]["_operator_extra_links"] == {SYMBL_CONVERSATION_LINK_NAME: LINK_XCOM_KEY}


def test_no_link_when_symbl_offers_no_experience_api(run_dag, clean_sandbox, conversation, s3, bucket):
    from symbl_airflow import SymblInsightsOperator

    clean_sandbox.fault(
        match={"method": "POST", "path": "/v1/conversations/*/experiences"}, action="status", status=404, times=None
    )
    with make_dag("test_insights_link") as dag:
        SymblInsightsOperator(
            task_id="insights", conversation_id=conversation, output_uri=f"s3://{bucket}/out/", insights=["messages"]
        )
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)
    xcoms = task_xcoms(dag.dag_id, "insights")
    assert SYMBL_CONVERSATION_URL_XCOM_KEY not in xcoms
    assert not xcoms.get(LINK_XCOM_KEY)  # the button stays disabled, the task is not failed by a link


class _TI:
    """The task instance execute() and the OpenLineage listener see: only XCom is used."""

    task_id = "insights"
    map_index = -1

    def __init__(self):
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value

    def xcom_pull(self, task_ids, key, map_indexes):
        return self.pushed.get(key)


def test_openlineage_via_the_providers_extractor(clean_sandbox, conversation, s3, bucket):
    from airflow.providers.common.compat.openlineage.facet import Dataset, ExternalQueryRunFacet
    from airflow.providers.openlineage.extractors.base import DefaultExtractor

    from symbl_airflow import SymblInsightsOperator

    op = SymblInsightsOperator(
        task_id="insights",
        # The append operator's XCom: the videos it sent are inputs of the insights too.
        conversation_id=repr(
            {"conversation_id": conversation, "job_ids": ["j1"], "sources": [f"s3://{bucket}/v/p1.mp4"]}
        ),
        output_uri=f"s3://{bucket}/out/",
        insights=["messages", "summary"],
    )
    ti = _TI()
    op.execute({"ti": ti})
    lineage = DefaultExtractor(op).extract_on_complete(ti)

    assert lineage is not None
    assert all(type(d) is Dataset for d in [*lineage.inputs, *lineage.outputs])
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (clean_sandbox.url, f"conversations/{conversation}"),
        (f"s3://{bucket}", "v/p1.mp4"),
    ]
    # The video is not in S3 and the conversation itself was not fetched: the tables' date is today's.
    day = datetime.now(UTC).date().isoformat()
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        (f"s3://{bucket}", "out/messages.json"),
        (f"s3://{bucket}", "out/summary.json"),
        (f"s3://{bucket}", "out/index.json"),
        (f"s3://{bucket}", f"tables/messages/meeting_date={day}/{conversation}.jsonl.gz"),
        (f"s3://{bucket}", f"tables/summary/meeting_date={day}/{conversation}.jsonl.gz"),
    ]
    facet = lineage.run_facets["externalQuery"]
    assert isinstance(facet, ExternalQueryRunFacet) and facet.externalQueryId == conversation
    assert ti.pushed[SYMBL_CONVERSATION_URL_XCOM_KEY].startswith(clean_sandbox.url)


def test_append_lineage_helper_reads_the_tasks_own_result():
    from airflow.providers.common.compat.openlineage.facet import Dataset

    from symbl_airflow.lineage import append_lineage

    class Hook:
        class config:  # mimics SymblHook.config
            base_url = "https://api.symbl.ai"

    class TI:
        task_id, map_index = "append", 2

        def xcom_pull(self, task_ids, map_indexes):
            assert (task_ids, map_indexes) == ("append", 2)
            return {"conversation_id": "42", "job_ids": ["a", "b"], "sources": ["s3://b/v/1.mp4", "s3://b/v/2.mp4"]}

    lineage = append_lineage(Hook(), TI())
    assert lineage.inputs == [Dataset("s3://b", "v/1.mp4"), Dataset("s3://b", "v/2.mp4")]
    assert lineage.outputs == [Dataset("https://api.symbl.ai", "conversations/42")]
    # Nothing sent this run (or no result at all): no datasets, no error.
    assert append_lineage(Hook(), None).inputs == append_lineage(Hook(), None).outputs == []


def test_plugin_works_without_the_openlineage_provider():
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class Hide(importlib.abc.MetaPathFinder):  # the provider's code and the OpenLineage client: gone
            def find_spec(self, name, path=None, target=None):
                hidden = name == "openlineage" or name.startswith("openlineage.")
                hidden |= name.startswith("airflow.providers.openlineage.") and not name.endswith(".get_provider_info")
                if hidden:
                    raise ModuleNotFoundError(name)

        sys.meta_path.insert(0, Hide())
        from airflow.sdk import DAG
        from symbl_airflow import SymblInsightsOperator, SymblJobSensor
        import symbl_airflow.lineage
        with DAG("d", schedule=None):
            op = SymblInsightsOperator(task_id="i", conversation_id="1", output_uri="s3://b/o/")
            SymblJobSensor(task_id="s", job_ids="j")
        try:
            op.get_openlineage_facets_on_complete(None)
        except ImportError:
            print("OK")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("OK")


_LISTENER_RUN = """
import sys, uuid
from datetime import datetime

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.collection import update_dag_parsing_results_in_db
from airflow.sdk import DAG
from airflow.serialization.serialized_objects import LazyDeserializedDAG
from airflow.utils.session import create_session

from symbl_airflow import SymblInsightsOperator

conversation, bucket = sys.argv[1], sys.argv[2]
with DAG(f"ol_{uuid.uuid4().hex[:8]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    SymblInsightsOperator(
        task_id="insights", conversation_id=conversation, output_uri=f"s3://{bucket}/ol/", insights=["messages"]
    )
with create_session() as session:
    DagBundlesManager().sync_bundles_to_db(session=session)
    session.flush()
    update_dag_parsing_results_in_db(
        "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
    )
print("STATE", dag.test().state)
"""


def test_the_openlineage_listener_emits_the_datasets(clean_sandbox, conversation, s3, bucket, tmp_path):
    """The provider's own listener, with a file transport, on a real dag.test() run in a fresh process."""
    import json
    import os
    import time

    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "symbl-tests",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _LISTENER_RUN, conversation, bucket],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "STATE success" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    deadline = time.monotonic() + 30
    complete = []
    while not complete and time.monotonic() < deadline:
        lines = events_file.read_text().splitlines() if events_file.exists() else []
        events = [json.loads(line) for line in lines if line.strip()]
        complete = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".insights")]
        time.sleep(0.5)
    assert complete, f"no COMPLETE event for the insights task in {events_file}"
    event = complete[-1]
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
        (clean_sandbox.url, f"conversations/{conversation}")
    ]
    day = datetime.now(UTC).date().isoformat()  # no video known, no conversation fetched: today's date
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
        (f"s3://{bucket}", "ol/messages.json"),
        (f"s3://{bucket}", "ol/index.json"),
        (f"s3://{bucket}", f"tables/messages/meeting_date={day}/{conversation}.jsonl.gz"),
    ]
    assert event["run"]["facets"]["externalQuery"]["externalQueryId"] == conversation
