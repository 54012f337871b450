"""Lengths of audio files from their headers: a few bytes per file, never the media.

Exact where the format states it (WAV data size / byte rate, FLAC STREAMINFO, AIFF COMM, Ogg's last
granule position, an MP3 Xing/VBRI frame count, ASF file properties); an estimate from the bitrate of
the first frames where it does not (CBR MP3, ADTS AAC, AMR, AC-3): ``exact=False``.
Each parser raises UndecodableMediaError for a file that is cut short or is not what it claims.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from symbl_airflow.media.errors import UndecodableMediaError
from symbl_airflow.media.reader import RangeReader

#: Chunks / objects walked at most in a RIFF, AIFF or ASF header.
MAX_CHUNKS = 64
#: Bytes read at the end of an Ogg file to find its last page (a page is at most 65,307 bytes).
OGG_TAIL_BYTES = 65_536 + 512


@dataclass(frozen=True)
class AudioHeader:
    """What an audio file's header says."""

    seconds: float | None
    #: False when ``seconds`` is an estimate from the bitrate (a variable bitrate makes it approximate).
    exact: bool = True
    sample_rate: int | None = None
    channels: int | None = None
    #: For containers that may also hold video (Ogg, ASF): the codecs found, e.g. ("opus",) or ("theora", "vorbis").
    codecs: tuple[str, ...] = ()
    has_video: bool = False


# --- WAV (RIFF/WAVE, RF64) -------------------------------------------------------------------------


def wav(reader: RangeReader, uri: str) -> AudioHeader:
    head = reader.read(0, 12)
    rf64 = head[:4] == b"RF64"
    offset = 12
    byte_rate = rate = channels = None
    data_size64 = None
    for _ in range(MAX_CHUNKS):
        header = reader.read(offset, 8, ahead=4096)
        if len(header) < 8:
            break
        chunk, size = header[:4], struct.unpack("<I", header[4:8])[0]
        body = offset + 8
        if chunk == b"ds64":
            ds = reader.read(body, 16)
            if len(ds) == 16:
                data_size64 = struct.unpack("<Q", ds[8:16])[0]
        elif chunk == b"fmt ":
            fmt = reader.read(body, 16)
            if len(fmt) < 16:
                break
            _, channels, rate, byte_rate = struct.unpack("<HHII", fmt[:12])
        elif chunk == b"data":
            if not byte_rate:
                raise UndecodableMediaError(uri, "WAV without a valid 'fmt ' chunk before its audio data")
            available = reader.size - body
            if rf64 and size == 0xFFFFFFFF and data_size64 is not None:
                size = data_size64
            if size in (0, 0xFFFFFFFF):  # a streaming writer never came back to fill it in
                size = available
            elif size > available:
                raise UndecodableMediaError(
                    uri,
                    f"truncated WAV: its data chunk declares {size} bytes, the object ends after {available}",
                )
            return AudioHeader(size / byte_rate, True, rate, channels)
        offset = body + size + (size & 1)
        if offset >= reader.size:
            break
    raise UndecodableMediaError(uri, "WAV without an audio 'data' chunk (truncated or not a WAV file)")


# --- AIFF / AIFF-C ---------------------------------------------------------------------------------


def _extended(raw: bytes) -> float:
    """An 80-bit IEEE 754 extended float (AIFF's sample rate)."""
    exponent, mantissa = struct.unpack(">HQ", raw)
    sign = -1 if exponent & 0x8000 else 1
    exponent &= 0x7FFF
    if exponent == 0 and mantissa == 0:
        return 0.0
    return sign * mantissa * 2.0 ** (exponent - 16383 - 63)


def aiff(reader: RangeReader, uri: str) -> AudioHeader:
    offset = 12
    frames = rate = channels = None
    sound_seen = False
    for _ in range(MAX_CHUNKS):
        header = reader.read(offset, 8, ahead=4096)
        if len(header) < 8:
            break
        chunk, size = header[:4], struct.unpack(">I", header[4:8])[0]
        body = offset + 8
        if chunk == b"COMM":
            comm = reader.read(body, 18)
            if len(comm) < 18:
                break
            channels, frames = struct.unpack(">hI", comm[:6])
            rate = _extended(comm[8:18])
        elif chunk == b"SSND":
            sound_seen = True
            if body + size > reader.size:
                raise UndecodableMediaError(
                    uri,
                    f"truncated AIFF: its SSND chunk declares {size} bytes, the object ends after {reader.size - body}",
                )
        offset = body + size + (size & 1)
        if offset >= reader.size or (frames is not None and sound_seen):
            break
    if frames is None or not rate or rate <= 0:
        raise UndecodableMediaError(uri, "AIFF without a valid COMM chunk (truncated or not an AIFF file)")
    if not sound_seen and frames:
        raise UndecodableMediaError(uri, "AIFF without its SSND sound chunk (truncated)")
    return AudioHeader(frames / rate, True, round(rate), channels)


