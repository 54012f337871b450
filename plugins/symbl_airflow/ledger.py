"""``symbl_airflow.ledger``: the conversation ledger's documented import path and CLI entry point.

The ledger lives in the append engine: records and mutations in :mod:`symbl_airflow.appends.ledger`,
stores in :mod:`symbl_airflow.appends.stores`, the CLI in :mod:`symbl_airflow.appends.cli`. Every name
of those two modules is reachable here, so ``from symbl_airflow.ledger import S3LedgerStore`` keeps
working; ``python -m symbl_airflow.ledger ...`` runs the CLI (this shim is then ``__main__``; the
engine modules load once).
"""

from __future__ import annotations

from typing import Any

from symbl_airflow.appends import ledger as _records
from symbl_airflow.appends import stores as _stores


def __getattr__(name: str) -> Any:
    for module in (_records, _stores):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'symbl_airflow.ledger' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({n for m in (_records, _stores) for n in dir(m) if not n.startswith("__")})


if __name__ == "__main__":  # python -m symbl_airflow.ledger ...
    from symbl_airflow.appends.cli import main

    raise SystemExit(main())
