"""Rendered template values as the sensor, insights and append operators receive them."""

from __future__ import annotations

import pytest

from symbl_airflow.templating import parse_rendered

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"conversation_id": "1", "job_ids": ["a"]}', {"conversation_id": "1", "job_ids": ["a"]}),
        ("{'conversation_id': '1', 'job_ids': ['a']}", {"conversation_id": "1", "job_ids": ["a"]}),
        (" ['a', 'b'] ", ["a", "b"]),
        ("{'enable_summary': True}", {"enable_summary": True}),
        ("plain-id", "plain-id"),
        ("[not python", "[not python"),
        ({"already": "parsed"}, {"already": "parsed"}),
    ],
)
def test_parse_rendered(value, expected):
    assert parse_rendered(value) == expected
