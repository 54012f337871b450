"""S3 URIs, parsed in one place (sources, ledgers and lineage all name objects as ``s3://bucket/key``)."""

from __future__ import annotations


def split_s3_uri(uri: object, *, what: str = "S3 URI", example: str = "s3://bucket/path/object") -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; a ``ValueError`` naming ``what`` and an ``example`` otherwise.

    Unlike ``S3Hook.parse_s3_url`` this needs no AWS provider import (DAG parsing, the triggerer) and
    refuses a bare bucket or a prefix (``.../``): every caller here names one object.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"{what} {uri!r} is not an S3 URI; pass a string like {example!r}")
    uri = uri.strip()
    if not uri.startswith("s3://"):
        raise ValueError(f"{what} {uri!r} must start with 's3://', e.g. {example!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ValueError(
            f"{what} {uri!r} must name a bucket and an object key, e.g. {example!r} (a prefix or a bare bucket "
            "is not an object)"
        )
    return bucket, key


def split_s3_prefix(uri: object, *, what: str = "S3 prefix", example: str = "s3://bucket/prefix/") -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket[/prefix]``; the prefix ends in ``/`` (or is empty): a folder."""
    if not isinstance(uri, str) or not uri.strip().startswith("s3://"):
        raise ValueError(f"{what} must be an S3 prefix like {example!r}, got {uri!r}")
    bucket, _, prefix = uri.strip()[5:].partition("/")
    if not bucket:
        raise ValueError(f"{what} {uri!r} names no bucket; use {example!r}")
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix
