"""A local stand-in for the Symbl.ai API (like moto for AWS): ``python -m symbl_sandbox``.

The model, apart from HTTP (moto's split): ``model`` holds state and job rules (accounts, tokens,
conversations, jobs, summary links), ``insights`` the transcript rules, ``media`` the streamed intake and
decoding (duration, audio, captions), ``formats`` which Content-Types the file endpoints take,
``conversation_list`` the ``GET /v1/conversations`` query, ``experience`` the Experience API's checks and
page. HTTP: ``api`` the route table and short handlers, ``uploads`` the Async API submissions, ``options``
option decoding, ``http_common`` shared plumbing and middlewares, ``outbound`` media downloads and
webhooks. Sandbox-only: ``submission_log`` (accepted submissions, ``GET /sandbox/submissions``),
``faults``, ``stats``; ``samples`` makes real media (MP4, every audio format) for tests and demos.
``README.md`` here names the reference page behind each endpoint.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["SandboxConfig", "__version__", "create_app"]


def __getattr__(name: str):
    # lazy, so ``import symbl_sandbox.samples`` does not pull in aiohttp
    if name == "create_app":
        from symbl_sandbox.api import create_app

        return create_app
    if name == "SandboxConfig":
        from symbl_sandbox.model import SandboxConfig

        return SandboxConfig
    raise AttributeError(name)