# --- FLAC ------------------------------------------------------------------------------------------


def flac(reader: RangeReader, uri: str, start: int = 0) -> AudioHeader:
    block = reader.read(start + 4, 4 + 34)
    if len(block) < 38 or block[0] & 0x7F != 0:
        raise UndecodableMediaError(uri, "FLAC without its STREAMINFO block (truncated or not a FLAC file)")
    info = block[4:]
    packed = int.from_bytes(info[10:18], "big")
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    total = packed & 0xFFFFFFFFF
    if not rate:
        raise UndecodableMediaError(uri, "FLAC STREAMINFO with a sample rate of 0")
    return AudioHeader(total / rate if total else None, True, rate, channels)


# --- MPEG audio (MP3) and ADTS (AAC) ---------------------------------------------------------------

_MP3_BITRATES = {
    (3, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),  # MPEG-1 layer I
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),  # MPEG-1 layer II
    (3, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 layer III
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),  # MPEG-2/2.5 layer I
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2/2.5 layer II, III
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class MpegFrame:
    version: int  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    layer: int  # 1, 2 or 3
    bitrate: int  # bits per second
    sample_rate: int
    channels: int
    length: int  # bytes
    samples: int  # per frame


def mpeg_frame(h: bytes) -> MpegFrame | None:
    """The MPEG audio frame header at the start of ``h``; None when these 4 bytes are not one."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    bitrate_index, rate_index, padding = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    table = _MP3_BITRATES[(3, layer)] if version == 3 else _MP3_BITRATES[(2, min(layer, 2))]
    bitrate = table[bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    if layer == 1:
        samples, length = 384, (12 * bitrate // rate + padding) * 4
    else:
        samples = 1152 if (layer == 2 or version == 3) else 576
        length = samples // 8 * bitrate // rate + padding
    channels = 1 if h[3] >> 6 == 3 else 2
    return MpegFrame(version, layer, bitrate, rate, channels, length, samples)


def find_mpeg_frames(data: bytes, limit: int = 2048) -> int | None:
    """Offset of the first of two consecutive MPEG audio frames within the first ``limit`` bytes."""
    for i in range(min(limit, max(0, len(data) - 4))):
        if data[i] != 0xFF:
            continue
        frame = mpeg_frame(data[i : i + 4])
        if frame and frame.length > 4 and mpeg_frame(data[i + frame.length : i + frame.length + 4]):
            return i
    return None


def mp3(reader: RangeReader, uri: str, start: int = 0) -> AudioHeader:
    data = reader.read(start, 4096)
    at = find_mpeg_frames(data)
    if at is None:
        raise UndecodableMediaError(uri, "no MPEG audio frames at the start of the file (not an MP3 file)")
    frame = mpeg_frame(data[at : at + 4])
    assert frame is not None
    # A Xing/Info or VBRI header in the first frame states the number of frames: the exact length.
    side = (32 if frame.channels == 2 else 17) if frame.version == 3 else (17 if frame.channels == 2 else 9)
    xing = data[at + 4 + side : at + 4 + side + 12]
    frames = None
    if xing[:4] in (b"Xing", b"Info") and len(xing) == 12 and struct.unpack(">I", xing[4:8])[0] & 1:
        frames = struct.unpack(">I", xing[8:12])[0]
    vbri = data[at + 36 : at + 36 + 18]
    if vbri[:4] == b"VBRI" and len(vbri) == 18:
        frames = struct.unpack(">I", vbri[14:18])[0]
    if frames:
        return AudioHeader(frames * frame.samples / frame.sample_rate, True, frame.sample_rate, frame.channels)
    audio_bytes = reader.size - start - at
    return AudioHeader(audio_bytes * 8 / frame.bitrate, False, frame.sample_rate, frame.channels)


_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def adts_frame(h: bytes) -> tuple[int, int, int, int] | None:
    """``(frame length, sample rate, channels, samples)`` of the ADTS header at the start of ``h``."""
    if len(h) < 7 or h[0] != 0xFF or h[1] & 0xF6 != 0xF0:
        return None
    rate_index = (h[2] >> 2) & 0xF
    if rate_index >= len(_ADTS_RATES):
        return None
    channels = ((h[2] & 1) << 2) | (h[3] >> 6)
    length = ((h[3] & 3) << 11) | (h[4] << 3) | (h[5] >> 5)
    if length < 7:
        return None
    return length, _ADTS_RATES[rate_index], channels, 1024 * ((h[6] & 3) + 1)


def is_adts(data: bytes) -> bool:
    first = adts_frame(data)
    return bool(first) and adts_frame(data[first[0] : first[0] + 7]) is not None


def adts(reader: RangeReader, uri: str, start: int = 0) -> AudioHeader:
    data = reader.read(start, 16384)
    offset, frames, byte_count, rate, channels, samples = 0, 0, 0, 0, 0, 0
    while offset + 7 <= len(data):
        frame = adts_frame(data[offset : offset + 7])
        if frame is None:
            break
        length, rate, channels, samples = frame
        if offset + length > len(data):
            break
        frames, byte_count, offset = frames + 1, byte_count + length, offset + length
    if not frames:
        raise UndecodableMediaError(uri, "no ADTS frames at the start of the file (not an AAC file)")
    seconds = (reader.size - start) / (byte_count / frames) * samples / rate
    return AudioHeader(seconds, False, rate, channels)


# --- AMR -------------------------------------------------------------------------------------------

#: Bytes per frame (header byte included) by frame type; 20 ms each. Types 9-14 are unused.
_AMR_NB = {0: 13, 1: 14, 2: 16, 3: 18, 4: 20, 5: 21, 6: 27, 7: 32, 8: 6, 15: 1}
_AMR_WB = {0: 18, 1: 24, 2: 33, 3: 37, 4: 41, 5: 47, 6: 51, 7: 59, 8: 61, 9: 6, 15: 1}
AMR_MAGIC_NB, AMR_MAGIC_WB = b"#!AMR\n", b"#!AMR-WB\n"


def amr(reader: RangeReader, uri: str) -> AudioHeader:
    head = reader.read(0, 64)
    wide = head.startswith(AMR_MAGIC_WB)
    start = len(AMR_MAGIC_WB if wide else AMR_MAGIC_NB)
    sizes = _AMR_WB if wide else _AMR_NB
    if len(head) <= start:
        raise UndecodableMediaError(uri, "AMR file with no audio frames (empty or truncated)")
    frame_type = (head[start] >> 3) & 0xF
    if frame_type not in sizes:
        raise UndecodableMediaError(uri, f"AMR frame of unknown type {frame_type} (corrupt)")
    frames = (reader.size - start) / sizes[frame_type]
    return AudioHeader(frames * 0.02, False, 16000 if wide else 8000, 1)


# --- AC-3 ------------------------------------------------------------------------------------------

_AC3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640)


def ac3(reader: RangeReader, uri: str) -> AudioHeader:
    head = reader.read(0, 8)
    if len(head) < 6 or head[:2] != b"\x0b\x77":
        raise UndecodableMediaError(uri, "no AC-3 sync word at the start (not an AC-3 file)")
    rate_code, size_code = head[4] >> 6, head[4] & 0x3F
    if rate_code == 3 or size_code >> 1 >= len(_AC3_KBPS):
        raise UndecodableMediaError(uri, "AC-3 frame header with a reserved rate or size (corrupt)")
    bitrate = _AC3_KBPS[size_code >> 1] * 1000
    return AudioHeader(reader.size * 8 / bitrate, False, (48000, 44100, 32000)[rate_code], None)


def ac3_bsid(head: bytes) -> int:
    """The bitstream id: <= 8 AC-3, 11..16 E-AC-3."""
    return head[5] >> 3 if len(head) > 5 else 0


# --- Ogg (Opus, Vorbis, FLAC, Speex; Theora/VP8 video) --------------------------------------------

_OGG_CODECS = (
    (b"OpusHead", "opus"),
    (b"\x01vorbis", "vorbis"),
    (b"\x7fFLAC", "flac"),
    (b"Speex   ", "speex"),
    (b"\x80theora", "theora"),
    (b"OVP80", "vp8"),
    (b"\x80kate", "kate"),
    (b"fishead\0", "skeleton"),
)
OGG_VIDEO_CODECS = frozenset({"theora", "vp8", "dirac"})
OGG_AUDIO_CODECS = frozenset({"opus", "vorbis", "flac", "speex"})


def _ogg_page(data: bytes, at: int) -> tuple[int, int, int, int, int] | None:
    """``(header type, granule, serial, body offset, body length)`` of the page at ``at``."""
    if data[at : at + 4] != b"OggS" or at + 27 > len(data):
        return None
    header_type, granule, serial = data[at + 5], *struct.unpack("<qI", data[at + 6 : at + 18])
    segments = data[at + 26]
    if at + 27 + segments > len(data):
        return None
    body_length = sum(data[at + 27 : at + 27 + segments])
    return header_type, granule, serial, at + 27 + segments, body_length


def ogg(reader: RangeReader, uri: str) -> AudioHeader:
    data = reader.read(0, 4096)
    # Beginning-of-stream pages of every logical stream come first (RFC 3533).
    streams: dict[int, tuple[str, int, int]] = {}  # serial -> (codec, rate, pre-skip)
    at = 0
    while (page := _ogg_page(data, at)) is not None:
        header_type, _, serial, body, length = page
        if not header_type & 2:
            break
        packet = data[body : body + max(length, 64)]
        codec = next((name for magic, name in _OGG_CODECS if packet.startswith(magic)), "unknown")
        rate, pre_skip = 0, 0
        if codec == "opus" and len(packet) >= 16:
            pre_skip = struct.unpack("<H", packet[10:12])[0]
            rate = 48000  # Opus granule positions always count 48 kHz samples
        elif codec == "vorbis" and len(packet) >= 16:
            rate = struct.unpack("<I", packet[12:16])[0]
        elif codec == "flac" and len(packet) >= 9 + 4 + 4 + 18:
            rate = int.from_bytes(packet[9 + 8 + 10 : 9 + 8 + 13], "big") >> 4
        elif codec == "speex" and len(packet) >= 40:
            rate = struct.unpack("<I", packet[36:40])[0]
        streams[serial] = (codec, rate, pre_skip)
        at = body + length
    if not streams:
        raise UndecodableMediaError(uri, "Ogg file without a beginning-of-stream page (truncated or corrupt)")
    codecs = tuple(codec for codec, _, _ in streams.values())
    has_video = any(codec in OGG_VIDEO_CODECS for codec in codecs)
    audio = [(serial, s) for serial, s in streams.items() if s[0] in OGG_AUDIO_CODECS]
    if has_video or not audio:
        return AudioHeader(None, False, codecs=codecs, has_video=has_video)
    serial, (codec, rate, pre_skip) = audio[0]
    tail_start = max(0, reader.size - OGG_TAIL_BYTES)
    tail = reader.read(tail_start, reader.size - tail_start)
    granule = None
    at = tail.rfind(b"OggS")
    while at >= 0:
        page = _ogg_page(tail, at)
        if page is not None and page[2] == serial and page[1] >= 0:
            granule = page[1]
            break
        at = tail.rfind(b"OggS", 0, at)
    seconds = (granule - pre_skip) / rate if granule is not None and rate else None
    return AudioHeader(max(seconds, 0.0) if seconds is not None else None, True, rate or None, None, codecs)


# --- ASF (WMA / WMV) -------------------------------------------------------------------------------

ASF_HEADER = uuid.UUID("75B22630-668E-11CF-A6D9-00AA0062CE6C").bytes_le
_ASF_FILE_PROPERTIES = uuid.UUID("8CABDCA1-A947-11CF-8EE4-00C00C205365").bytes_le
_ASF_STREAM_PROPERTIES = uuid.UUID("B7DC0791-A9B7-11CF-8EE6-00C00C205365").bytes_le
_ASF_AUDIO = uuid.UUID("F8699E40-5B4D-11CF-A8FD-00805F5C442B").bytes_le
_ASF_VIDEO = uuid.UUID("BC19EFC0-5B4D-11CF-A8FD-00805F5C442B").bytes_le
#: Largest ASF header read (codec lists and metadata live there; the media does not).
MAX_ASF_HEADER_BYTES = 1 << 20


def asf(reader: RangeReader, uri: str) -> AudioHeader:
    head = reader.read(0, 30)
    if len(head) < 30 or head[:16] != ASF_HEADER:
        raise UndecodableMediaError(uri, "no ASF header object (not a WMA/WMV file)")
    header_size, count = struct.unpack("<QI", head[16:28])
    if header_size > reader.size:
        raise UndecodableMediaError(uri, "truncated ASF: the header runs past the end of the object")
    header = reader.read(0, min(header_size, MAX_ASF_HEADER_BYTES))
    offset, seconds, kinds = 30, None, []
    for _ in range(min(count, MAX_CHUNKS)):
        if offset + 24 > len(header):
            break
        guid, size = header[offset : offset + 16], struct.unpack("<Q", header[offset + 16 : offset + 24])[0]
        if size < 24:
            break
        if guid == _ASF_FILE_PROPERTIES and offset + 88 <= len(header):
            play, _, preroll = struct.unpack("<QQQ", header[offset + 64 : offset + 88])
            seconds = max(play / 1e7 - preroll / 1000, 0.0) if play else None
        elif guid == _ASF_STREAM_PROPERTIES:
            stream_type = header[offset + 24 : offset + 40]
            kinds.append("audio" if stream_type == _ASF_AUDIO else "video" if stream_type == _ASF_VIDEO else "other")
        offset += size
    if not kinds:
        raise UndecodableMediaError(uri, "ASF header without stream properties (corrupt)")
    return AudioHeader(seconds, True, codecs=tuple(kinds), has_video="video" in kinds)


# --- ID3v2 -----------------------------------------------------------------------------------------


def id3_end(head: bytes) -> int:
    """Offset after an ID3v2 tag at the start of ``head`` (0 when there is none)."""
    if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
        return 0
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    return 10 + size + (10 if head[5] & 0x10 else 0)
