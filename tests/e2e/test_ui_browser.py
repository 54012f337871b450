"""The Airflow UI in a real browser (headless Chromium) against the e2e cluster's api-server.

What a user sees: the connection form offers "Symbl.ai" with App ID / App Secret, and a finished
pipeline's append task shows the "Symbl conversation" link that opens the conversation's summary page.
Screenshots go to ``$SYMBL_E2E_OUTPUT/screenshots`` (default ``.tmp/e2e-output``) for CI to keep.
Chromium is required, not optional: ``scripts/install_chromium.sh`` (run by ``make e2e``) installs it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from scripts.local_stack import ROOT
from symbl_airflow.links import SYMBL_CONVERSATION_LINK_NAME
from tests.e2e.cluster import DAG_ID

pytestmark = pytest.mark.e2e

#: Flags this machine's Chromium needs headless (no sandboxing, no GPU, no network side traffic).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APPEND_TASK = "conversation.append"
INSIGHTS_TASK = "conversation.insights"


def _output_dir() -> Path:
    path = Path(os.environ.get("SYMBL_E2E_OUTPUT") or ROOT / ".tmp" / "e2e-output") / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("SYMBL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is not installed: run scripts/install_chromium.sh (make e2e runs it first)")
    return path


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    # The last state of every test, also when it failed.
    page.screenshot(path=str(_output_dir() / f"{request.node.name}-last.png"), full_page=True)
    context.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(_output_dir() / f"{name}.png"), full_page=True)


def test_connection_form_offers_symbl_ai(airflow_cluster, page):
    page.goto(f"{airflow_cluster.api_url}/connections", wait_until="networkidle")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox", name="Connection Type").fill("Symbl")
    option = page.get_by_role("option", name="Symbl.ai", exact=True)
    option.wait_for()
    _shot(page, "connection-type-options")
    option.click()
    dialog.get_by_label("App ID").wait_for()
    _shot(page, "connection-form-symbl")
    labels = [text.strip() for text in dialog.locator("label").all_inner_texts()]
    assert {"Base URL", "App ID", "App Secret"} <= set(labels), labels
    assert dialog.get_by_label("App Secret").get_attribute("type") == "password"
    assert dialog.get_by_label("App ID").get_attribute("placeholder") == "your Symbl App ID"
    # Hidden fields of the connection type stay hidden.
    assert "Port" not in labels and "Schema" not in labels


def test_append_task_links_to_the_conversation_summary(airflow_cluster, scenario, page):
    scenario.add("browser-link", 2)
    run_id = airflow_cluster.trigger(scenario.conf)
    state = airflow_cluster.wait_run(run_id, timeout=300)
    assert state == "success", airflow_cluster.describe(run_id)
    conversation_id = scenario.insights_index("browser-link")["conversation_id"]
    texts = [text for part in scenario.parts["browser-link"] for text in part["texts"]]

    # The insights task has the link too; the append task is the one the issue names.
    for task_id in (INSIGHTS_TASK, APPEND_TASK):
        (ti,) = [t for t in airflow_cluster.task_instances(run_id) if t["task_id"] == task_id]
        map_index = ti["map_index"]
        links = airflow_cluster.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/links",
            params={"map_index": map_index},
        )["extra_links"]
        url = links.get(SYMBL_CONVERSATION_LINK_NAME)
        # The operator stores the URL in XCom under SYMBL_CONVERSATION_URL_XCOM_KEY as it runs.
        assert url and url.startswith(airflow_cluster.sandbox.url), (task_id, links)

        suffix = f"/mapped/{map_index}" if map_index >= 0 else ""
        details = f"{airflow_cluster.api_url}/dags/{DAG_ID}/runs/{quote(run_id)}/tasks/{task_id}{suffix}/details"
        page.goto(details, wait_until="networkidle")
        button = page.get_by_role("link", name=SYMBL_CONVERSATION_LINK_NAME)
        button.wait_for()
        name = task_id.rsplit(".", 1)[-1]
        _shot(page, f"{name}-task-extra-link")
        assert button.get_attribute("href") == url

        summary = _follow(page, button)
        assert summary.url == url
        summary.get_by_text(f"Conversation {conversation_id}").wait_for()
        _shot(summary, f"{name}-symbl-conversation-summary")
        body = summary.inner_text("body")
        assert [text for text in texts if text not in body] == []
        if summary is not page:
            summary.close()


def _follow(page, link):
    """Click a link as a user does: the UI opens other origins in a new tab, its own in the same one."""
    if link.get_attribute("target") == "_blank":
        with page.context.expect_page() as opened:
            link.click()
        new_page = opened.value
        new_page.wait_for_load_state()
        return new_page
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(href)
    return page
