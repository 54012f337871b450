"""The "Symbl conversation" extra link: from a task to the conversation's summary page at Symbl.

Airflow 3 computes extra links on the worker when a task ends and stores them in XCom, where the
api-server reads them; the link class itself never runs in the api-server. So the operator stores the
page URL under :data:`SYMBL_CONVERSATION_URL_XCOM_KEY` as soon as it knows the conversation id (the
URL is there even when the task later fails), and :class:`SymblConversationLink` hands it over.
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
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=SYMBL_CONVERSATION_URL_XCOM_KEY)
        return url if isinstance(url, str) else ""


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
    deferral) reuses the stored URL instead of creating another experience. A link is a convenience:
    a deployment without the Experience API (``None``), or any error asking for it, is logged and never
    fails the task.
    """
    if not conversation_id:
        return None
    ti = context.get("ti")
    if hasattr(ti, "xcom_pull"):
        stored = ti.xcom_pull(task_ids=ti.task_id, key=SYMBL_CONVERSATION_URL_XCOM_KEY, map_indexes=ti.map_index)
        if isinstance(stored, str) and stored:
            return stored
    try:
        url = hook.get_experience_url(conversation_id, name=experience)
    except Exception as exc:
        log.warning("No Symbl conversation link for %s: the Experience API call failed (%s)", conversation_id, exc)
        return None
    if not url:
        return None
    if hasattr(ti, "xcom_push"):
        ti.xcom_push(key=SYMBL_CONVERSATION_URL_XCOM_KEY, value=url)
    # The URL itself is not logged: it is a bearer link to the summary (shown only as the task's extra link).
    log.info(
        "Symbl conversation %s: summary page stored for the %r link", conversation_id, SYMBL_CONVERSATION_LINK_NAME
    )
    return url
