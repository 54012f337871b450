"""``python -m symbl_sandbox``: run the Symbl sandbox (flags and env vars as in docs/contracts.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from symbl_sandbox.api import create_app
from symbl_sandbox.model import DEFAULT_CREDENTIALS, SandboxConfig

log = logging.getLogger("symbl_sandbox")


def _env(name: str, default):
    return os.environ.get(f"SYMBL_SANDBOX_{name}", default)


def parse_credentials(text: str) -> dict[str, str]:
    """``id:secret[,id:secret]`` -> {id: secret}."""
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        app_id, sep, secret = pair.partition(":")
        if not sep or not app_id or not secret:
            raise argparse.ArgumentTypeError("credentials must look like id:secret[,id:secret]")
        out[app_id] = secret
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m symbl_sandbox", description="A local stand-in for the Symbl.ai API.")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("PORT", 8900)), help="0 picks a free port")
    p.add_argument("--port-file", type=Path, help="written atomically with the bound port once serving")
    p.add_argument("--app-id", action="append", default=[], help="repeatable, paired with --app-secret")
    p.add_argument("--app-secret", action="append", default=[], help="repeatable, paired with --app-id")
    p.add_argument("--credentials", default=_env("CREDENTIALS", None), help="id:secret[,id:secret]")
    p.add_argument("--token-ttl", type=float, default=float(_env("TOKEN_TTL", 86400)))
    p.add_argument("--max-concurrent-jobs", type=int, default=int(_env("MAX_CONCURRENT_JOBS", 50)))
    p.add_argument("--speed", type=float, default=float(_env("SPEED", 0.1)), help="work seconds per media second")
    p.add_argument("--min-job-seconds", type=float, default=float(_env("MIN_JOB_SECONDS", 1.0)))
    p.add_argument("--data-dir", type=Path, default=_env("DATA_DIR", None))
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    p.add_argument(
        "--entity-shape",
        choices=("current", "legacy"),
        default=_env("ENTITY_SHAPE", "current"),
        help="GET .../entities shape: current (type/subType/category/matches) or legacy (flat, 2022 docs)",
    )
    p.add_argument(
        "--max-media-seconds",
        type=float,
        default=float(_env("MAX_MEDIA_SECONDS", 14400)),
        help="longest media a job takes, in seconds (Symbl: 4 hours per file); longer media fails the job",
    )
    p.add_argument(
        "--public-url",
        default=_env("PUBLIC_URL", None),
        help="base URL browsers use to reach the sandbox, for Experience API links (default: the request's host)",
    )
    return p


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> SandboxConfig:
    if len(args.app_id) != len(args.app_secret):
        parser.error("--app-id and --app-secret must be given in pairs")
    credentials: dict[str, str] = {}
    if args.credentials:
        try:
            credentials.update(parse_credentials(args.credentials))
        except argparse.ArgumentTypeError as exc:
            parser.error(str(exc))
    credentials.update(zip(args.app_id, args.app_secret, strict=True))
    if args.max_concurrent_jobs < 1:
        parser.error("--max-concurrent-jobs must be >= 1")
    if args.speed < 0 or args.min_job_seconds < 0 or args.token_ttl <= 0:
        parser.error("--speed and --min-job-seconds must be >= 0 and --token-ttl > 0")
    if not args.max_media_seconds > 0:
        parser.error("--max-media-seconds must be > 0 (Symbl's limit is 14400, 4 hours)")
    return SandboxConfig(
        credentials=credentials or dict(DEFAULT_CREDENTIALS),
        token_ttl=args.token_ttl,
        max_concurrent_jobs=args.max_concurrent_jobs,
        speed=args.speed,
        min_job_seconds=args.min_job_seconds,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        entity_shape=args.entity_shape,
        public_url=args.public_url or None,
        max_media_seconds=args.max_media_seconds,
    )


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".port-")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{port}\n")
    os.replace(tmp, path)


async def serve(config: SandboxConfig, host: str, port: int, port_file: Path | None) -> None:
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if port_file is not None:
        _write_port_file(port_file, bound)
    log.info(
        "Symbl sandbox listening on http://%s:%s (apps: %s, max concurrent jobs %s, speed %s, min job %ss, "
        "max media %gs)",
        host,
        bound,
        ", ".join(config.credentials),
        config.max_concurrent_jobs,
        config.speed,
        config.min_job_seconds,
        config.max_media_seconds,
    )
    try:
        await stop.wait()
    finally:
        log.info("Symbl sandbox shutting down")
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(args, parser)
    logging.basicConfig(
        level=str(args.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    asyncio.run(serve(config, args.host, args.port, args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
