"""Looking the Symbl connection up from the triggerer's event loop."""

from __future__ import annotations

from typing import Any


async def aget_connection(conn_id: str) -> Any:
    """Look a connection up without blocking the event loop (the triggerer's constraint)."""
    from airflow.sdk import BaseHook

    return await BaseHook.aget_connection(conn_id)
