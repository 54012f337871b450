"""The order of a conversation's parts: the one comparator discovery, the operator and the plan share.

Recorders write ``Zoom Recording 1.mp4 … Zoom Recording 10.mp4``, cameras ``CLIP_9.MOV, CLIP_10.MOV``;
nobody can rename them, and S3 key order would append 1, 10, 2 and call a part 10 that lands later
*late* forever. ``"natural"`` (the default) compares what people mean: case-insensitively, with runs
of digits compared as numbers. ``"key"`` is plain S3 key order (code point order), the order of every
conversation built before ``part_order`` existed; their ledgers keep it.

Ties are broken by the raw key, so the order is total and the same on every machine: ``part-1`` and
``part-01`` (equal as numbers) or ``Part-1`` and ``part-1`` (equal ignoring case) still come in one
fixed order (code point order of the keys), never in listing order.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable

NATURAL = "natural"
KEY = "key"
PART_ORDERS = (NATURAL, KEY)
#: The order a ledger written before ``part_order`` existed was built in.
LEGACY_PART_ORDER = KEY

# Decimal digits of any script (``int`` reads them all); superscripts and the like are text.
_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """``"Zoom Recording 10.mp4"`` -> ``(("zoom recording ", 10, ""), "mp4", "Zoom Recording 10.mp4")``.

    The extension is compared last, so ``Recording.m4a`` comes before ``Recording (2).m4a`` and
    ``Recording 2.m4a`` (a name that goes on comes after the name alone, as people number copies).
    ``re.split`` with a group alternates text and digits starting with text, so positions always hold
    the same type and tuples compare without mixing ``str`` and ``int``. NFC first: the same visible
    name uploaded from macOS (decomposed accents) and from elsewhere sorts the same.
    """
    folded = unicodedata.normalize("NFC", text).casefold()
    stem, dot, extension = folded.rpartition(".")
    if not dot or "/" in extension or not 0 < len(extension) <= 5:
        stem, extension = folded, ""
    chunks: list = _DIGITS.split(stem)
    for i in range(1, len(chunks), 2):
        chunks[i] = int(chunks[i])
    return tuple(chunks), extension, text


def _key_key(text: str) -> str:
    return text


def check_part_order(value: object, *, name: str = "part_order") -> str:
    """The order's name, or a ``ValueError`` naming the input and the choices."""
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text not in PART_ORDERS:
        raise ValueError(
            f"{name} must be one of {PART_ORDERS} ('natural': case-insensitive, numbers by value, so "
            f"'Recording 2' comes before 'Recording 10'; 'key': plain S3 key order), got {value!r}"
        )
    return text


def sort_key(part_order: str) -> Callable[[str], object]:
    """The key function for ``sorted``/``min``/``max`` of part keys or ``s3://`` URIs in ``part_order``."""
    return natural_key if check_part_order(part_order) == NATURAL else _key_key


def conversation_order(recorded: str | None, has_parts: bool, requested: str) -> str:
    """The order one conversation uses: the one its ledger recorded; a ledger from before ``part_order``
    (parts, none recorded) was built in key order; a new conversation takes the one requested."""
    if recorded:
        return check_part_order(recorded)
    return LEGACY_PART_ORDER if has_parts else check_part_order(requested)


def sorted_parts(keys: Iterable[str], part_order: str) -> list[str]:
    return sorted(keys, key=sort_key(part_order))


def is_sorted(keys: list[str], part_order: str) -> bool:
    key = sort_key(part_order)
    ranks = [key(k) for k in keys]
    return all(a <= b for a, b in itertools.pairwise(ranks))


__all__ = [
    "KEY",
    "LEGACY_PART_ORDER",
    "NATURAL",
    "PART_ORDERS",
    "check_part_order",
    "conversation_order",
    "is_sorted",
    "natural_key",
    "sort_key",
    "sorted_parts",
]
