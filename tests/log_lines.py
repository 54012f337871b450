"""Read the log lines a ``dag.test()`` run printed (Airflow's structlog console format), to hold green runs quiet.

A line looks like ``2026-12-06T20:04:47.303301Z [info     ] <message> [<logger>] loc=file.py:84 key=value``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEAD = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[(?P<level>[a-z]+)\s*\] (?P<rest>.*)$")
_LOGGER = re.compile(r" \[(?P<logger>[A-Za-z_][\w.]*)\](?= |$)")

#: Warnings a person must look at: allowed in a green run. Anything else of ours at warning level is noise.
PERSON_MUST_LOOK = {
    "an input file that is not used (named, with the reason)": re.compile(r"\bignor(ed|ing)\b", re.I),
    "a part without audio": re.compile(r"\bwithout (an )?audio\b|\bno audio\b", re.I),
    "a part whose bytes changed after it was appended": re.compile(r"changed since it was appended"),
    "a late part (sorts before an appended one)": re.compile(r"\bis late\b"),
    "a conversation blocked until someone settles it": re.compile(r": blocked \("),
    "an insight kind Symbl did not return": re.compile(r"^Insight \S+ of conversation \S+ is missing"),
    "an append without a ledger created a conversation (a re-run creates another)": re.compile(r"ledger_uri"),
}


@dataclass(frozen=True)
class LogLine:
    level: str
    logger: str
    message: str
    text: str

    @property
    def ours(self) -> bool:
        """Written by the plugin (its module loggers, its operators' and hooks' task loggers)."""
        return "symbl_airflow" in self.logger

    @property
    def xcom_miss(self) -> bool:
        return self.message.startswith("XCom not found")


def parse(output: str) -> list[LogLine]:
    lines = []
    for raw in output.splitlines():
        head = _HEAD.match(raw)
        if not head:
            continue
        rest = head["rest"]
        loggers = list(_LOGGER.finditer(rest))
        logger = loggers[-1]["logger"] if loggers else ""
        message = rest[: loggers[-1].start()].strip() if loggers else rest
        lines.append(LogLine(head["level"], logger, message, raw))
    return lines


def noise(lines: list[LogLine]) -> list[str]:
    """Lines a green run must not have: errors of ours, of a task or from an XCom miss; warnings of ours
    that are not in :data:`PERSON_MUST_LOOK`."""
    bad = []
    for line in lines:
        if line.level in ("error", "critical", "exception"):
            if line.ours or line.logger == "task" or line.xcom_miss:
                bad.append(line.text)
        elif line.level == "warning" and line.ours:
            if not any(p.search(line.message) for p in PERSON_MUST_LOOK.values()):
                bad.append(line.text)
    return bad
