"""Runnable benchmarks for symbl-airflow (issue #9): ``python -m bench`` runs them all.

Nothing here is a unit test: each benchmark measures its variants side by side in one run and
reports ratios, and ``python -m bench`` writes the figures into ``docs/benchmarks.md``.
"""
