"""``symbl_airflow.plan``: moved to :mod:`symbl_airflow.appends.plan`; this path stays importable."""

from __future__ import annotations

import sys

from symbl_airflow.appends import plan as _plan

sys.modules[__name__] = _plan
