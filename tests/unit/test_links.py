"""store_conversation_url: when the extra link gets a URL, and when the task goes on without one."""

from __future__ import annotations

import logging

import pytest

from symbl_airflow.links import SYMBL_CONVERSATION_URL_XCOM_KEY, SymblConversationLink, store_conversation_url

pytestmark = pytest.mark.unit

log = logging.getLogger("test_links")


class Hook:
    def __init__(self, answer):
        self.answer = answer
        self.calls: list[tuple[str, str]] = []

    def get_experience_url(self, conversation_id, name="verbose-text-summary"):
        self.calls.append((conversation_id, name))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class TI:
    task_id, map_index = "append", 3

    def __init__(self):
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value

    def xcom_pull(self, task_ids, key, map_indexes):
        assert (task_ids, map_indexes) == ("append", 3)
        return self.xcom.get(key)


def test_url_is_pushed_once_per_try():
    ti, hook = TI(), Hook("https://meetinginsights.symbl.ai/meeting/#/eyJ")
    assert store_conversation_url({"ti": ti}, hook, "42", log) == "https://meetinginsights.symbl.ai/meeting/#/eyJ"
    assert ti.xcom == {SYMBL_CONVERSATION_URL_XCOM_KEY: "https://meetinginsights.symbl.ai/meeting/#/eyJ"}
    # Resumed after a deferral: the stored URL is reused, no second experience is created.
    assert store_conversation_url({"ti": ti}, hook, "42", log) == "https://meetinginsights.symbl.ai/meeting/#/eyJ"
    assert hook.calls == [("42", "verbose-text-summary")]


@pytest.mark.parametrize("answer", [None, RuntimeError("HTTP 500 from Symbl")], ids=["no_experience_api", "error"])
def test_no_link_never_fails_the_task(answer, caplog):
    ti = TI()
    with caplog.at_level(logging.WARNING, logger="test_links"):
        assert store_conversation_url({"ti": ti}, Hook(answer), "42", log) is None
    assert ti.xcom == {}
    if isinstance(answer, Exception):
        assert "Experience API call failed" in caplog.text and "42" in caplog.text


def test_no_conversation_yet_asks_nothing():
    hook = Hook("https://x")
    assert store_conversation_url({"ti": TI()}, hook, None, log) is None
    assert hook.calls == []


def test_link_name_and_xcom_key():
    link = SymblConversationLink()
    assert link.name == "Symbl conversation"
    assert link.xcom_key == "_link_SymblConversationLink"  # what the api-server reads


def test_the_url_is_not_logged(caplog):
    url = "https://meetinginsights.symbl.ai/meeting/#/eyJzZWNyZXQiOiJ0b2tlbiJ9"
    with caplog.at_level(logging.DEBUG, logger="test_links"):
        store_conversation_url({"ti": TI()}, Hook(url), "42", log)
    assert "Symbl conversation 42" in caplog.text and url not in caplog.text and "eyJ" not in caplog.text
