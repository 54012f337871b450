"""The Airflow connection, parsed and checked once for both hooks; the connection lookup itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from symbl_airflow.errors import SymblConfigError
from symbl_airflow.tokens import DEFAULT_REFRESH_MARGIN, TokenKey
from symbl_airflow.version import __version__

DEFAULT_CONN_ID = "symbl_default"
DEFAULT_BASE_URL = "https://api.symbl.ai"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_UPLOAD_READ_TIMEOUT = 300.0


def _airflow_version() -> str:
    try:
        from airflow import __version__ as airflow_version

        return airflow_version
    except ImportError:  # pragma: no cover
        return "unknown"


USER_AGENT = f"symbl-airflow/{__version__} (apache-airflow/{_airflow_version()})"


@dataclass(frozen=True)
class SymblConnectionConfig:
    """Everything the hooks need from an Airflow connection, parsed and checked once."""

    conn_id: str
    base_url: str
    app_id: str
    app_secret: str = field(repr=False)
    timeout: float | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    token_refresh_margin: float = DEFAULT_REFRESH_MARGIN
    max_attempts: int | None = None
    max_retry_seconds: float | None = None
    backoff_base: float | None = None
    verify: bool | str = True

    @property
    def token_key(self) -> TokenKey:
        return (self.base_url, self.app_id)

    def read_timeout(self, override: float | None, upload: bool = False) -> float:
        """Constructor argument, else the ``timeout`` extra, else 300 s for uploads and 60 s otherwise."""
        return override or self.timeout or (DEFAULT_UPLOAD_READ_TIMEOUT if upload else DEFAULT_READ_TIMEOUT)


def normalize_base_url(host: str | None, schema: str | None = None, port: int | None = None) -> str:
    """Base URL from the connection: empty -> Symbl's; scheme-less host -> https (or ``schema``)."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = (schema or "").strip().lower()
        if scheme not in ("http", "https"):
            scheme = "https"
        host = f"{scheme}://{host}"
    parsed = urlparse(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SymblConfigError(f"Symbl base URL {host!r} must be an http(s) URL such as https://api.symbl.ai")
    url = host.rstrip("/")
    if port and parsed.port is None:
        url = f"{parsed.scheme}://{parsed.netloc}:{int(port)}{parsed.path.rstrip('/')}"
    return url


def _extra_number(extras: dict, name: str, conn_id: str, *, integer: bool = False, minimum: float = 0.0):
    value = extras.get(name)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise SymblConfigError(f"Connection {conn_id!r}: extra {name!r} must be {kind}, got {value!r}") from None
    if number < minimum:
        raise SymblConfigError(f"Connection {conn_id!r}: extra {name!r} must be >= {minimum}, got {value!r}")
    return number


def parse_connection(conn: Any, conn_id: str, extras: dict | None = None) -> SymblConnectionConfig:
    """Turn an Airflow ``Connection`` (+ its decoded extras) into a :class:`SymblConnectionConfig`."""
    extras = dict(extras if extras is not None else (conn.extra_dejson or {}))
    missing = [
        label
        for label, value in (("login (App ID)", conn.login), ("password (App Secret)", conn.password))
        if not value
    ]
    if missing:
        raise SymblConfigError(
            f"Connection {conn_id!r} has no {' and no '.join(missing)}. Set login = your Symbl App ID "
            "and password = your App Secret (e.g. AIRFLOW_CONN_"
            f'{conn_id.upper()}=\'{{"conn_type": "symbl", "login": "...", "password": "..."}}\').'
        )
    verify = extras.get("verify", extras.get("verify_ssl", True))
    if isinstance(verify, str) and verify.lower() in ("true", "false"):
        verify = verify.lower() == "true"
    margin = _extra_number(extras, "token_refresh_margin", conn_id)
    return SymblConnectionConfig(
        conn_id=conn_id,
        base_url=normalize_base_url(conn.host, conn.schema, conn.port),
        app_id=conn.login,
        app_secret=conn.password,
        timeout=_extra_number(extras, "timeout", conn_id, minimum=0.001),
        connect_timeout=_extra_number(extras, "connect_timeout", conn_id, minimum=0.001) or DEFAULT_CONNECT_TIMEOUT,
        token_refresh_margin=DEFAULT_REFRESH_MARGIN if margin is None else margin,
        max_attempts=_extra_number(extras, "max_attempts", conn_id, integer=True, minimum=1),
        max_retry_seconds=_extra_number(extras, "max_retry_seconds", conn_id),
        backoff_base=_extra_number(extras, "backoff_base", conn_id),
        verify=verify,
    )
