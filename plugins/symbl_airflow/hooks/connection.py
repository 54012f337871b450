"""Looking the Symbl connection up from the triggerer's event loop.

``BaseHook.aget_connection`` asks the supervisor asynchronously (``SUPERVISOR_COMMS.asend``). Under
``airflow dags test`` / ``dag.test()`` the trigger runs in-process with the test supervisor's comms,
which only talk synchronously (Airflow 3.3: ``InProcessSupervisorComms`` has no ``asend``): the
async lookup then swallows the ``AttributeError`` and reports every connection that lives in the
metadata DB as "isn't defined" (environment variables still work). There the synchronous lookup is
the working one, and blocking is harmless: nothing else runs on that loop.
"""

from __future__ import annotations

from typing import Any


def _supervisor_talks_sync_only() -> bool:
    from airflow.sdk.execution_time import task_runner

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return comms is not None and not callable(getattr(comms, "asend", None))


async def aget_connection(conn_id: str) -> Any:
    """Look a connection up without blocking the event loop (the triggerer's constraint)."""
    from airflow.sdk import BaseHook

    if _supervisor_talks_sync_only():
        return BaseHook.get_connection(conn_id)
    return await BaseHook.aget_connection(conn_id)
