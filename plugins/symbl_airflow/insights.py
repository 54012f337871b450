"""``symbl_airflow.insights``: moved to :mod:`symbl_airflow.operators.insights`; this path stays importable."""

from __future__ import annotations

import sys

from symbl_airflow.operators import insights as _insights

sys.modules[__name__] = _insights
