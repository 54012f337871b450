"""``python -m symbl_airflow.tables.cli athena <table> <tables uri> [--format parquet]`` | ``schema``.

Not the package's ``__main__.py``: Airflow's plugin loader imports every file of the plugins folder
under its file name, and a module named ``__main__`` would run its CLI in the scheduler.

``athena`` prints the ``CREATE EXTERNAL TABLE`` of one table (partition projection on meeting_date);
``schema`` prints the column tables of docs/tables.md.
"""

from __future__ import annotations

import argparse
import sys

from symbl_airflow.tables.schema import TABLE_KINDS, athena_ddl, markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symbl_airflow.tables.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ddl = sub.add_parser("athena", help="CREATE EXTERNAL TABLE for one table")
    ddl.add_argument("table", choices=TABLE_KINDS)
    ddl.add_argument("tables_uri", help="the operator's tables location, e.g. s3://bucket/tables/")
    ddl.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    ddl.add_argument("--name", help="table name (default symbl_<table>)")
    sub.add_parser("schema", help="the schema of every table, as markdown")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(markdown())
        return 0
    if not args.tables_uri.startswith("s3://"):
        parser.error(f"tables_uri must be an s3:// URI like s3://bucket/tables/, got {args.tables_uri!r}")
    base = args.tables_uri if args.tables_uri.endswith("/") else args.tables_uri + "/"
    print(athena_ddl(args.table, f"{base}{args.table}/", table_format=args.format, table=args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
