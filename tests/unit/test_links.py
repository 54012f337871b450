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
    """A task instance try that fails the test if anything reads XCom (a miss logs an error line)."""

    dag_id, run_id, task_id, map_index, try_number = "d", "r", "append", 3, 1

    def __init__(self, **attrs):
        self.__dict__.update(attrs)
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value

    def xcom_pull(self, *args, **kwargs):
        raise AssertionError("XCom read: Airflow logs every miss as an error")


class StateStore:
    def __init__(self):
        self.values: dict[str, object] = {}
        self.gets = 0

    def get(self, key, default=None):
        self.gets += 1
        return self.values.get(key, default)

    def set(self, key, value, retention=None):
        self.values[key] = value


class Deferrable:
    deferrable = True


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch):
    from symbl_airflow import links

    monkeypatch.setattr(links, "_STORED", {})


def test_url_is_pushed_once_per_try():
    ti, hook = TI(), Hook("https://meetinginsights.symbl.ai/meeting/#/eyJ")
    assert store_conversation_url({"ti": ti}, hook, "42", log) == "https://meetinginsights.symbl.ai/meeting/#/eyJ"
    assert ti.xcom == {SYMBL_CONVERSATION_URL_XCOM_KEY: "https://meetinginsights.symbl.ai/meeting/#/eyJ"}
    # Called again in the same try (after each part, after a deferral in this process): no second experience.
    assert store_conversation_url({"ti": ti}, hook, "42", log) == "https://meetinginsights.symbl.ai/meeting/#/eyJ"
    assert hook.calls == [("42", "verbose-text-summary")]
    assert SymblConversationLink().get_link(None, ti_key=ti) == "https://meetinginsights.symbl.ai/meeting/#/eyJ"


def test_a_new_try_asks_again():
    hook = Hook("https://x/1")
    store_conversation_url({"ti": TI()}, hook, "42", log)
    store_conversation_url({"ti": TI(try_number=2)}, hook, "42", log)
    assert len(hook.calls) == 2


def test_resumed_in_another_process_reuses_the_url_from_the_task_state_store():
    from symbl_airflow import links

    store, task = StateStore(), Deferrable()
    first = TI()
    context = {"ti": first, "task": task, "task_state_store": store}
    assert store_conversation_url(context, Hook("https://x/page"), "42", log) == "https://x/page"
    assert store.values[links.STATE_KEY] == {"try_number": 1, "conversation_id": "42", "url": "https://x/page"}
    links._STORED.clear()  # the deferral resumed the try in a new worker process

    resumed, hook = TI(), Hook("https://x/other")
    context = {"ti": resumed, "task": task, "task_state_store": store}
    assert store_conversation_url(context, hook, "42", log) == "https://x/page"
    assert hook.calls == [] and resumed.xcom == {}  # already in XCom from before the deferral

    links._STORED.clear()  # the sensor resumes into execute_complete: only the link asks
    resumed.get_template_context = lambda: {"task_state_store": store}
    assert SymblConversationLink().get_link(task, ti_key=resumed) == "https://x/page"
    # a record of an earlier try is not this try's URL
    assert (
        SymblConversationLink().get_link(
            task, ti_key=TI(try_number=2, get_template_context=lambda: {"task_state_store": store})
        )
        == ""
    )


def test_link_of_a_task_that_stored_nothing_reads_nothing():
    store = StateStore()
    ti = TI(get_template_context=lambda: {"task_state_store": store})
    assert SymblConversationLink().get_link(object(), ti_key=ti) == ""  # not deferrable: nothing to look up
    assert store.gets == 0


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


@pytest.mark.parametrize("error", ["auth", "config"])
def test_an_unusable_connection_fails_at_once(error, caplog):
    """Wrong credentials would fail the task's next call anyway: no warning first, no second wait."""
    from symbl_airflow.errors import SymblAuthError, SymblConfigError

    exc = (
        SymblAuthError("refused", status=401, method="POST", endpoint="/oauth2/token:generate")
        if error == "auth"
        else SymblConfigError("Connection 'symbl_default' has no login (App ID)")
    )
    with caplog.at_level(logging.WARNING, logger="test_links"), pytest.raises(type(exc)):
        store_conversation_url({"ti": TI()}, Hook(exc), "42", log)
    assert "Experience API call failed" not in caplog.text
