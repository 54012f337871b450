"""Rendered template values: Jinja without native rendering turns an XCom dict or list into its repr."""

from __future__ import annotations

import ast
import json
from typing import Any


def parse_rendered(value: Any) -> Any:
    """A string holding JSON or a Python literal becomes that object; anything else is returned as is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return value
