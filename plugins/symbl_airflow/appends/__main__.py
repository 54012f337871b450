"""``python -m symbl_airflow.appends``: the ledger CLI (also ``python -m symbl_airflow.ledger``).

Guarded: Airflow's plugin loader imports every file under ``plugins/``, this one included.
"""

from __future__ import annotations

if __name__ == "__main__":
    import sys

    from symbl_airflow.appends.cli import main

    sys.exit(main())
