"""The "Symbl conversation" extra link: from a task to the conversation's summary page at Symbl.

Airflow 3 computes extra links on the worker when a task ends and stores them in XCom, where the
api-server reads them; the link class itself never runs in the api-server. So the operator stores the
page URL under :data:`SYMBL_CONVERSATION_URL_XCOM_KEY` as soon as it knows the conversation id (the
URL is there even when the task later fails), and :class:`SymblConversationLink` hands it over.

Neither ever reads that XCom back: Airflow's API client logs every XCom miss as an error line, and
the URL does not exist yet the first time a task asks. The process that stored it remembers it; a
deferrable task resumed in another process finds it in its task state store (a miss there is silent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

    from symbl_airflow.hooks import SymblHook

#: XCom key holding the summary page URL of the task's conversation.
SYMBL_CONVERSATION_URL_XCOM_KEY = "symbl_conversation_url"
#: The button label in the task instance view.
SYMBL_CONVERSATION_LINK_NAME = "Symbl conversation"
#: The Experience API experience the link opens (a shareable text summary page).
DEFAULT_EXPERIENCE = "verbose-text-summary"


class SymblConversationLink(BaseOperatorLink):
    """Opens the Symbl summary page (Experience API) of the conversation the task worked on."""

    name = SYMBL_CONVERSATION_LINK_NAME

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        # Called on the worker as the task ends, with the running task instance as ``ti_key``.
        url = _STORED.get(_try_key(ti_key))
        if url is None and getattr(operator, "deferrable", False) and hasattr(ti_key, "get_template_context"):
            url = _resumed_url(ti_key.get_template_context(), ti_key, None)
        return url or ""


#: Task state key of the URL, for a deferrable task resumed in another process (same try).
STATE_KEY = "symbl_conversation_url"
#: URLs this process stored, by task instance try.
_STORED: dict[tuple | None, str] = {}
_STORED_MAX = 1024


def _try_key(ti: Any) -> tuple | None:
    try:
        return (ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number)
    except AttributeError:
        return None


def _remember(ti: Any, url: str) -> None:
    key = _try_key(ti)
    if key is None:
        return
    _STORED[key] = url
    while len(_STORED) > _STORED_MAX:
        _STORED.pop(next(iter(_STORED)))


def _resumed_url(context: Any, ti: Any, conversation_id: str | None) -> str | None:
    """The URL an earlier process of this try stored before it deferred, if any."""
    store = context.get("task_state_store")
    if store is None:
        return None
    record = store.get(STATE_KEY)
    if not isinstance(record, dict) or record.get("try_number") != getattr(ti, "try_number", None):
        return None
    if conversation_id and record.get("conversation_id") != conversation_id:
        return None
    url = record.get("url")
    if not isinstance(url, str) or not url:
        return None
    _remember(ti, url)
    return url


def store_conversation_url(
    context: Context,
    hook: SymblHook,
    conversation_id: str | None,
    log: Any,
    *,
    experience: str = DEFAULT_EXPERIENCE,
) -> str | None:
    """Ask Symbl for the conversation's summary page and keep its URL for the extra link.

    Call it as soon as the conversation id is known; calling it again in the same try (e.g. after a
    deferral) reuses the URL instead of creating another experience, without reading XCom.

    A link is a convenience: a deployment without the Experience API (``None``), or an error asking
    for it, is logged and never fails the task. Only an unusable connection (credentials, settings)
    fails it here, at once, as the task's next call would.
    """
    if not conversation_id:
        return None
    ti = context.get("ti")
    deferrable = bool(getattr(context.get("task"), "deferrable", False))
    stored = _STORED.get(_try_key(ti))
    if stored is None and deferrable:
        stored = _resumed_url(context, ti, conversation_id)
    if stored:
        return stored
    from symbl_airflow.errors import SymblAuthError, SymblConfigError

    try:
        url = hook.get_experience_url(conversation_id, name=experience)
    except (SymblAuthError, SymblConfigError):
        raise  # the connection itself is unusable: the task's own next call would fail the same way
    except Exception as exc:
        log.warning("No Symbl conversation link for %s: the Experience API call failed (%s)", conversation_id, exc)
        return None
    if not url:
        return None
    if hasattr(ti, "xcom_push"):
        ti.xcom_push(key=SYMBL_CONVERSATION_URL_XCOM_KEY, value=url)
    _remember(ti, url)
    store = context.get("task_state_store")
    if deferrable and store is not None:  # a deferral may resume this try in another process
        store.set(STATE_KEY, {"try_number": ti.try_number, "conversation_id": conversation_id, "url": url})
    # The URL itself is not logged: it is a bearer link to the summary (shown only as the task's extra link).
    log.info(
        "Symbl conversation %s: summary page stored for the %r link", conversation_id, SYMBL_CONVERSATION_LINK_NAME
    )
    return url
