"""Media conversion: memory flat in the source size, and its cost next to a plain ffmpeg run.

``python -m bench.media run [--sizes 50,250,1000] [--repeat 2]`` (or ``python -m bench --only media``).
For each size, two sources are made quickly (a short high-bitrate seed, concatenated with stream copy):

* ``mkv``: H.264 + AAC in Matroska -> remuxed to MP4 (the video API);
* ``webm``: VP8 + Opus in WebM -> its audio extracted to Ogg (the audio API).

Each source is put in a local S3 (moto server) and converted by ``PreparedMedia`` in a fresh process,
exactly as a task does: S3 body -> work file -> ffmpeg -> output file, read back in 1 MiB chunks as an
upload would. Measured: the Python process's peak RSS (VmHWM), ffmpeg's peak RSS (the children's
``ru_maxrss``), wall time; and, on the same file already on local disk, a plain
``ffmpeg -i src <same options> out`` run: the ratio ours / plain says what the S3 copy, the probe and
the bookkeeping add. Figures go to docs/benchmarks.md between the markers below.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, MiB, child_env, median, run_child

SECTION_START = "<!-- bench.media: start -->"
SECTION_END = "<!-- bench.media: end -->"
HEADING = "## 9. Media: converting other containers (memory, throughput)"
BUCKET, KINDS = "bench-media", ("mkv", "webm")
SEED_SECONDS = 20
#: Python peak RSS allowed at every size (the target: flat, far below the source).
RSS_TARGET = 200 * MiB
#: How much growth from the smallest to the largest source still counts as flat.
FLAT_SLACK = 16 * MiB


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str]) -> None:
    subprocess.run([_ffmpeg(), "-nostdin", "-loglevel", "error", "-y", *args], check=True, capture_output=True)


def make_source(workdir: Path, kind: str, size_mib: int) -> Path:
    """A ``kind`` file of about ``size_mib`` MiB: one noisy seed encoded once, then concatenated (no encode)."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{kind}-{size_mib}.{kind}"
    if out.exists():
        return out
    seed = workdir / f"seed.{kind}"
    if not seed.exists():
        video = ["-f", "lavfi", "-i", f"nullsrc=s=640x360:r=25:d={SEED_SECONDS},geq=random(1)*255:128:128"]
        audio = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SEED_SECONDS}"]
        codecs = (
            ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-g", "50", "-c:a", "aac", "-b:a", "96k"]
            if kind == "mkv"
            else ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "8M", "-c:a", "libopus"]
        )
        _run([*video, *audio, *codecs, "-t", str(SEED_SECONDS), str(seed)])
    copies = max(1, round(size_mib * MiB / seed.stat().st_size))
    listing = workdir / f"list-{kind}-{size_mib}.txt"
    listing.write_text("".join(f"file '{seed}'\n" for _ in range(copies)))
    _run(["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out)])
    return out


class ChildPeak:
    """Peak RSS (VmHWM) of this process's children (ffmpeg), sampled every 20 ms until stopped.

    (``RUSAGE_CHILDREN`` would count the forked Python before ``exec``, not ffmpeg itself.)
    """

    def __init__(self, every: float = 0.02):
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True)
        self._thread.start()

    def _loop(self, every: float) -> None:
        from bench.common import proc_status

        me = os.getpid()
        while not self._stop.wait(every):
            try:
                pids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    if "ffmpeg" not in os.readlink(f"/proc/{pid}/exe"):
                        continue  # forked, not yet ffmpeg: its memory is this Python's
                    self.peak = max(self.peak, proc_status(pid).get("VmHWM", 0))
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def worker(args: argparse.Namespace) -> dict:
    """One conversion in this fresh process (``--mode ours``), or the plain ffmpeg run (``--mode plain``)."""
    from bench.common import proc_status

    path = Path(args.path)
    if args.mode == "plain":
        from symbl_airflow.media.convert import plan_output, probe_file
        from symbl_airflow.media.formats import inspect
        from symbl_airflow.media.reader import file_reader

        facts = inspect(file_reader(path), path.name, f"file://{path}")
        plan = plan_output(probe_file(path, str(path)), facts, str(path))
        out = Path(args.workdir) / f"plain{plan.suffix}"
        start = time.perf_counter()
        _run(["-i", str(path), *plan.args, "-f", plan.muxer, str(out)])
        wall = time.perf_counter() - start
        size = out.stat().st_size
        out.unlink()
        return {"wall_s": wall, "out_bytes": size}

    from symbl_airflow.media.convert import PreparedMedia, probe_convert
    from symbl_airflow.media.formats import inspect
    from symbl_airflow.media.reader import file_reader, s3_reader

    key = path.name
    uri = f"s3://{BUCKET}/{key}"
    sampler = ChildPeak()
    baseline = proc_status()["VmRSS"]
    start = time.perf_counter()
    if args.mode == "s3":
        import boto3

        client = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1")
        head = client.head_object(Bucket=BUCKET, Key=key)
        etag, size = head["ETag"].strip('"'), head["ContentLength"]
        reader = s3_reader(client, BUCKET, key, etag, size, uri)

        def open_body():
            return client.get_object(Bucket=BUCKET, Key=key, IfMatch=etag)["Body"]
    else:
        size, reader = path.stat().st_size, file_reader(path)

        def open_body():
            return open(path, "rb")

    facts, _ = probe_convert(reader, inspect(reader, key, uri), uri)
    sent = 0
    with PreparedMedia(open_body, size, uri, facts, tmp_dir=args.workdir) as prepared:
        for piece in prepared.pieces():
            with piece.opener()() as fh:
                while chunk := fh.read(MiB):
                    sent += len(chunk)
            action = prepared.plan.action
    wall = time.perf_counter() - start
    status = proc_status()
    sampler.stop()
    return {
        "wall_s": wall,
        "out_bytes": sent,
        "action": action,
        "rss_baseline": baseline,
        "rss_peak": status["VmHWM"],
        "ffmpeg_rss_peak": sampler.peak,
        "left_in_workdir": len(os.listdir(args.workdir)),
    }


#: The checks before an MP4 is sent, as they were before the media registry (issue #20's baseline).
PREVIOUS_SOURCES_REV = "1424fab"


def _previous_inspect():
    """``inspect_source`` of ``symbl_airflow/sources.py`` at ``PREVIOUS_SOURCES_REV`` (self-contained then)."""
    import importlib.util

    source = subprocess.run(
        ["git", "show", f"{PREVIOUS_SOURCES_REV}:plugins/symbl_airflow/sources.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spec = importlib.util.spec_from_loader("symbl_previous_sources", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, "symbl_previous_sources.py", "exec"), module.__dict__)
    return module.inspect_source


class _CountingHook:
    """An S3Hook stand-in whose client counts GETs (the checks' cost) and bytes fetched."""

    def __init__(self, client):
        self.client, self.aws_conn_id, self.gets, self.bytes = client, "bench", 0, 0

    def get_conn(self):
        hook = self

        class Client:
            def head_object(self, **kw):
                return hook.client.head_object(**kw)

            def get_object(self, **kw):
                hook.gets += 1
                obj = hook.client.get_object(**kw)
                hook.bytes += obj["ContentLength"]
                return obj

        return Client()

    def check_for_bucket(self, bucket):
        return True


def mp4_path(workdir: Path, repeat: int = 30, log=print) -> dict:
    """The MP4 fast path's checks, now (media registry) vs before (``PREVIOUS_SOURCES_REV``), paired and
    interleaved on the same objects: a 64 MiB MP4 with ``moov`` first and one with ``moov`` last."""
    from scripts.local_stack import start_s3
    from symbl_airflow.sources import inspect_source
    from tests.media_samples import make_long_video

    previous = _previous_inspect()
    s3 = start_s3(workdir / "s3-mp4")
    rows = []
    try:
        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        sample = make_long_video(workdir / "sample.mp4", 600)
        faststart = workdir / "faststart.mp4"
        _run(["-i", str(sample), "-c", "copy", "-movflags", "+faststart", str(faststart)])
        pad = bytes(64 * MiB)
        for layout, path in (("moov last", sample), ("moov first", faststart)):
            # moov first: 64 MiB of trailing data after the file (never read); moov last: the file as written
            key = f"{layout.replace(' ', '-')}.mp4"
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes() + (pad if layout == "moov first" else b""))
            uri = f"s3://{BUCKET}/{key}"
            times = {"now": [], "before": []}
            gets = {}
            for i in range(repeat):
                for variant in ("now", "before") if i % 2 == 0 else ("before", "now"):
                    hook = _CountingHook(client)
                    check = inspect_source if variant == "now" else previous
                    start = time.perf_counter()
                    check(hook, uri)
                    times[variant].append(time.perf_counter() - start)
                    gets[variant] = (hook.gets, hook.bytes)
            row = {
                "layout": layout,
                "now_ms": median(times["now"]) * 1000,
                "before_ms": median(times["before"]) * 1000,
                "now_gets": gets["now"][0],
                "before_gets": gets["before"][0],
                "now_bytes": gets["now"][1],
                "before_bytes": gets["before"][1],
            }
            row["ratio"] = row["now_ms"] / row["before_ms"]
            rows.append(row)
            log(
                f"  MP4 checks, {layout}: now {row['now_ms']:.1f} ms / {row['now_gets']} GETs, before"
                f" {row['before_ms']:.1f} ms / {row['before_gets']} GETs (x{row['ratio']:.2f})"
            )
    finally:
        s3.stop()
    return {"rows": rows, "repeat": repeat, "previous_rev": PREVIOUS_SOURCES_REV}


def run(sizes_mib: list[int], workdir: Path, repeat: int = 1, log=print) -> dict:
    from scripts.local_stack import start_s3

    workdir.mkdir(parents=True, exist_ok=True)
    s3 = start_s3(workdir / "s3")
    rows = []
    try:
        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        env = child_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        for kind in KINDS:
            for size in sizes_mib:
                src = make_source(workdir / "sources", kind, size)
                client.upload_file(str(src), BUCKET, src.name)
                for r in range(repeat):
                    work = workdir / f"work-{kind}-{size}-{r}"
                    work.mkdir(exist_ok=True)
                    common = ["worker", "--path", str(src), "--workdir", str(work), "--endpoint", s3.endpoint_url]
                    ours = run_child("bench.media", [*common, "--mode", "s3"], env)
                    local = run_child("bench.media", [*common, "--mode", "local"], env)
                    plain = run_child("bench.media", [*common, "--mode", "plain"], env)
                    row = {
                        "kind": kind,
                        "size_mib": round(src.stat().st_size / MiB),
                        "repeat": r,
                        **ours,
                        "local_wall_s": local["wall_s"],
                        "local_rss_peak": local["rss_peak"],
                        "plain_wall_s": plain["wall_s"],
                        "ratio": local["wall_s"] / plain["wall_s"],
                        "loadavg": os.getloadavg()[0],
                    }
                    rows.append(row)
                    log(
                        f"  {kind} {row['size_mib']} MiB ({row['action']}): from S3 {row['wall_s']:.1f} s, from disk"
                        f" {row['local_wall_s']:.1f} s vs plain ffmpeg {row['plain_wall_s']:.1f} s"
                        f" (x{row['ratio']:.2f}); peak RSS python"
                        f" {row['rss_peak'] / MiB:.0f} MiB, ffmpeg {row['ffmpeg_rss_peak'] / MiB:.0f} MiB"
                    )
                client.delete_object(Bucket=BUCKET, Key=src.name)
                src.unlink()
    finally:
        s3.stop()
    return {"rows": rows, "sizes_mib": sizes_mib, "repeat": repeat}


def markdown(results: dict) -> list[str]:
    lines = [
        "`python -m bench.media run` (raw figures: `bench/results/media.json`). Sources made fast: a 20 s",
        "640x360 noise seed at 8 Mbit/s, concatenated with stream copy to the size. Each conversion runs in a",
        "fresh process as a task does: body -> work file -> ffmpeg -> output file read back in 1 MiB chunks",
        "as an upload would. *from S3*: the body from a local S3 (moto server, itself a Python process: its",
        "GET speed dominates); *from disk*: the same code with the body read from a local file; *plain* =",
        "`ffmpeg -i src <same options> out` on that file; *x* = from disk / plain (what the work-file copy,",
        "the stream probe and the bookkeeping add). Peak RSS: the Python process (VmHWM, from S3) and ffmpeg",
        "(its VmHWM sampled every 20 ms).",
        "",
        "| source | size | what | from S3 | from disk | plain ffmpeg | x | peak RSS python | peak RSS ffmpeg |"
        " output | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['kind']} | {row['size_mib']:,} MiB | {row['action']} | {row['wall_s']:.1f} s |"
            f" {row['local_wall_s']:.1f} s | {row['plain_wall_s']:.1f} s | {row['ratio']:.2f} |"
            f" {row['rss_peak'] / MiB:.0f} MiB | {row['ffmpeg_rss_peak'] / MiB:.0f} MiB |"
            f" {row['out_bytes'] / MiB:,.1f} MiB | {row['loadavg']:.1f} |"
        )
    return lines + _mp4_markdown(results)


def _mp4_markdown(results: dict) -> list[str]:
    mp4 = results.get("mp4_path")
    if not mp4:
        return []
    lines = [
        "",
        "The MP4 fast path's checks before sending (HEAD + ranged GETs of the box headers), now (media registry:",
        f"content sniffing, track codecs for MP4 compatibility) vs before (`sources.py` at {mp4['previous_rev']}),",
        f"paired and interleaved, {mp4['repeat']} runs each, median; local S3 (moto):",
        "",
        "| layout | now | before | now / before | GETs now | GETs before | bytes now | bytes before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mp4["rows"]:
        lines.append(
            f"| {r['layout']} | {r['now_ms']:.1f} ms | {r['before_ms']:.1f} ms | {r['ratio']:.2f} | {r['now_gets']} |"
            f" {r['before_gets']} | {r['now_bytes']:,} | {r['before_bytes']:,} |"
        )
    return lines


def targets(results: dict) -> list[tuple[str, str, str, bool]]:
    rows = results.get("rows") or []
    out = []
    for r in (results.get("mp4_path") or {}).get("rows", []):
        out.append(
            (
                "media (MP4 fast path)",
                f"checks no slower than before ({r['layout']}): GETs <= before, time now/before <= 1.1",
                f"{r['now_gets']} vs {r['before_gets']} GETs, x{r['ratio']:.2f}",
                r["now_gets"] <= r["before_gets"] and r["ratio"] <= 1.1,
            )
        )
    if not rows:
        return out
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        small = median([r["rss_peak"] for r in mine if r["size_mib"] == min(x["size_mib"] for x in mine)])
        large = median([r["rss_peak"] for r in mine if r["size_mib"] == max(x["size_mib"] for x in mine)])
        peak = max(max(r["rss_peak"], r["ffmpeg_rss_peak"]) for r in mine)
        out.append(
            (
                f"media ({kind})",
                f"peak RSS (python) flat from the smallest to the largest source (+<= {FLAT_SLACK // MiB} MiB);"
                f" python and ffmpeg <= {RSS_TARGET // MiB} MiB",
                f"{small / MiB:.0f} -> {large / MiB:.0f} MiB (max {peak / MiB:.0f})",
                large - small <= FLAT_SLACK and peak <= RSS_TARGET,
            )
        )
        ratios = [r["ratio"] for r in mine if r["size_mib"] == max(x["size_mib"] for x in mine)]
        out.append(
            (
                f"media ({kind})",
                "wall time from disk <= 2x a plain ffmpeg run on the same file, at the largest size",
                f"x{median(ratios):.2f}",
                median(ratios) <= 2.0,
            )
        )
    return out


def bench(settings, workdir: Path) -> dict:
    """Entry for ``python -m bench`` (``BENCHMARKS``)."""
    sizes = settings.sizes_mib or ([50, 200] if settings.quick else [50, 250, 1000])
    results = run(sizes, workdir / "media", repeat=settings.repeat or (1 if settings.quick else 2))
    results["mp4_path"] = mp4_path(workdir / "media-mp4", repeat=10 if settings.quick else 30)
    return results


def write_docs(results: dict, path: Path = ROOT / "docs" / "benchmarks.md") -> None:
    """Put the section into docs/benchmarks.md between its markers (or at the end)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    rows = [f"| {b} | {t} | {m} | {'met' if ok else '**missed**'} |" for b, t, m, ok in targets(results)]
    section = "\n".join(
        [SECTION_START, *markdown(results), "", "| benchmark | target | measured | |", "|---|---|---|---|", *rows]
        + [SECTION_END]
    )
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + section + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{section}\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.media")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--path", required=True)
    w.add_argument("--workdir", required=True)
    w.add_argument("--endpoint", required=True)
    w.add_argument("--mode", choices=("s3", "local", "plain"), required=True)
    r = sub.add_parser("run")
    r.add_argument("--sizes", default="50,250,1000", help="comma-separated source sizes in MiB")
    r.add_argument("--repeat", type=int, default=2)
    r.add_argument("--no-docs", action="store_true")
    r.add_argument("--only-mp4-path", action="store_true", help="only the MP4 checks now vs before")
    r.add_argument("--reuse", type=Path, help="a results JSON whose conversion rows are kept")
    args = parser.parse_args(argv)
    if args.command == "worker":
        print(json.dumps(worker(args)))
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="symbl-bench-media-") as tmp:
        if args.only_mp4_path:
            results = json.loads(args.reuse.read_text()) if args.reuse else {"rows": []}
        else:
            results = run([int(s) for s in args.sizes.split(",")], Path(tmp), repeat=args.repeat)
        results["mp4_path"] = mp4_path(Path(tmp), repeat=30)
    out = ROOT / "bench" / "results" / "media.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_docs:
        write_docs(results)
    for row in targets(results):
        print(" | ".join(str(x) for x in row))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "plugins"))
    main()
