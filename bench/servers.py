"""Two tiny local servers that take the emulators out of the upload figures.

* ``range-s3``: one in-memory object behind just enough of the S3 REST API for boto3's
  ``head_bucket`` / ``head_object`` / ``get_object`` (path-style), honouring ``Range`` and
  ``If-Match`` like S3 does: a 64-byte ranged GET costs 64 bytes, not the whole object (moto copies it).
* ``sink``: Symbl's token endpoint and a discarding ``POST``/``PUT`` endpoint that reads the whole body
  (``Content-Length``) into one reused buffer and answers 201 with ids, as Symbl does.

Each runs in its own process (``python -m bench.servers range-s3|sink --port-file F``): blocking
sockets, one thread per connection, ``sendall`` of memoryview slices and ``recv_into`` one buffer,
so neither server copies more than the kernel does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
import threading
from email.utils import formatdate
from pathlib import Path

RECV_BUFFER = 1 << 20


def _read_head(rfile) -> tuple[str, str, dict[str, str]] | None:
    line = rfile.readline(65536)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = rfile.readline(65536)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _answer(sock, status: str, headers: dict[str, str], body: bytes = b"") -> None:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    if "Content-Length" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def serve(handler, port_file: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    port_file.write_text(str(listener.getsockname()[1]))
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_connection, args=(handler, conn), daemon=True).start()


def _connection(handler, conn: socket.socket) -> None:
    rfile = conn.makefile("rb", buffering=RECV_BUFFER)
    try:
        while True:
            head = _read_head(rfile)
            if head is None:
                return
            handler(conn, rfile, *head)
    except (ConnectionError, OSError):
        return
    finally:
        rfile.close()
        conn.close()


# ------------------------------------------------------------------------------------------- range S3
class RangeS3:
    def __init__(self, bucket: str, key: str, data: bytes) -> None:
        self.bucket, self.key, self.data = bucket, key, memoryview(data)
        self.etag = hashlib.md5(data[: 1 << 20]).hexdigest()  # an ETag, not security
        self.modified = formatdate(usegmt=True)

    def __call__(self, sock, rfile, method: str, target: str, headers: dict[str, str]) -> None:
        path = target.split("?", 1)[0]
        length = int(headers.get("content-length") or 0)
        if length:
            rfile.read(length)
        if path.rstrip("/") == f"/{self.bucket}":
            _answer(sock, "200 OK", {"x-amz-bucket-region": "us-east-1"})
            return
        if path != f"/{self.bucket}/{self.key}":
            body = b"<Error><Code>NoSuchKey</Code></Error>"
            _answer(sock, "404 Not Found", {"Content-Type": "application/xml"}, b"" if method == "HEAD" else body)
            return
        if headers.get("if-match", f'"{self.etag}"').strip('"') != self.etag:
            _answer(sock, "412 Precondition Failed", {"Content-Type": "application/xml"}, b"")
            return
        size = len(self.data)
        start, end = 0, size - 1
        status = "200 OK"
        common = {
            "ETag": f'"{self.etag}"',
            "Last-Modified": self.modified,
            "Content-Type": "video/mp4",
            "Accept-Ranges": "bytes",
        }
        spec = headers.get("range", "")
        if method == "GET" and spec.startswith("bytes="):
            first, _, last = spec[6:].partition("-")
            start = int(first)
            end = min(size - 1, int(last)) if last else size - 1
            status = "206 Partial Content"
            common["Content-Range"] = f"bytes {start}-{end}/{size}"
        common["Content-Length"] = str(end - start + 1 if method == "GET" else size)
        _answer(sock, status, common)
        if method == "GET":
            sock.sendall(self.data[start : end + 1])


# ------------------------------------------------------------------------------------------- sink
class Sink:
    def __init__(self) -> None:
        self.buffer = bytearray(RECV_BUFFER)
        self.jobs = 0

    def __call__(self, sock, rfile, method: str, target: str, headers: dict[str, str]) -> None:
        remaining = int(headers.get("content-length") or 0)
        view = memoryview(self.buffer)
        received = 0
        while remaining:
            n = rfile.readinto(view[: min(remaining, RECV_BUFFER)])
            if not n:
                return
            remaining -= n
            received += n
        if target.startswith("/oauth2/token"):
            body = {"accessToken": "bench-token", "expiresIn": 86400}
            status = "200 OK"
        else:
            self.jobs += 1
            body = {"conversationId": "bench-conversation", "jobId": f"bench-job-{self.jobs}", "received": received}
            status = "201 Created"
        _answer(sock, status, {"Content-Type": "application/json"}, json.dumps(body).encode())


def mp4_object(size: int) -> bytes:
    """A valid MP4 of exactly ``size`` bytes: a real sample (ftyp, moov, mdat), then a ``free`` box."""
    import tempfile

    from symbl_sandbox.samples import make_mp4

    with tempfile.TemporaryDirectory() as tmp:
        head = make_mp4(Path(tmp) / "head.mp4", [("Alice", "Benchmark upload."), ("Bob", "Padding follows.")])
        sample = head.read_bytes()
    pad = size - len(sample)
    if pad < 16:
        raise ValueError(f"size must be at least {len(sample) + 16} bytes")
    free = (1).to_bytes(4, "big") + b"free" + pad.to_bytes(8, "big")  # 64-bit largesize header
    out = bytearray(size)
    out[: len(sample)] = sample
    out[len(sample) : len(sample) + 16] = free
    return bytes(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=("range-s3", "sink"))
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--bucket", default="bench")
    parser.add_argument("--key", default="video.mp4")
    args = parser.parse_args(argv)
    if args.kind == "range-s3":
        handler = RangeS3(args.bucket, args.key, mp4_object(args.size_mib << 20))
    else:
        handler = Sink()
    serve(handler, args.port_file)


if __name__ == "__main__":
    sys.exit(main())
