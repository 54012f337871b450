"""A local stand-in for the Symbl.ai API (like moto for AWS): ``python -m symbl_sandbox``.

``model`` holds state (accounts, tokens, conversations, jobs, summary links), ``insights`` the transcript
rules, ``conversation_list`` the ``GET /v1/conversations`` query, ``experience`` the Experience API's
request checks and summary page, ``media`` the streamed intake and caption reading, ``api`` the aiohttp
routes, ``faults`` the ledger and fault injection, ``samples`` small real MP4s for tests and demos.
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
