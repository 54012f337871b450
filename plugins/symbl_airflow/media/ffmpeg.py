"""The ffmpeg binary, bounded local work directories, and running ffmpeg so that nothing is left behind.

ffmpeg comes from ``imageio-ffmpeg`` (a static build in the wheel), probing from PyAV: both are the
``media`` extra. Work directories are named ``symbl-media-<pid>-*``: a task killed with SIGKILL cannot
clean up, so the next conversion on the machine removes directories whose process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from symbl_airflow.media.errors import MediaError, MediaExtraMissing

log = logging.getLogger(__name__)

#: Environment variable naming the directory for conversion work files (default: the system temp dir).
TMPDIR_ENV = "SYMBL_MEDIA_TMPDIR"
WORKDIR_PREFIX = "symbl-media-"
#: Bytes copied at a time from S3 to disk and from disk to Symbl.
COPY_CHUNK = 1 << 20
#: Stale work directories younger than this are left alone (their process may be starting up).
STALE_AFTER_SECONDS = 60
#: Last bytes of ffmpeg's error output kept for the message.
STDERR_TAIL = 2000


def ffmpeg_exe(uri: str, what: str) -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MediaExtraMissing(uri, what, "ffmpeg (the imageio-ffmpeg package)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def require_av(uri: str, what: str):
    try:
        import av
    except ImportError:
        raise MediaExtraMissing(uri, what, "PyAV (the av package)") from None
    return av


def base_dir(tmp_dir: str | os.PathLike[str] | None = None) -> Path:
    return Path(tmp_dir or os.environ.get(TMPDIR_ENV) or tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(base: Path) -> list[Path]:
    """Remove work directories left by processes that no longer exist (killed tasks)."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            if not entry.name.startswith(WORKDIR_PREFIX) or not entry.is_dir():
                continue
            pid_text = entry.name[len(WORKDIR_PREFIX) :].split("-", 1)[0]
            if not pid_text.isdigit() or _alive(int(pid_text)):
                continue
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime < STALE_AFTER_SECONDS:
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
                log.info("Removed %s, left by a process that no longer runs", entry)
    return removed


@contextlib.contextmanager
def workdir(tmp_dir: str | os.PathLike[str] | None = None, *, need_bytes: int = 0, uri: str = "") -> Iterator[Path]:
    """A fresh directory for one object's work files, removed on exit (also on errors and task kills)."""
    base = base_dir(tmp_dir)
    base.mkdir(parents=True, exist_ok=True)
    sweep_stale(base)
    free = shutil.disk_usage(base).free
    if need_bytes and free < need_bytes:
        raise MediaError(
            f"source {uri!r}: converting it needs about {need_bytes / 1048576:,.0f} MiB of local disk, "
            f"{free / 1048576:,.0f} MiB are free in {base}; point {TMPDIR_ENV} at a larger disk"
        )
    path = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def spool(open_body: Callable[[], BinaryIO], dest: Path, expected: int, uri: str) -> Path:
    """Copy a streamed body to ``dest`` in chunks (never whole in memory); check its length."""
    body = open_body()
    try:
        with open(dest, "wb") as out:
            shutil.copyfileobj(body, out, COPY_CHUNK)
    finally:
        close = getattr(body, "close", None)
        if close:
            close()
    got = dest.stat().st_size
    if got != expected:
        raise MediaError(f"source {uri!r}: read {got} bytes from S3, expected {expected}; rerun the task")
    return dest


class FfmpegError(MediaError):
    def __init__(self, message: str, stderr: str):
        self.stderr = stderr
        super().__init__(message)


def run(args: Sequence[str], *, uri: str, what: str, log_dir: Path, timeout: float | None = None) -> None:
    """Run ffmpeg (``-nostdin``, errors only); kill its process group if this task is stopped meanwhile."""
    exe = ffmpeg_exe(uri, what)
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    err_path = log_dir / "ffmpeg-stderr.txt"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
        try:
            code = proc.wait(timeout=timeout)
        except BaseException:  # a timeout, or the task being stopped (SIGTERM raises in the main thread)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if code != 0:
        with open(err_path, "rb") as fh:
            fh.seek(max(0, err_path.stat().st_size - STDERR_TAIL))
            tail = fh.read().decode("utf-8", errors="replace").strip()
        raise FfmpegError(f"source {uri!r}: {what} failed (ffmpeg exit {code}): {tail[-500:]}", tail)
