"""``symbl_airflow.ledger_cli``: moved to :mod:`symbl_airflow.appends.cli`; this path stays importable."""

from __future__ import annotations

import sys

from symbl_airflow.appends import cli as _cli

sys.modules[__name__] = _cli
