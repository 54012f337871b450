"""Keeping a writer's lease while a part uploads, and fencing the upload with it.

A lease is only as good as its holder's knowledge of it: a writer paused for longer than its lease
(GC, a suspended VM, SIGSTOP) wakes up believing it still holds it, while another writer may have
taken over. So the keeper keeps a *local* deadline on this process's monotonic clock, moved only by
a renewal that was written, and :meth:`LeaseKeeper.check` (called before every chunk of the body)
refuses once it has passed: a paused writer's first act after waking is to notice, and abort the body.
A body cut short is never accepted by Symbl (it needs all ``Content-Length`` bytes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from symbl_airflow.appends import ledger as L


def safety_margin(seconds: float) -> float:
    """How much earlier than the lease's end this writer stops (clock skew between hosts, a slow write)."""
    return max(1.0, seconds * 0.1)


class LeaseKeeper:
    """Renew the writer's lease every third of its length while a (long) upload runs.

    ``check()`` raises :class:`~symbl_airflow.appends.ledger.LeaseLost` once the lease may no longer
    be this writer's: its local deadline passed (no renewal landed in time) or a renewal found it
    taken over.
    """

    def __init__(
        self,
        store,
        writer: L.Writer,
        seconds: float,
        log,
        *,
        expires_at: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.writer, self.seconds, self.log = store, writer, seconds, log
        self._clock, self._wall = clock, wall
        self._margin = safety_margin(seconds)
        # the lease as last written: its wall-clock end, mapped onto this process's monotonic clock
        remaining = (expires_at - wall()) if expires_at is not None else seconds
        self._deadline = clock() + remaining - self._margin
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="symbl-lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def lost(self) -> str | None:
        """Why the lease is no longer this writer's, or None."""
        if self._lost is None and self._clock() >= self._deadline:
            return (
                f"the lease on {self.store.uri} ran out on this writer's clock (no renewal landed within "
                f"{self.seconds:g}s: the process was paused or S3 unreachable)"
            )
        return self._lost

    def check(self) -> None:
        """Raise ``LeaseLost`` when no further byte may be sent (cheap: a clock read)."""
        reason = self.lost
        if reason is not None:
            raise L.LeaseLost(reason)

    def renew_once(self) -> None:
        started = self._clock()
        try:
            self.store.update(L.renew(self.writer, self.seconds, now=self._wall))
        except L.LeaseLost as exc:
            self._lost = str(exc)
            self.log.warning("%s; the upload in flight is aborted", exc)
            return
        except Exception:
            self.log.warning("Could not renew the lease on %s", self.store.uri, exc_info=True)
            return
        if self._lost is None:
            # written under this writer's token: nobody took over since (a takeover replaces the token)
            self._deadline = started + self.seconds - self._margin

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            self.renew_once()
