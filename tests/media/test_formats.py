"""Media by content: every shape the issue names, sniffed from real files made with ffmpeg (no servers)."""

from __future__ import annotations

import struct

import pytest

from symbl_airflow.media.errors import UndecodableMediaError
from symbl_airflow.media.formats import AUDIO, CONVERT, IGNORE, VIDEO, inspect
from symbl_airflow.media.reader import bytes_reader, file_reader

pytestmark = pytest.mark.unit

# name -> (format, route, Content-Type, exact length)
EXPECTED = {
    "mp4_av": ("mp4", VIDEO, "video/mp4", True),
    "mp4_video_only": ("mp4", VIDEO, "video/mp4", True),
    "mov_h264": ("mov", VIDEO, "video/mp4", True),
    "m4a": ("m4a", AUDIO, None, True),
    "wav": ("wav", AUDIO, "audio/wav", True),
    "mp3": ("mp3", AUDIO, "audio/mpeg", True),
    "mp3_no_xing": ("mp3", AUDIO, "audio/mpeg", False),
    "flac": ("flac", AUDIO, None, True),
    "ogg": ("ogg", AUDIO, None, True),
    "opus": ("opus", AUDIO, None, True),
    "aac": ("aac", AUDIO, None, False),
    "amr": ("amr", AUDIO, None, False),
    "aiff": ("aiff", AUDIO, None, True),
    "ac3": ("ac3", AUDIO, None, False),
    "wma": ("wma", AUDIO, None, True),
    "webm": ("webm", CONVERT, None, True),
    "webm_video_only": ("webm", CONVERT, None, True),
    "webm_audio_only": ("webm", CONVERT, None, True),
    "mkv": ("mkv", CONVERT, None, True),
    "avi": ("avi", CONVERT, None, True),
    "avi_mjpeg": ("avi", CONVERT, None, True),
    "mov_prores": ("mov", CONVERT, None, True),
    "ts": ("ts", CONVERT, None, True),
    "ogv": ("ogv", CONVERT, None, True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_shape_by_content(media_files, name):
    path = media_files(name)
    reader = file_reader(path)
    facts = inspect(reader, f"meeting/{path.name}", f"s3://b/meeting/{path.name}")
    fmt, route, content_type, exact = EXPECTED[name]
    assert (facts.format, facts.route, facts.content_type, facts.seconds_exact) == (fmt, route, content_type, exact)
    if route != CONVERT or facts.seconds is not None:
        # estimates from the bitrate stay within a few percent for these constant-bitrate files
        assert facts.seconds == pytest.approx(6.0, rel=0.03)
    assert facts.endpoint == (route if route != CONVERT else None)
    # a few reads of the headers, never the media
    assert len(reader.requests) <= 3
    assert sum(n for _, n in reader.requests) <= 3 * 65_536 + 8192


def test_the_extension_does_not_decide(media_files):
    """Content first: a WAV named .mp3, an MP4 named .bin, a WebM named .mp4."""
    for name, key, route in (("wav", "x.mp3", AUDIO), ("mp4_av", "x.bin", VIDEO), ("webm", "x.mp4", CONVERT)):
        facts = inspect(file_reader(media_files(name)), key, f"s3://b/{key}")
        assert facts.route == route, (name, key)


def test_video_only_mp4_says_it_has_no_audio(media_files):
    facts = inspect(file_reader(media_files("mp4_video_only")), "v.mp4", "s3://b/v.mp4")
    assert facts.tracks == ("video",) and facts.has_audio is False
    facts = inspect(file_reader(media_files("mp4_av")), "v.mp4", "s3://b/v.mp4")
    assert facts.has_audio is True


@pytest.mark.parametrize(
    "key, data, what",
    [
        ("notes.txt", b"Agenda\n- budget\n- hiring\n", "text"),
        ("captions.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n", "captions"),
        ("meta.json", b'{"meeting": "standup"}', "JSON"),
        ("thumb.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100), "JPEG image"),
        ("slide.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
        ("deck.pdf", b"%PDF-1.7\n" + bytes(100), "PDF document"),
        ("blob.bin", bytes(range(256)) * 4, "unrecognised binary content (.bin)"),
        ("empty.txt", b"", "empty object"),
        ("README", "Ünïcödé notes".encode(), "text"),
    ],
)
def test_non_media_is_not_a_part(key, data, what):
    facts = inspect(bytes_reader(data), key, f"s3://b/{key}")
    assert facts.route == IGNORE and not facts.is_media and facts.endpoint is None
    assert what in facts.reason


def test_heif_still_image_is_not_media():
    ftyp = struct.pack(">I4s", 24, b"ftyp") + b"heic" + bytes(4) + b"mif1heic"
    facts = inspect(bytes_reader(ftyp + bytes(64)), "photo.heic", "s3://b/photo.heic")
    assert facts.route == IGNORE and "heic" in facts.reason


@pytest.mark.parametrize(
    "key, data, reason",
    [
        ("part-2.mp4", b"<html>404 Not Found</html>", "named .mp4 but it holds a markup"),
        ("part-2.wav", bytes(range(256)) * 8, "named .wav but its first bytes match no audio or video format"),
        ("part-2.m4a", b"", "the object is empty"),
    ],
)
def test_media_names_with_other_content_are_undecodable(key, data, reason):
    uri = f"s3://b/{key}"
    with pytest.raises(UndecodableMediaError) as err:
        inspect(bytes_reader(data), key, uri)
    message = str(err.value)
    assert reason in message and uri in message
    assert f"python -m symbl_airflow.ledger leave-out <ledger> --part {uri}" in message


def _cut(data: bytes, keep: int) -> bytes:
    return data[:keep]


@pytest.mark.parametrize(
    "name, keep, reason",
    [
        ("wav", 5000, "truncated WAV: its data chunk declares"),
        ("aiff", 5000, "truncated AIFF"),
        ("flac", 20, "FLAC without its STREAMINFO block"),
        ("mp4_av", 3000, "truncated or not a finished MP4"),
        ("wav", 30, "WAV without"),
        ("wma", 100, "truncated ASF"),
    ],
)
def test_truncated_files_are_undecodable_naming_the_object(media_files, name, keep, reason):
    data = _cut(media_files.bytes(name), keep)
    uri = f"s3://b/m/{name}"
    with pytest.raises(UndecodableMediaError) as err:
        inspect(bytes_reader(data), f"m/{name}", uri)
    assert reason in str(err.value)
    assert uri in str(err.value)


def test_streaming_wav_with_unset_sizes_uses_the_object_size(media_files):
    data = bytearray(media_files.bytes("wav"))
    at = data.index(b"data")
    data[at + 4 : at + 8] = b"\xff\xff\xff\xff"  # a recorder that never came back to write the size
    facts = inspect(bytes_reader(bytes(data)), "w.wav", "s3://b/w.wav")
    assert facts.seconds == pytest.approx(6.0, abs=0.01)


def test_mp3_behind_a_large_id3_tag(media_files):
    """Cover art in an ID3 tag: the frames after it are found with one more ranged read."""
    mp3 = media_files.bytes("mp3")
    art = bytes(200_000)
    frame = b"APIC" + struct.pack(">I", len(art)) + b"\0\0" + art
    syncsafe = bytes([(len(frame) >> s) & 0x7F for s in (21, 14, 7, 0)])
    tag = b"ID3\x03\x00\x00" + syncsafe + frame
    start = mp3.index(b"\xff\xfb") if mp3.startswith(b"ID3") else 0
    reader = bytes_reader(tag + mp3[start:])
    facts = inspect(reader, "a.mp3", "s3://b/a.mp3")
    assert (facts.format, facts.route) == ("mp3", AUDIO)
    assert facts.seconds == pytest.approx(6.0, rel=0.03)
    assert len(reader.requests) <= 3


def test_quicktime_without_ftyp_is_converted(media_files):
    """A pre-2001 QuickTime layout (no ftyp): same boxes, Symbl's MP4 check would refuse it."""
    data = bytearray(media_files.bytes("mov_h264"))
    data[4:8] = b"free"  # the ftyp box becomes padding: offsets stay valid
    facts = inspect(bytes_reader(bytes(data)), "old.mov", "s3://b/old.mov")
    assert facts.route == CONVERT and "without an 'ftyp' box" in facts.reason


def test_prores_quicktime_names_its_codecs(media_files):
    facts = inspect(file_reader(media_files("mov_prores")), "p.mov", "s3://b/p.mov")
    assert facts.route == CONVERT
    assert "video: apco" in facts.reason and "audio: sowt" in facts.reason


def test_adts_and_mp3_signatures_are_told_apart(media_files):
    for name in ("aac", "mp3_no_xing"):
        data = media_files.bytes(name)
        facts = inspect(bytes_reader(data), "noext", "s3://b/noext")
        assert facts.format == ("aac" if name == "aac" else "mp3")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_first_64_bytes_point_the_same_way(media_files, name):
    """The registry's cheap sniff agrees with the full inspection (ftyp: the MP4 member decides)."""
    from symbl_airflow.media.formats import signature_route

    head = media_files.bytes(name)[:64]
    route = EXPECTED[name][1]
    expected = {
        "m4a": VIDEO, "mov_prores": VIDEO,  # ISO-BMFF: the MP4 member looks further
        "ogv": AUDIO,  # Ogg: audio unless its streams say video (inspect routes it to conversion)
        "ts": None,  # a transport stream needs 3 packets (377 bytes) to be told apart: inspect does it
    }.get(name, route)  # fmt: skip
    assert signature_route(head) == expected


def test_text_has_no_media_signature():
    from symbl_airflow.media.formats import signature_route

    for head in (b"WEBVTT\n\n", b'{"a": 1}', b"\xff\xd8\xff\xe0", b"hello world" * 8):
        assert signature_route(head) is None
