"""scripts/compat.py: what each Airflow leg installs, and how its results are read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts import compat

ROOT = Path(__file__).resolve().parents[2]


def _pins(text: str) -> dict[str, str]:
    return compat.locked_versions(text)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("leg", "specifier"),
    [
        ("3.4", "apache-airflow>=3.4.0a0,<3.5"),
        ("3.10", "apache-airflow>=3.10.0a0,<3.11"),
        ("3.4.0b2", "apache-airflow==3.4.0b2"),
        ("3.3.2", "apache-airflow==3.3.2"),
    ],
)
def test_leg_specifiers(leg, specifier):
    assert compat.airflow_specifier(leg) == specifier


@pytest.mark.unit
def test_lowest_leg_is_the_declared_floor_which_make_test_pins():
    floor = compat.airflow_floor()
    assert compat.airflow_specifier("lowest") == f"apache-airflow=={floor}"
    # `make test` installs requirements-dev.txt with constraints.txt: both pin exactly the floor, so the main
    # run is the lowest leg and CI only adds the next one.
    assert _pins((ROOT / "requirements.txt").read_text())["apache-airflow"] == floor
    assert _pins((ROOT / "constraints.txt").read_text())["apache-airflow"] == floor


@pytest.mark.unit
@pytest.mark.parametrize("leg", ["3", "latest", "3.4.x", ""])
def test_unknown_leg_is_refused_naming_it(leg):
    with pytest.raises(SystemExit, match=re.escape(repr(leg))):
        compat.airflow_specifier(leg)


@pytest.mark.unit
def test_derived_inputs_free_airflow_pins_and_keep_the_rest():
    requirements, constraints = compat.derive_inputs("apache-airflow>=3.4.0a0,<3.5")
    lines = requirements.splitlines()
    assert lines[0] == "apache-airflow>=3.4.0a0,<3.5"
    assert lines[-1] == f"-e {ROOT}"  # the package's own dependency spec must admit the leg's Airflow
    airflow = [line for line in lines[1:] if line.startswith("apache-airflow")]
    assert airflow and all(re.fullmatch(r"apache-airflow-providers-[a-z-]+", line) for line in airflow)
    dev = _pins((ROOT / "requirements.txt").read_text() + (ROOT / "requirements-dev.txt").read_text())
    derived = _pins(requirements)
    assert {k: v for k, v in dev.items() if not k.startswith("apache-airflow")} == derived
    assert {n for n in dev if n.startswith("apache-airflow-")} == set(airflow)
    pinned = _pins((ROOT / "constraints.txt").read_text())
    assert _pins(constraints) == {k: v for k, v in pinned.items() if not k.startswith("apache-airflow")}
    assert "pytest" in _pins(constraints) and "boto3" in _pins(constraints)


@pytest.mark.unit
def test_derived_inputs_follow_includes_and_keep_extras(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "# runtime\napache-airflow==3.3.2\nApache_Airflow.Providers-Foo[bar]==1.2\n"
    )
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\nmoto[server]==5.2.5  # local S3\n\n")
    (tmp_path / "constraints.txt").write_text("# set\napache-airflow-core==3.3.2\nmoto==5.2.5\nApache_Airflow==3.3.2\n")
    requirements, constraints = compat.derive_inputs("apache-airflow==3.4.0b2", root=tmp_path)
    assert requirements.splitlines() == [
        "apache-airflow==3.4.0b2",
        "Apache_Airflow.Providers-Foo[bar]",
        "moto[server]==5.2.5",
        f"-e {tmp_path}",
    ]
    assert constraints.splitlines() == ["moto==5.2.5"]


@pytest.mark.unit
def test_floors_leg_frees_only_the_declared_airflow_distributions(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["apache-airflow>=3.3.2", "apache-airflow-providers-http>=6.0", "requests>=2"]\n'
    )
    (tmp_path / "requirements-dev.txt").write_text(
        "apache-airflow==3.3.2\napache-airflow-providers-http==6.3.0\napache-airflow-providers-celery==3.26.0\n"
    )
    (tmp_path / "constraints.txt").write_text(
        "apache-airflow==3.3.2\napache-airflow-core==3.3.2\napache-airflow-providers-http==6.3.0\n"
        "apache-airflow-providers-celery==3.26.0\nrequests==2.34.2\n"
    )
    requirements, constraints = compat.derive_inputs("apache-airflow==3.3.2", root=tmp_path, floors=True)
    assert requirements.splitlines() == [
        "apache-airflow==3.3.2",
        "apache-airflow-providers-http",  # the resolver takes its lowest (--resolution lowest-direct)
        "apache-airflow-providers-celery==3.26.0",  # not the package's: stays as pinned
        f"-e {tmp_path}",
    ]
    assert constraints.splitlines() == [
        "apache-airflow-core==3.3.2",
        "apache-airflow-providers-celery==3.26.0",
        "requests==2.34.2",
    ]
    assert compat.declared_airflow(tmp_path / "pyproject.toml") == {"apache-airflow", "apache-airflow-providers-http"}
    assert compat.airflow_specifier("floors") == compat.airflow_specifier("lowest")


@pytest.mark.unit
def test_locked_versions_reads_uv_output():
    lock = "-e file:///repo\nApache_Airflow==3.4.0b2\n    # via -r requirements.in\nmoto[server]==5.2.5\n"
    assert compat.locked_versions(lock) == {"apache-airflow": "3.4.0b2", "moto": "5.2.5"}


@pytest.mark.unit
def test_junit_counts(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="10" failures="2" errors="1" '
        'skipped="3"></testsuite></testsuites>'
    )
    assert compat.junit_counts(xml) == {"passed": 4, "failed": 2, "errors": 1, "skipped": 3}


@pytest.mark.unit
def test_ci_runs_the_next_airflow_leg():
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^compat:.*\n\t(.*)$", makefile, flags=re.MULTILINE).group(1)
    assert "python -m scripts.compat $(COMPAT_AIRFLOW)" in target
    default = re.search(r"^COMPAT_AIRFLOW \?= (.+)$", makefile, flags=re.MULTILINE).group(1).split()
    floor = tuple(map(int, compat.airflow_floor().split(".")[:2]))
    assert [tuple(map(int, leg.split("."))) > floor for leg in default] == [True]  # the next line, not the floor
    assert re.search(r"^make compat$", (ROOT / ".ci" / "run").read_text(), flags=re.MULTILINE)
    assert ".tmp/" in (ROOT / ".gitignore").read_text().splitlines()
