"""Uploads are streamed: the sandbox's memory stays flat for a big body, chunked or with Content-Length."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from symbl_sandbox import samples
from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration

MiB = 1 << 20


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class PaddedBody:
    """A file-like body with a length (so requests sends Content-Length) that never exists in memory."""

    def __init__(self, total: int):
        self._chunks = samples.padded_mp4_chunks(total, 256 * 1024)
        self._buf = b""
        self.total = total

    def __len__(self) -> int:
        return self.total

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        out, self._buf = (self._buf, b"") if size < 0 else (self._buf[:size], self._buf[size:])
        return out


def _expected_sha(total: int) -> str:
    h = hashlib.sha256()
    for chunk in samples.padded_mp4_chunks(total):
        h.update(chunk)
    return h.hexdigest()


@pytest.mark.timeout(240)
def test_300_mib_chunked_upload_keeps_memory_flat(spawn):
    server = spawn(speed=0.01, min_job_seconds=0.2)
    api = Api(server)
    total = 300 * MiB
    base = rss_kib(server.pid)
    peak = base
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_kib(server.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        resp = api.submit(samples.padded_mp4_chunks(total))  # a generator: chunked transfer encoding
        assert resp.status_code == 201, resp.text
        statuses = api.wait(resp.json()["jobId"], timeout=60)
    finally:
        stop.set()
        sampler.join()
    growth_mib = (peak - base) / 1024
    print(f"sandbox RSS: base {base / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, growth {growth_mib:.1f} MiB")
    assert growth_mib < 64, growth_mib
    # a header plus zero padding has no 'moov' box: like real Symbl, the sandbox cannot decode it, and the
    # job fails cleanly (no crash, no invented transcript)
    assert statuses[-1] == "failed"
    entry = server.ledger()[0]
    assert entry["size"] == total and entry["sha256"] == _expected_sha(total)
    assert api.conversation(entry["conversationId"], "/messages").json()["messages"] == []
    # the spooled file is deleted after processing
    assert list((server.log_path.parent / "data" / "spool").iterdir()) == []


def test_content_length_upload_and_rejection_before_body(spawn):
    server = spawn(speed=0.0, min_job_seconds=0.2)
    api = Api(server)
    total = 48 * MiB
    resp = api.submit(PaddedBody(total))
    assert resp.status_code == 201, resp.text
    assert server.ledger()[0]["size"] == total
    # a rejected upload (unknown conversation) is drained and never stored
    rejected = api.submit(PaddedBody(total), "9999999999999999")
    assert rejected.status_code == 404
    assert len(server.ledger()) == 1
    api.wait(resp.json()["jobId"])
    assert list((server.log_path.parent / "data" / "spool").iterdir()) == []
