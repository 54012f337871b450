"""Is an ISO-BMFF/QuickTime file one Symbl's video API takes as MP4? Brands and track codecs decide.

"MP4-compatible" here means: the file starts with an ``ftyp`` box (what Symbl checks) and every audio
and video track is coded with a codec registered for the MP4 family (avc1/hvc1/mp4v/av01 video; mp4a,
AC-3, E-AC-3, Opus, FLAC, ALAC audio). An iPhone ``.mov`` (brand ``qt``, H.264 + AAC) is such a file: it
goes as it is. QuickTime without ``ftyp`` (files written before 2001 start with ``moov``/``mdat``), or
with QuickTime-only codecs (ProRes, uncompressed PCM ``sowt``/``twos``/``lpcm``, Motion JPEG, DV, ...)
is not, and is converted. The codec of a track is the type of its first ``stsd`` sample entry
(read by :func:`symbl_airflow.media.mp4.tracks`). No I/O here: the rule only.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Sample entries of video codecs registered for MP4 (MP4RA): sent as they are.
MP4_VIDEO_CODECS = frozenset({"avc1", "avc3", "hvc1", "hev1", "mp4v", "av01"})
#: Sample entries of audio codecs registered for MP4.
MP4_AUDIO_CODECS = frozenset({"mp4a", "ac-3", "ec-3", "Opus", "fLaC", "alac", ".mp3"})
#: Audio-only files Symbl's audio API takes as M4A (AAC in MP4); other audio-only MP4s are converted.
M4A_AUDIO_CODECS = frozenset({"mp4a"})
#: ``ftyp`` brands of still images (HEIF/AVIF): ISO-BMFF, but not recordings.
IMAGE_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis", "avci"})


@dataclass(frozen=True)
class Track:
    kind: str  # video, audio, text, or the raw handler type
    codec: str | None  # first stsd sample entry type, e.g. avc1, mp4a, apcn, sowt


def brands(ftyp_body: bytes) -> tuple[str, ...]:
    """Major brand, then the compatible brands, of an ``ftyp`` body."""
    if len(ftyp_body) < 4:
        return ()
    names = [ftyp_body[:4]] + [ftyp_body[i : i + 4] for i in range(8, len(ftyp_body) - 3, 4)]
    return tuple(dict.fromkeys(n.decode("latin-1") for n in names))


def incompatible(found: tuple[Track, ...]) -> list[str]:
    """The audio/video tracks whose codec MP4 does not carry, e.g. ``["video: apcn (ProRes)"]``."""
    bad = []
    for track in found:
        allowed = MP4_VIDEO_CODECS if track.kind == "video" else MP4_AUDIO_CODECS if track.kind == "audio" else None
        if allowed is not None and track.codec not in allowed:
            bad.append(f"{track.kind}: {track.codec or 'unknown codec'}")
    return bad
