"""Scripted fault injection: the sandbox misbehaving like a network or server in front of the API.

A fault acts before authentication, like a proxy or gateway would:

* ``status``: answer with ``status``/``body``/``headers``. ``phase`` ``after_body`` (default): the request
  body is drained and never stored; ``after_accept``: the request is handled first (an upload is accepted,
  its job queued and in the submission log) and the client gets the error answer instead of the 201: a
  gateway timing out on a backend that still does the work;
* ``latency``: wait ``delay`` seconds, then handle the request normally (``phase`` ``before``, the
  default); ``after_accept``: handle it first (an upload is accepted and its job queued), then wait before
  answering, so a client whose read timeout is shorter gives up on an upload Symbl took;
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
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("status", "latency", "drop", "fail_job")
PHASES = ("mid_body", "after_body", "after_accept")
STATUS_PHASES = ("after_body", "after_accept")
LATENCY_PHASES = ("before", "after_accept")


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
        phase = spec.get("phase") or ("before" if action == "latency" else "after_body")
        if action == "drop" and phase not in PHASES:
            raise FaultSpecError(f'"phase" must be one of {", ".join(PHASES)}')
        if action == "latency" and phase not in LATENCY_PHASES:
            raise FaultSpecError(f'"phase" of a latency fault must be one of {", ".join(LATENCY_PHASES)}')
        if action == "status" and phase not in STATUS_PHASES:
            raise FaultSpecError(f'"phase" of a status fault must be one of {", ".join(STATUS_PHASES)}')
        status = spec.get("status", 500)
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise FaultSpecError('"status" must be an HTTP status code (100-599)')
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
            status=status,
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
            out.update(status=self.status, body=self.body, headers=self.headers, phase=self.phase)
        elif self.action == "latency":
            out.update(delay=self.delay, phase=self.phase)
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
