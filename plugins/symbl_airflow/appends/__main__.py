"""``python -m symbl_airflow.appends``: the ledger CLI (also ``python -m symbl_airflow.ledger``)."""

from __future__ import annotations

import sys

from symbl_airflow.appends.cli import main

sys.exit(main())
