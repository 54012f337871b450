"""One Symbl access-token cache per process, shared by every sync and async hook.

Symbl tokens live 24 h by default and every fetch counts against the account, so hooks built per
task, per poke or per trigger all share the cache below, keyed by ``(base URL, App ID)``.

Locking: a ``threading.Lock`` per key serialises sync fetches; async callers get an
``asyncio.Lock`` per key *per event loop* (asyncio locks bind to the loop that first waits on them,
and the triggerer or tests may run several loops in one process). Concurrent callers of one kind
therefore share a single in-flight fetch; the token itself is shared by all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Seconds before expiry at which a token is refreshed (Symbl's JS SDK uses the same 300 s).
DEFAULT_REFRESH_MARGIN = 300.0

TokenKey = tuple[str, str]
#: A fetch returns ``(access_token, expires_in_seconds)``.
TokenFetch = Callable[[], tuple[str, float]]
AsyncTokenFetch = Callable[[], Awaitable[tuple[str, float]]]


def effective_margin(expires_in: float, margin: float) -> float:
    """Refresh margin for a token that lives ``expires_in`` seconds.

    A fixed margin would make a short-lived token (shorter than the margin) useless, so below twice
    the margin the margin shrinks proportionally to half the lifetime.
    """
    expires_in = max(0.0, float(expires_in))
    margin = max(0.0, float(margin))
    return min(margin, expires_in / 2.0)


@dataclass(frozen=True)
class CachedToken:
    value: str
    obtained_at: float
    expires_at: float
    refresh_at: float

    def is_usable(self, now: float) -> bool:
        return now < self.refresh_at


def mask_secret(secret: str) -> None:
    """Register a secret (token, App Secret) with Airflow's secrets masker (task logs, supervisor)."""
    from airflow.sdk.log import mask_secret as _mask

    _mask(secret)


async def amask_secret(secret: str) -> None:
    """:func:`mask_secret` without blocking the event loop (it may talk to the supervisor)."""
    from airflow.sdk.log import amask_secret as _amask

    await _amask(secret)


#: Tokens are secrets like any other.
mask_token = mask_secret


class TokenCache:
    """Process-wide token store; see the module docstring for the locking rules."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[TokenKey, CachedToken] = {}
        self._guard = threading.Lock()
        self._sync_locks: dict[TokenKey, threading.Lock] = {}
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[TokenKey, asyncio.Lock]]
        self._async_locks = weakref.WeakKeyDictionary()
        #: Number of tokens fetched through this cache (for tests and diagnostics).
        self.fetch_count = 0

    # -------------------------------------------------------------- plain access
    def peek(self, key: TokenKey) -> CachedToken | None:
        with self._guard:
            return self._tokens.get(key)

    def get_cached(self, key: TokenKey) -> str | None:
        """Return a token that is not due for refresh, or ``None``."""
        with self._guard:
            cached = self._tokens.get(key)
        if cached is not None and cached.is_usable(self._clock()):
            return cached.value
        return None

    def store(self, key: TokenKey, value: str, expires_in: float, margin: float) -> CachedToken:
        now = self._clock()
        expires_in = max(0.0, float(expires_in))
        cached = CachedToken(
            value=value,
            obtained_at=now,
            expires_at=now + expires_in,
            refresh_at=now + expires_in - effective_margin(expires_in, margin),
        )
        with self._guard:
            self._tokens[key] = cached
            self.fetch_count += 1
        return cached

    def invalidate(self, key: TokenKey, value: str | None = None) -> bool:
        """Drop the cached token; with ``value``, only if it is still that token (a 401 for an old one
        must not throw away the fresh token another caller already fetched)."""
        with self._guard:
            cached = self._tokens.get(key)
            if cached is None or (value is not None and cached.value != value):
                return False
            del self._tokens[key]
            return True

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()

    # -------------------------------------------------------------- fetching
    def get_sync(self, key: TokenKey, fetch: TokenFetch, margin: float = DEFAULT_REFRESH_MARGIN) -> str:
        token = self.get_cached(key)
        if token is not None:
            return token
        with self._sync_lock(key):
            token = self.get_cached(key)  # another thread may have fetched while we waited
            if token is not None:
                return token
            value, expires_in = fetch()
            mask_token(value)
            self.store(key, value, expires_in, margin)
            log.debug("Fetched a Symbl access token for %s (expires in %.0f s)", key[0], expires_in)
            return value

    async def get_async(self, key: TokenKey, fetch: AsyncTokenFetch, margin: float = DEFAULT_REFRESH_MARGIN) -> str:
        token = self.get_cached(key)
        if token is not None:
            return token
        async with self._async_lock(key):
            token = self.get_cached(key)
            if token is not None:
                return token
            value, expires_in = await fetch()
            await amask_secret(value)
            self.store(key, value, expires_in, margin)
            log.debug("Fetched a Symbl access token for %s (expires in %.0f s)", key[0], expires_in)
            return value

    def _sync_lock(self, key: TokenKey) -> threading.Lock:
        with self._guard:
            lock = self._sync_locks.get(key)
            if lock is None:
                lock = self._sync_locks[key] = threading.Lock()
            return lock

    def _async_lock(self, key: TokenKey) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            per_loop = self._async_locks.get(loop)
            if per_loop is None:
                per_loop = self._async_locks[loop] = {}
            lock = per_loop.get(key)
            if lock is None:
                lock = per_loop[key] = asyncio.Lock()
            return lock


#: The process-wide cache every hook uses.
TOKEN_CACHE = TokenCache()


def get_token_cache() -> TokenCache:
    return TOKEN_CACHE
