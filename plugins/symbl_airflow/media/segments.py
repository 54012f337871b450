"""Cutting a recording longer than Symbl takes (4 hours per file) into consecutive segments.

The plan is pure: from the media seconds (and, when video is copied, its keyframe times) it picks the
fewest segments of near-equal length that each stay within ``max_part_seconds``. With stream copy a
video segment can only start on a keyframe, so every cut is moved back to the keyframe before it;
audio packets all start cleanly, so audio cuts land where planned. The same bytes always give the same
plan, so a later run cuts a part exactly as the run that sent its first segments did.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Symbl's longest file: "Maximum duration: 4 hours per file" (docs FAQ, 2022).
DEFAULT_MAX_PART_SECONDS = 14_400
ON_TOO_LONG = ("split", "fail")
#: More segments tried at most when keyframes do not fall where equal lengths would cut.
MAX_EXTRA_SEGMENTS = 64


class UncuttableError(ValueError):
    """No cut at keyframes keeps every segment within the limit (a gap between keyframes is longer)."""


@dataclass(frozen=True)
class Segment:
    index: int  # 0-based
    count: int
    start: float  # seconds from the start of the media
    seconds: float

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def is_last(self) -> bool:
        return self.index == self.count - 1

    def label(self) -> str:
        return f"segment {self.index + 1}/{self.count} ({clock(self.start)}-{clock(self.end)})"

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "count": self.count,
            "start": round(self.start, 6),
            "seconds": round(self.seconds, 6),
        }


def clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def plan_segments(total_seconds: float, max_seconds: float, keyframes: Sequence[float] | None = None) -> list[Segment]:
    """Consecutive segments covering ``[0, total_seconds)``, each at most ``max_seconds`` long.

    ``keyframes`` (sorted seconds, first at 0): the only places a cut may go (video stream copy).
    Raises UncuttableError when keyframes are too sparse for any such plan.
    """
    if not total_seconds or total_seconds <= 0:
        raise ValueError(f"total_seconds must be > 0, got {total_seconds!r}")
    if not max_seconds or max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds!r}")
    if total_seconds <= max_seconds:
        return [Segment(0, 1, 0.0, float(total_seconds))]
    fewest = math.ceil(total_seconds / max_seconds)
    keys = sorted(k for k in (keyframes or ()) if 0 < k < total_seconds)
    for count in range(fewest, fewest + MAX_EXTRA_SEGMENTS + 1):
        targets = [total_seconds * i / count for i in range(1, count)]
        cuts: list[float] = []
        for target in targets:
            if keyframes is None:
                cuts.append(target)
                continue
            # the last keyframe at or before the target, after the previous cut
            at = bisect.bisect_right(keys, target) - 1
            if at < 0 or (cuts and keys[at] <= cuts[-1]):
                break
            cuts.append(keys[at])
        if len(cuts) != count - 1:
            continue
        bounds = [0.0, *cuts, float(total_seconds)]
        lengths = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
        if all(0 < length <= max_seconds for length in lengths):
            return [Segment(i, count, bounds[i], lengths[i]) for i in range(count)]
    gap = max((b - a for a, b in zip([0.0, *keys], [*keys, total_seconds], strict=False)), default=total_seconds)
    raise UncuttableError(
        f"cannot cut {total_seconds:.0f} s into segments of at most {max_seconds:g} s at keyframes "
        f"(the longest stretch without a keyframe is {gap:.0f} s)"
    )


def snap_to_keyframes(
    planned: Sequence[Segment], keyframes: Sequence[float], total_seconds: float, max_seconds: float
) -> list[Segment]:
    """The same segments with every cut moved back to the keyframe at or before it (video stream copy).

    ``planned`` comes from :func:`plan_segments` without keyframes (made before the media was read);
    the count stays, so the ledger's segments keep their meaning. Raises UncuttableError when a
    segment would then be longer than ``max_seconds``.
    """
    keys = sorted(k for k in keyframes if 0 < k < total_seconds)
    cuts: list[float] = []
    for segment in planned[1:]:
        at = bisect.bisect_right(keys, segment.start + 1e-6) - 1
        if at < 0 or (cuts and keys[at] <= cuts[-1]):
            raise UncuttableError(
                f"no keyframe between {clock(cuts[-1] if cuts else 0)} and {clock(segment.start)} to cut at"
            )
        cuts.append(keys[at])
    bounds = [0.0, *cuts, float(total_seconds)]
    count = len(planned)
    snapped = [Segment(i, count, bounds[i], bounds[i + 1] - bounds[i]) for i in range(count)]
    too_long = [s for s in snapped if s.seconds > max_seconds]
    if too_long:
        raise UncuttableError(
            f"cut at keyframes, {too_long[0].label()} lasts {too_long[0].seconds:.0f} s, more than {max_seconds:g} s"
        )
    return snapped
