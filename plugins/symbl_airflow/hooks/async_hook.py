"""``SymblAsyncHook``: the Symbl.ai API from triggers (aiohttp, never blocks the event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from symbl_airflow.hooks.base import SymblHookMixin
from symbl_airflow.hooks.config import DEFAULT_CONN_ID, USER_AGENT, SymblConnectionConfig, parse_connection
from symbl_airflow.hooks.connection import aget_connection
from symbl_airflow.hooks.retry import parse_retry_after
from symbl_airflow.hooks.wire import (
    TOKEN_PATH,
    Call,
    SymblJob,
    check_answer,
    insight_call,
    insight_params,
    job_call,
    no_response,
    parse_job,
    parse_token,
    token_body,
)
from symbl_airflow.tokens import TOKEN_CACHE, amask_secret

if TYPE_CHECKING:
    import aiohttp


class SymblAsyncHook(SymblHookMixin, BaseHook):
    """Async Symbl client for triggers: one aiohttp session per ``async with``, no blocking calls.

    Methods also work outside ``async with`` (each call then opens and closes its own session).
    Same connection, retry policy and token cache as :class:`~symbl_airflow.hooks.SymblHook`.

    :param shared_session: borrow the event loop's pooled session (at most
        :data:`~symbl_airflow.polling.MAX_SOCKETS` sockets for every hook that does) instead of
        opening one per ``async with``: what thousands of triggers in one triggerer need.
    """

    def __init__(self, symbl_conn_id: str = DEFAULT_CONN_ID, *, shared_session: bool = False, **kwargs: Any) -> None:
        super().__init__(symbl_conn_id, **kwargs)
        self.shared_session = shared_session
        self._pool_key: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._depth = 0
        self._sleep = asyncio.sleep
        self._client_timeout: aiohttp.ClientTimeout | None = None

    async def aget_config(self) -> SymblConnectionConfig:
        if self._config is None:
            conn = await aget_connection(self.symbl_conn_id)
            aextra = getattr(conn, "aextra_dejson", None)
            extras = await aextra() if aextra is not None else conn.extra_dejson
            config = parse_connection(conn, self.symbl_conn_id, extras)
            await amask_secret(config.app_secret)
            self._config = config
        return self._config

    async def __aenter__(self) -> SymblAsyncHook:
        if self._depth == 0:
            if self.shared_session:
                from symbl_airflow.polling import MAX_SOCKETS, SESSION_POOL

                config = await self.aget_config()
                self._pool_key = ("symbl", config.verify)  # TLS settings live on the connector
                self._session = await SESSION_POOL.acquire(self._pool_key, lambda: self._new_session(MAX_SOCKETS))
            else:
                self._session = await self._new_session()
        self._depth += 1
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._depth -= 1
        if self._depth == 0 and self._session is not None:
            session, self._session = self._session, None
            if self.shared_session:
                from symbl_airflow.polling import SESSION_POOL

                await SESSION_POOL.release(self._pool_key, session)
            else:
                await session.close()

    async def _new_session(self, limit: int = 100) -> aiohttp.ClientSession:
        import aiohttp

        config = await self.aget_config()
        ssl: Any = True
        if config.verify is False:
            ssl = False
        elif isinstance(config.verify, str):
            import ssl as ssl_module

            ssl = ssl_module.create_default_context(cafile=config.verify)
        connector = aiohttp.TCPConnector(ssl=ssl, limit=limit)
        return aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"}, connector=connector
        )

    @asynccontextmanager
    async def _session_scope(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._session is not None:
            yield self._session
            return
        async with self:
            assert self._session is not None
            yield self._session

    # ------------------------------------------------------------------ tokens
    async def get_access_token(self) -> str:
        config = await self.aget_config()
        async with self._session_scope() as session:
            return await TOKEN_CACHE.get_async(
                config.token_key, lambda: self._fetch_token(session), config.token_refresh_margin
            )

    async def _fetch_token(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        config = await self.aget_config()
        call = Call("POST", TOKEN_PATH, auth=False)
        status, text = await self._send(session, call, json_body=token_body(config.app_id, config.app_secret))
        return parse_token(call, call.json(text, status))

    # ------------------------------------------------------------------ the request engine
    async def _send(
        self,
        session: aiohttp.ClientSession,
        call: Call,
        *,
        params: list[tuple[str, str]] | None = None,
        json_body: Any = None,
    ) -> tuple[int, str]:
        """One logical call under the retry policy (idempotent calls only): a 2xx ``(status, text)``."""
        config = self._config or await self.aget_config()
        try:
            return await self._attempt(session, config, call, 1, params, json_body)
        except Exception as exc:
            return await self._retry_policy(config).aretry(
                call,
                exc,
                lambda number: self._attempt(session, config, call, number, params, json_body),
                log=self,
                sleep=self._sleep,
            )

    async def _attempt(self, session, config, call: Call, number: int, params, json_body) -> tuple[int, str]:
        """One attempt; a 401 gets one token refresh and one resend within it."""
        import aiohttp

        if self._client_timeout is None:
            self._client_timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=config.connect_timeout, sock_read=config.read_timeout(self._timeout)
            )
        for refreshed in (False, True):
            headers: dict[str, str] = {}
            token = None
            if call.auth:
                # The cached token without a coroutine: a poll is ~0.3 ms of CPU, every step shows.
                token = TOKEN_CACHE.get_cached(config.token_key) or await TOKEN_CACHE.get_async(
                    config.token_key, lambda: self._fetch_token(session), config.token_refresh_margin
                )
                headers["Authorization"] = f"Bearer {token}"
            try:
                async with session.request(
                    call.method,
                    config.base_url + call.path,
                    params=params or None,
                    json=json_body,
                    headers=headers,
                    timeout=self._client_timeout,
                ) as resp:
                    status, text = resp.status, await resp.text()
                    retry_after = parse_retry_after(resp.headers.get("Retry-After")) if status >= 300 else None
            except (TimeoutError, aiohttp.ClientError) as exc:
                connect_failed = isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
                raise no_response(
                    call, number, exc, base_url=config.base_url, conn_id=config.conn_id, connect_failed=connect_failed
                ) from None
            if check_answer(call, config.conn_id, status, text, retry_after, may_refresh=not refreshed):
                return status, text
            TOKEN_CACHE.invalidate(config.token_key, token)
            self.log.info("%s %s got HTTP 401; refreshing the access token once", call.method, call.path)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_json(self, call: Call, params: list[tuple[str, str]] | None = None) -> Any:
        async with self._session_scope() as session:
            status, text = await self._send(session, call, params=params)
        return call.json(text, status)

    # ------------------------------------------------------------------ API
    async def get_job(self, job_id: str) -> SymblJob:
        call = job_call(job_id)
        return parse_job(call, await self._get_json(call))

    async def get_conversation(self, conversation_id: str) -> dict:
        return await self.get_insight(conversation_id, "conversation")

    async def get_insight(self, conversation_id: str, kind: str, **params: Any) -> dict | list:
        return await self._get_json(insight_call(conversation_id, kind), insight_params(params))
