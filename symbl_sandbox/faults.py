"""Sandbox-only bookkeeping: the submission ledger, request stats and scripted fault injection.

A fault acts like a misbehaving network or server in front of the API, before authentication:

* ``status``: answer with ``status``/``body``/``headers`` (the request body is drained, never stored);
* ``latency``: wait ``delay`` seconds, then handle the request normally;
* ``drop``: close the TCP connection without any response, in ``phase`` ``mid_body`` (after
  ``after_bytes`` body bytes), ``after_body`` (whole body read, nothing recorded) or ``after_accept``
  (the submission is recorded and its job queued, then the response is lost);
* ``fail_job``: the job of the next matching *accepted* submission ends ``failed``.

``times`` applies a fault to the next N matching requests (default 1, ``null`` = unlimited); ``rate`` with
``seed`` applies it with that probability instead (unlimited unless ``times`` is given).
"""

from __future__ import annotations

import fnmatch
import itertools
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACTIONS = ("status", "latency", "drop", "fail_job")
PHASES = ("mid_body", "after_body", "after_accept")


class FaultSpecError(ValueError):
    pass


@dataclass
class Fault:
    id: str
    method: str | None
    path: str | None
    action: str
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    phase: str = "after_body"
    after_bytes: int = 0
    times: int | None = 1
    rate: float | None = None
    seed: int | None = None
    applied: int = 0
    _rng: random.Random | None = None

    @classmethod
    def from_spec(cls, fault_id: str, spec: dict[str, Any]) -> Fault:
        if not isinstance(spec, dict):
            raise FaultSpecError("a fault must be a JSON object")
        match = spec.get("match") or {}
        if not isinstance(match, dict):
            raise FaultSpecError('"match" must be an object')
        action = spec.get("action")
        if action not in ACTIONS:
            raise FaultSpecError(f'"action" must be one of {", ".join(ACTIONS)}')
        phase = spec.get("phase") or "after_body"
        if action == "drop" and phase not in PHASES:
            raise FaultSpecError(f'"phase" must be one of {", ".join(PHASES)}')
        rate = spec.get("rate")
        if rate is not None and not (isinstance(rate, int | float) and 0 <= rate <= 1):
            raise FaultSpecError('"rate" must be a number between 0 and 1')
        times = spec["times"] if "times" in spec else (None if rate is not None else 1)
        if times is not None and (not isinstance(times, int) or times < 0):
            raise FaultSpecError('"times" must be a non-negative integer or null')
        headers = spec.get("headers") or {}
        if not isinstance(headers, dict):
            raise FaultSpecError('"headers" must be an object')
        fault = cls(
            id=fault_id,
            method=(match.get("method") or None) and str(match["method"]).upper(),
            path=match.get("path") or None,
            action=action,
            status=int(spec.get("status", 500)),
            body=spec.get("body"),
            headers={str(k): str(v) for k, v in headers.items()},
            delay=float(spec.get("delay", 0.0)),
            phase=phase,
            after_bytes=int(spec.get("after_bytes", 0)),
            times=times,
            rate=None if rate is None else float(rate),
            seed=spec.get("seed"),
        )
        if fault.rate is not None:
            fault._rng = random.Random(fault.seed)
        return fault

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method.upper():
            return False
        if self.path and not fnmatch.fnmatchcase(path, self.path):
            return False
        return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.applied >= self.times

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "match": {"method": self.method, "path": self.path},
            "action": self.action,
            "times": self.times,
            "applied": self.applied,
        }
        if self.action == "status":
            out.update(status=self.status, body=self.body, headers=self.headers)
        elif self.action == "latency":
            out["delay"] = self.delay
        elif self.action == "drop":
            out.update(phase=self.phase, after_bytes=self.after_bytes)
        if self.rate is not None:
            out.update(rate=self.rate, seed=self.seed)
        return out


class FaultRegistry:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = Fault.from_spec(f"fault-{next(self._ids)}", spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self._faults]

    def take(self, method: str, path: str, *, actions: tuple[str, ...]) -> Fault | None:
        """The first live fault of one of ``actions`` matching the request, counted as applied (or None)."""
        with self._lock:
            for fault in self._faults:
                if fault.action not in actions or fault.exhausted or not fault.matches(method, path):
                    continue
                if fault._rng is not None and fault._rng.random() >= (fault.rate or 0.0):
                    continue
                fault.applied += 1
                return fault
        return None


class Ledger:
    """Accepted submissions in arrival order (only those that got a job)."""

    def __init__(self) -> None:
        self.submissions: list[dict[str, Any]] = []
        self._by_job: dict[str, dict[str, Any]] = {}

    def record(self, **entry: Any) -> dict[str, Any]:
        entry = {
            "seq": len(self.submissions) + 1,
            "receivedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **entry,
        }
        self.submissions.append(entry)
        self._by_job[entry["jobId"]] = entry
        return entry

    def update(self, job_id: str, **fields: Any) -> None:
        if job_id in self._by_job:
            self._by_job[job_id].update(fields)

    def clear(self) -> None:
        self.submissions.clear()
        self._by_job.clear()


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    def count(self, method: str, route: str) -> None:
        self.requests[f"{method} {route}"] += 1

    def clear(self) -> None:
        self.requests.clear()
