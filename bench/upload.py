"""Upload path: S3 object -> Symbl sandbox, three ways side by side, each in a fresh process.

* ``operator``: the operator's code path (``inspect_source`` + ``body_opener`` + ``SymblHook.submit_video``
  with the operator's default chunk size and its progress logger).
* ``seed``: the seed's (and the official SDK's) way: read the whole object, then PUT the bytes.
* ``raw``: the thinnest streaming pipe: boto3 ``get_object`` chunks -> one plain ``requests`` PUT.

Every variant PUTs (appends) to a conversation the orchestrator created, so the wire work is equal.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import MiB, child_env, cpu_seconds, proc_status, reset_peak, run_child

VARIANTS = ("raw", "operator", "seed")
PART_SIZE = 64 * MiB


# ------------------------------------------------------------------------------------------- worker side
def _operator_chunk_size() -> int:
    from symbl_airflow.operators import SymblAppendVideoOperator

    return inspect.signature(SymblAppendVideoOperator.__init__).parameters["chunk_size"].default


def worker(args: argparse.Namespace) -> dict:
    """Runs in its own process: imports, warm-up, then one timed upload with the peak RSS reset."""
    import logging

    import boto3
    import requests
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.hooks import SymblHook
    from symbl_airflow.sources import ProgressLogger, body_opener, inspect_source

    logging.getLogger("airflow").setLevel(logging.WARNING)
    chunk_size = _operator_chunk_size()
    hook = SymblHook()
    token = hook.get_access_token()  # warm-up: the token and the connection are not part of the upload
    s3_hook = S3Hook(aws_conn_id="aws_default")
    client = boto3.client(
        "s3",
        endpoint_url=args.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.head_bucket(Bucket=args.bucket)
    s3_hook.get_conn().head_bucket(Bucket=args.bucket)
    url = f"{hook.config.base_url}/v1/process/video/{args.conversation_id}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"}

    baseline = proc_status()["VmRSS"]
    peak_reset = reset_peak()
    cpu_started = time.process_time()
    started = time.perf_counter()
    inspect_s = 0.0
    if args.variant == "operator":
        # The checks (HEAD + a 64-byte ranged GET) are timed apart: moto answers a ranged GET by copying
        # the whole object, a cost real S3 does not have.
        source = inspect_source(s3_hook, f"s3://{args.bucket}/{args.key}")
        inspect_s = time.perf_counter() - started
        started = time.perf_counter()
        submission = hook.submit_video(
            body_opener(s3_hook, source),
            source.size,
            conversation_id=args.conversation_id,
            chunk_size=chunk_size,
            on_progress=ProgressLogger(logging.getLogger("bench.upload"), source.uri, source.size),
        )
        job_id, size = submission.job_id, source.size
    elif args.variant == "seed":
        data = client.get_object(Bucket=args.bucket, Key=args.key)["Body"].read()
        resp = requests.put(url, data=data, headers=headers, timeout=600)
        resp.raise_for_status()
        job_id, size = resp.json()["jobId"], len(data)
        del data
    elif args.variant == "raw":
        # A plain requests PUT of a generator, with Content-Length instead of chunked encoding
        # (what the operator sends; chunked framing would copy every chunk once more in urllib3).
        obj = client.get_object(Bucket=args.bucket, Key=args.key)
        request = requests.Request("PUT", url, data=obj["Body"].iter_chunks(chunk_size), headers=headers).prepare()
        request.headers.pop("Transfer-Encoding", None)
        request.headers["Content-Length"] = str(obj["ContentLength"])
        with requests.Session() as session:
            resp = session.send(request, timeout=600)
        resp.raise_for_status()
        job_id, size = resp.json()["jobId"], obj["ContentLength"]
    else:
        raise SystemExit(f"unknown variant {args.variant}")
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    status = proc_status()
    return {
        "variant": args.variant,
        "size": size,
        "seconds": elapsed,
        "mib_s": size / MiB / elapsed,
        "cpu_s": cpu,
        "inspect_s": inspect_s,
        "baseline_rss": baseline,
        "peak_rss": status["VmHWM"],
        "extra_rss": max(0, status["VmHWM"] - baseline),
        "peak_reset": peak_reset,
        "chunk_size": chunk_size,
        "job_id": job_id,
    }


# ------------------------------------------------------------------------------------------- orchestrator
def _mp4_head() -> bytes:
    from symbl_sandbox.samples import make_mp4

    with tempfile.TemporaryDirectory() as tmp:
        path = make_mp4(Path(tmp) / "head.mp4", [("Alice", "Benchmark upload."), ("Bob", "Padding follows.")])
        return path.read_bytes()


def put_big_object(client, bucket: str, key: str, size: int, head: bytes) -> None:
    """Multipart upload from a generator of parts: a valid MP4 start, then a repeated pad block."""
    pad = (b"symbl-airflow benchmark padding " * (PART_SIZE // 32 + 1))[:PART_SIZE]
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType="video/mp4")
    parts, offset, number = [], 0, 1
    while offset < size:
        length = min(PART_SIZE, size - offset)
        body = (head + pad)[:length] if offset == 0 else (pad if length == PART_SIZE else pad[:length])
        etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=body)[
            "ETag"
        ]
        parts.append({"ETag": etag, "PartNumber": number})
        offset += length
        number += 1
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )


def run(sizes_mib: list[int], workdir: Path, repeat: int = 1, log=print) -> dict:
    from scripts.local_stack import start_s3, start_sandbox

    head = _mp4_head()
    results: list[dict] = []
    # Spool uploads to tmpfs when there is one: disk writeback of GiBs would add noise unrelated to the client.
    shm = Path("/dev/shm")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-sandbox-", dir=shm)) if shm.is_dir() else workdir / "data"
    sandbox = start_sandbox(
        workdir / "sandbox", "--log-level", "WARNING", "--data-dir", str(data_dir), speed=0.001, min_job_seconds=0.2
    )
    try:
        for size_mib in sizes_mib:
            s3 = start_s3(workdir / f"s3-{size_mib}")  # a fresh moto per size: it keeps objects in memory
            try:
                client = s3.client()
                bucket, key = "bench-upload", f"video-{size_mib}mib.mp4"
                client.create_bucket(Bucket=bucket)
                log(f"  creating s3://{bucket}/{key} ({size_mib} MiB) ...")
                put_big_object(client, bucket, key, size_mib * MiB, head)
                token = sandbox.token()
                env = child_env(AIRFLOW_CONN_SYMBL_DEFAULT=sandbox.conn_json(), AIRFLOW_CONN_AWS_DEFAULT=s3.conn_json())
                plan = [(-1, "raw")] + [(rep, variant) for rep in range(repeat) for variant in VARIANTS]
                for rep, variant in plan:  # rep -1: a warm-up of the servers, not reported
                    if True:
                        resp = sandbox.request(
                            "POST",
                            "/v1/process/video",
                            data=head,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"},
                        )
                        resp.raise_for_status()
                        conversation_id = resp.json()["conversationId"]
                        before = proc_status(sandbox.pid)
                        reset_peak(sandbox.pid)
                        sandbox_cpu, s3_cpu = cpu_seconds(sandbox.pid), cpu_seconds(s3.proc.pid)
                        args = [
                            "worker",
                            "--variant",
                            variant,
                            "--bucket",
                            bucket,
                            "--key",
                            key,
                            "--conversation-id",
                            conversation_id,
                            "--s3-endpoint",
                            s3.endpoint_url,
                        ]
                        result = run_child("bench.upload", args, env)
                        after = proc_status(sandbox.pid)
                        result["sandbox_cpu_s"] = cpu_seconds(sandbox.pid) - sandbox_cpu
                        result["s3_cpu_s"] = cpu_seconds(s3.proc.pid) - s3_cpu
                        _wait_job(sandbox, token, result["job_id"])  # its processing must not overlap the next run
                        result.update(
                            size_mib=size_mib,
                            repeat=rep,
                            sandbox_rss_before=before["VmRSS"],
                            sandbox_rss_after=after["VmRSS"],
                            sandbox_peak=after["VmHWM"],
                            sandbox_extra=max(0, after["VmHWM"] - before["VmRSS"]),
                        )
                        entry = next(e for e in sandbox.ledger() if e["jobId"] == result["job_id"])
                        result["ledger_size_ok"] = entry["size"] == size_mib * MiB
                        log(
                            f"  {size_mib:>5} MiB {variant if rep >= 0 else 'warm-up':<8} "
                            f"{result['mib_s']:7.1f} MiB/s  "
                            f"extra RSS {result['extra_rss'] / MiB:7.1f} MiB  "
                            f"sandbox extra {result['sandbox_extra'] / MiB:6.1f} MiB  cpu client/sandbox/s3 "
                            f"{result['cpu_s']:.1f}/{result['sandbox_cpu_s']:.1f}/{result['s3_cpu_s']:.1f} s"
                        )
                        if rep >= 0:
                            results.append(result)
                client.delete_object(Bucket=bucket, Key=key)
            finally:
                s3.stop()
            sandbox.reset()  # forget conversations; spooled media is removed when each job ends
    finally:
        sandbox.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"runs": results, "summary": summarize(results)}


def _wait_job(sandbox, token: str, job_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = sandbox.request("GET", f"/v1/job/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
        if status.get("status") in ("completed", "failed"):
            return
        time.sleep(0.2)


def summarize(results: list[dict]) -> list[dict]:
    """Per size: medians per variant and the ratios the targets are about."""
    from bench.common import median

    rows = []
    for size_mib in sorted({r["size_mib"] for r in results}):
        row: dict = {"size_mib": size_mib}
        for variant in VARIANTS:
            runs = [r for r in results if r["size_mib"] == size_mib and r["variant"] == variant]
            row[variant] = {
                "mib_s": median([r["mib_s"] for r in runs]),
                "best_mib_s": max(r["mib_s"] for r in runs),
                "cpu_s_per_gib": median([r["cpu_s"] / (r["size"] / (1 << 30)) for r in runs]),
                "inspect_s": median([r["inspect_s"] for r in runs]),
                "runs": len(runs),
                "extra_rss": median([r["extra_rss"] for r in runs]),
                "sandbox_extra": median([r["sandbox_extra"] for r in runs]),
                "sandbox_rss_after": median([r["sandbox_rss_after"] for r in runs]),
                "ok": all(r["ledger_size_ok"] for r in runs),
            }
        row["throughput_vs_raw"] = row["operator"]["mib_s"] / row["raw"]["mib_s"]
        row["best_throughput_vs_raw"] = row["operator"]["best_mib_s"] / row["raw"]["best_mib_s"]
        row["cpu_vs_raw"] = row["operator"]["cpu_s_per_gib"] / row["raw"]["cpu_s_per_gib"]
        row["throughput_vs_seed"] = row["operator"]["mib_s"] / row["seed"]["mib_s"]
        row["rss_seed_over_operator"] = row["seed"]["extra_rss"] / max(1, row["operator"]["extra_rss"])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upload")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--variant", choices=VARIANTS, required=True)
    w.add_argument("--bucket", required=True)
    w.add_argument("--key", required=True)
    w.add_argument("--conversation-id", required=True)
    w.add_argument("--s3-endpoint", required=True)
    r = sub.add_parser("run")
    r.add_argument("--sizes", default="16,64")
    r.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "worker":
        print(json.dumps(worker(args)), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        out = run([int(s) for s in args.sizes.split(",")], Path(tmp), args.repeat)
    json.dump(out["summary"], sys.stdout, indent=1)


if __name__ == "__main__":
    main()
