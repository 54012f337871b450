"""Request counts per route (``GET /sandbox/stats``), so tests can tell how often a client called Symbl."""

from __future__ import annotations

from collections import Counter


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    def count(self, method: str, route: str) -> None:
        self.requests[f"{method} {route}"] += 1

    def clear(self) -> None:
        self.requests.clear()
