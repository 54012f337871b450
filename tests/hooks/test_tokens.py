"""Token cache: margin math, sharing, invalidation, one fetch per key for threads and for asyncio."""

from __future__ import annotations

import asyncio
import threading

import pytest

from symbl_airflow.tokens import TokenCache, effective_margin

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize(
    ("expires_in", "margin", "expected"),
    [
        (86400, 300, 300),  # normal token: fixed margin
        (600, 300, 300),  # exactly 2x margin: still the fixed margin
        (599, 300, 299.5),  # below 2x: proportional (half the lifetime)
        (60, 300, 30),  # short-lived token still used for half its life
        (1, 300, 0.5),
        (0, 300, 0),
        (100, 0, 0),
    ],
)
def test_effective_margin(expires_in, margin, expected):
    assert effective_margin(expires_in, margin) == pytest.approx(expected)


def test_token_reused_until_margin_then_refetched():
    clock = Clock()
    cache = TokenCache(clock=clock)
    values = iter(["tok-1", "tok-2"])
    calls = []

    def fetch():
        calls.append(1)
        return next(values), 1000

    key = ("https://api", "app")
    assert cache.get_sync(key, fetch, margin=300) == "tok-1"
    clock.now += 699
    assert cache.get_sync(key, fetch, margin=300) == "tok-1"
    clock.now += 1  # reaches expiry - margin
    assert cache.get_sync(key, fetch, margin=300) == "tok-2"
    assert len(calls) == 2


def test_short_lived_token_is_used():
    clock = Clock()
    cache = TokenCache(clock=clock)
    calls = []

    def fetch():
        calls.append(1)
        return f"tok-{len(calls)}", 10  # shorter than the 300 s margin

    key = ("u", "a")
    assert cache.get_sync(key, fetch) == "tok-1"
    clock.now += 4.9
    assert cache.get_sync(key, fetch) == "tok-1"
    clock.now += 0.2
    assert cache.get_sync(key, fetch) == "tok-2"


def test_keys_are_separate():
    cache = TokenCache()
    assert cache.get_sync(("u", "a"), lambda: ("A", 100)) == "A"
    assert cache.get_sync(("u", "b"), lambda: ("B", 100)) == "B"
    assert cache.get_sync(("v", "a"), lambda: ("C", 100)) == "C"
    assert cache.get_cached(("u", "a")) == "A"


def test_invalidate_only_the_stale_value():
    cache = TokenCache()
    key = ("u", "a")
    cache.get_sync(key, lambda: ("old", 100))
    assert cache.invalidate(key, "other") is False
    assert cache.get_cached(key) == "old"
    assert cache.invalidate(key, "old") is True
    assert cache.get_cached(key) is None
    assert cache.invalidate(key) is False


def test_threads_share_one_fetch():
    cache = TokenCache()
    gate = threading.Event()
    calls = []

    def fetch():
        calls.append(1)
        gate.wait(5)
        return "tok", 100

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_sync(("u", "a"), fetch))) for _ in range(20)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert results == ["tok"] * 20
    assert len(calls) == 1


async def test_async_callers_share_one_fetch():
    cache = TokenCache()
    calls = []

    async def fetch():
        calls.append(1)
        await asyncio.sleep(0.02)
        return "tok", 100

    results = await asyncio.gather(*(cache.get_async(("u", "a"), fetch) for _ in range(50)))
    assert results == ["tok"] * 50
    assert len(calls) == 1


def test_async_locks_are_per_loop():
    """The process-wide cache must work from several event loops (one asyncio.Lock per loop)."""
    cache = TokenCache()
    calls = []

    async def fetch():
        calls.append(1)
        await asyncio.sleep(0.01)
        return f"tok-{len(calls)}", 100

    async def use():
        return await asyncio.gather(*(cache.get_async(("u", "a"), fetch) for _ in range(5)))

    assert asyncio.run(use()) == ["tok-1"] * 5
    cache.clear()
    assert asyncio.run(use()) == ["tok-2"] * 5  # a new loop, a new lock: no "bound to a different loop"


async def test_failed_fetch_releases_the_lock():
    cache = TokenCache()

    async def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await cache.get_async(("u", "a"), broken)

    async def good():
        return "tok", 100

    assert await cache.get_async(("u", "a"), good) == "tok"


def test_tokens_are_registered_with_the_secrets_masker(monkeypatch):
    masked = []
    import airflow.sdk.log

    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda value, name=None: masked.append(value))
    TokenCache().get_sync(("u", "a"), lambda: ("secret-token-value", 100))
    assert masked == ["secret-token-value"]
