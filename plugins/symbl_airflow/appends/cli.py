"""``python -m symbl_airflow.ledger``: look at a conversation ledger and settle what needs a person.

The pipeline stops a conversation rather than guess. These commands record the decision in the
ledger, with the same conditional writes the operator uses, so every later run follows it:

- ``show URI``: the conversation, its parts and their states, the lease, why it is stopped;
- ``resolve URI --part P --resend``: an unconfirmed part is missing in Symbl: send it again;
- ``resolve URI --part P --mark-sent [--job-id J] [--conversation-id C]``: it is in Symbl: go on after it
  (``--sent``: the older spelling);
- ``leave-out URI --part P``: a failed part stays out on purpose (a hole you accept); later parts may
  follow (``skip``: the deprecated name of this command);
- ``accept-duplicate URI --job-id J``: a writer whose lease had run out still got a part accepted (the
  conversation may hold it twice) and the conversation stopped: keep it as it is and go on;
- ``restart URI --from P``: start a new Symbl conversation from part P on; the old ledger is copied
  next to it as ``_symbl.<conversation id>.json``.

S3 is reached through the Airflow connection ``--aws-conn-id`` (default ``aws_default``).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import socket
import sys
import time

from symbl_airflow.appends import ledger as L
from symbl_airflow.appends import messages
from symbl_airflow.appends.stores import S3LedgerStore


def _writer() -> L.Writer:
    return L.Writer(dag_id="cli", run_id="manual", task_id=getpass.getuser(), hostname=socket.gethostname())


def _store(args) -> S3LedgerStore:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3LedgerStore(S3Hook(aws_conn_id=args.aws_conn_id), args.ledger)


def _open_for_edit(args) -> tuple[S3LedgerStore, L.Ledger]:
    """The ledger to change, refused while a live writer holds it (it may be sending right now)."""
    store = _store(args)
    ledger = store.load()
    lease = ledger.lease
    if lease and lease.expires_at > time.time() and not args.force:
        raise SystemExit(messages.lease_held_for_edit(ledger.uri, lease))
    return store, ledger


def show(args) -> int:
    with contextlib.redirect_stdout(sys.stderr):  # Airflow logs S3 connection lookups on stdout: not in --json
        ledger = _store(args).load()
    if not ledger.exists:
        print(f"{args.ledger}: no ledger (the next run starts a new conversation)")
        return 0
    if args.json:
        print(ledger.to_json())
        return 0
    print(f"ledger        {ledger.uri}")
    print(f"conversation  {ledger.conversation_id or '-'}")
    if ledger.symbl:
        print(f"symbl         {ledger.symbl.get('host')} (App ID {ledger.symbl.get('app_id')})")
    if ledger.lease:
        state = "held" if ledger.lease.expires_at > time.time() else "expired"
        print(f"lease         {state} by {ledger.lease.owner} until {L._iso(ledger.lease.expires_at)}")
    if ledger.start_from:
        print(f"start from    {ledger.start_from}")
    if ledger.stopped:
        why = "was accepted twice (duplicate)" if ledger.stopped.get("reason") == "duplicate" else "failed"
        print(f"STOPPED       job {ledger.stopped.get('job_id')} of {ledger.stopped.get('part')} {why}")
    for orphan in ledger.orphans:
        kept = " (kept on purpose)" if orphan.get("accepted") else ""
        print(
            f"  duplicate     job {orphan.get('job_id')} of {orphan.get('part')} in conversation "
            f"{orphan.get('conversation_id')} by {orphan.get('writer')}{kept}"
        )
    for part in ledger.parts:
        print(f"  {part.seq:>3} {part.state:<9} {part.job_id or '-':<38} {part.uri}")
    for uri in sorted(ledger.late):
        print(f"  late          (never appended)                        {uri}")
    return 0


def resolve(args) -> int:
    store, ledger = _open_for_edit(args)
    action = "resend" if args.resend else "mark_sent"
    store.update(
        L.resolve_unconfirmed(_writer(), args.part, action, job_id=args.job_id, conversation_id=args.conversation_id),
        ledger=ledger,
    )
    print(f"{args.part}: recorded as {'missing, to be sent again' if args.resend else 'present in Symbl'}")
    return 0


def leave_out(args) -> int:
    if args.command == "skip":
        print("note: 'skip' is deprecated; the command is now called 'leave-out'", file=sys.stderr)
    store, ledger = _open_for_edit(args)
    store.update(L.skip_failed(_writer(), args.part), ledger=ledger)
    print(f"{args.part}: left out on purpose; later parts will be appended after it")
    return 0


def accept_duplicate(args) -> int:
    store, ledger = _open_for_edit(args)
    store.update(L.accept_duplicate(_writer(), args.job_id), ledger=ledger)
    print(f"job {args.job_id}: the duplicate stays in Symbl on purpose; later parts will be appended")
    return 0


def restart(args) -> int:
    store, ledger = _open_for_edit(args)
    if not ledger.exists:
        raise SystemExit(f"{args.ledger} does not exist; the next run starts a new conversation anyway")
    archive_key = store.key.rsplit("/", 1)
    name = f"_symbl.{ledger.conversation_id or 'unnamed'}.json"
    archive_key = f"{archive_key[0]}/{name}" if len(archive_key) == 2 else name
    client = store.s3_hook.get_conn()
    client.put_object(
        Bucket=store.bucket, Key=archive_key, Body=ledger.to_json().encode(), ContentType="application/json"
    )
    previous = ledger.conversation_id

    def fresh(current: L.Ledger) -> None:
        current.conversation_id, current.parts, current.lease, current.stopped = None, [], None, None
        current.late, current.start_from = {}, args.from_part
        current.note(
            "restarted", _writer(), previous_conversation=previous, archive=f"s3://{store.bucket}/{archive_key}"
        )

    store.update(fresh, ledger=ledger)
    print(
        f"{args.ledger}: the next run starts a new Symbl conversation with {args.from_part} and the parts after it; "
        f"conversation {previous} is archived at s3://{store.bucket}/{archive_key}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symbl_airflow.ledger", description=__doc__.split("\n")[0])
    parser.add_argument("--aws-conn-id", default="aws_default")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("show", help="print the ledger")
    p.add_argument("ledger")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=show)

    def edit(name: str, help_text: str, func) -> argparse.ArgumentParser:
        """A subcommand that changes one part of a ledger (refused while a live writer holds it)."""
        command = sub.add_parser(name, help=help_text)
        command.add_argument("ledger")
        command.add_argument("--part", required=True, help="the part's s3:// URI")
        command.add_argument("--force", action="store_true", help="even while its lease is held")
        command.set_defaults(func=func)
        return command

    p = edit("resolve", "settle a part whose send was never confirmed", resolve)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--resend", action="store_true", help="it is missing in Symbl: send it again")
    how.add_argument(
        "--mark-sent", "--sent", dest="mark_sent", action="store_true", help="it is in Symbl: go on after it"
    )
    p.add_argument("--job-id")
    p.add_argument("--conversation-id")
    edit("leave-out", "leave a failed part out on purpose (accept the hole)", leave_out)
    edit("skip", "deprecated name of leave-out", leave_out)
    p = sub.add_parser("accept-duplicate", help="keep a conversation that holds a part twice and go on")
    p.add_argument("ledger")
    p.add_argument("--job-id", required=True, help="the duplicate's job id (the stop message names it)")
    p.add_argument("--force", action="store_true", help="even while its lease is held")
    p.set_defaults(func=accept_duplicate)
    p = sub.add_parser("restart", help="start a new conversation from a given part")
    p.add_argument("ledger")
    p.add_argument("--from", dest="from_part", required=True, help="the first part of the new conversation")
    p.add_argument("--force", action="store_true", help="even while its lease is held")
    p.set_defaults(func=restart)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except L.LedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
