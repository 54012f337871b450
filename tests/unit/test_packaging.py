"""The published package: license, metadata, one version, honest dependencies, public imports only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import symbl_airflow

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "symbl_airflow"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

#: Distribution -> the module it provides, for the runtime dependencies.
DIST_MODULES = {
    "apache-airflow": "airflow",
    "apache-airflow-providers-http": "airflow.providers.http",
    "apache-airflow-providers-amazon": "airflow.providers.amazon",
    "apache-airflow-providers-standard": "airflow.providers.standard",
    "apache-airflow-providers-common-messaging": "airflow.providers.common.messaging",
    "aiohttp": "aiohttp",
    "aiobotocore": "aiobotocore",
    "requests": "requests",
    "urllib3": "urllib3",
    "botocore": "botocore",
    "boto3": "boto3",
    "tenacity": "tenacity",
}
#: Declared and pinned though the plugin never imports them: what it uses through a provider's hook.
USED_THROUGH_HOOKS = {"boto3"}  # S3Hook (apache-airflow-providers-amazon) is a boto3 client
#: Imported by the plugin but part of what it builds on: asgiref is Airflow's own sync/async bridge; the
#: openlineage provider (with common.compat) is optional and imported lazily.
TRANSITIVE = {"asgiref", "airflow.providers.openlineage", "airflow.providers.common"}
#: Modules of extras the plugin imports lazily, only when used: the ``media`` extra (converting, cutting), the
#: ``parquet`` extra (insight tables as Parquet).
EXTRA_MODULES = {"av": "media", "imageio_ffmpeg": "media", "pyarrow": "parquet"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def _plugin_imports() -> set[str]:
    names = set()
    for path in PLUGIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


@pytest.mark.unit
def test_license_is_apache_2_spdx():
    assert PROJECT["license"] == "Apache-2.0"  # an SPDX expression, not the deprecated table
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.mark.unit
def test_classifiers_keywords_urls_and_typing():
    classifiers = PROJECT["classifiers"]
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    assert "Typing :: Typed" in classifiers and (PLUGIN / "py.typed").is_file()
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["symbl_airflow"] == ["py.typed"]
    assert {"airflow", "symbl"} <= set(PROJECT["keywords"])
    assert PROJECT["urls"] and all(url.startswith("https://") for url in PROJECT["urls"].values())


@pytest.mark.unit
def test_one_version_source():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "symbl_airflow.version.__version__"}
    from symbl_airflow.get_provider_info import get_provider_info

    assert get_provider_info()["versions"] == [symbl_airflow.__version__]
    assert re.fullmatch(r"\d+\.\d+\.\d+", symbl_airflow.__version__)


@pytest.mark.unit
def test_python_floor_is_consistent():
    floor = re.fullmatch(r">=(\d+)\.(\d+)", PROJECT["requires-python"])
    assert floor, PROJECT["requires-python"]
    major, minor = map(int, floor.groups())
    versions = [
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.match(r"Programming Language :: Python :: 3\.\d+$", c)
    ]
    assert min(tuple(map(int, v.split("."))) for v in versions) == (major, minor)
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    # The interpreter bootstrap insists on (for the pinned dev set) satisfies the package's floor.
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    needed = tuple(map(int, re.search(r"sys\.version_info >= \((\d+), (\d+), \d+\)", bootstrap).groups()))
    assert needed >= (major, minor)
    assert sys.version_info[:2] >= (major, minor)


@pytest.mark.unit
def test_dependencies_are_the_imported_ones():
    declared = {_name(r) for r in PROJECT["dependencies"]}
    runtime_pins = {_name(line) for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line}
    extras = {_name(r) for reqs in PROJECT["optional-dependencies"].values() for r in reqs}
    assert declared <= runtime_pins, f"pin {declared - runtime_pins} in requirements.txt"
    # requirements.txt also pins what the example DAGs need (the image installs it): each is a declared extra.
    assert runtime_pins - declared <= extras, (
        f"{runtime_pins - declared - extras}: in requirements.txt, not in pyproject"
    )
    assert declared <= set(DIST_MODULES), f"add the module of {declared - set(DIST_MODULES)} to DIST_MODULES"
    imports = _plugin_imports()
    third_party = {
        name
        for name in imports
        if not name.startswith("symbl_airflow") and name.split(".")[0] not in sys.stdlib_module_names
    }
    not_imported = [
        dist
        for dist in declared - USED_THROUGH_HOOKS
        if not any(name == DIST_MODULES[dist] or name.startswith(DIST_MODULES[dist] + ".") for name in third_party)
    ]
    assert not_imported == [], "declared but never imported by the plugin"
    for module, extra in EXTRA_MODULES.items():
        assert module.replace("_", "-") in {_name(r) for r in PROJECT["optional-dependencies"][extra]}
    provided = {DIST_MODULES[d] for d in declared} | TRANSITIVE | set(EXTRA_MODULES)
    undeclared = {
        name
        for name in third_party
        if name.split(".")[0] != "airflow" or name.startswith("airflow.providers.")
        if not any(name == m or name.startswith(m + ".") for m in provided if m != "airflow")
    }
    assert undeclared == set(), "imported by the plugin but not declared"


@pytest.mark.unit
def test_airflow_and_providers_have_a_floor_and_no_cap():
    """Like providers, the package does not cap Airflow: `make compat` tests the next line in CI instead."""
    specs = {_name(r): r for r in PROJECT["dependencies"] if _name(r).startswith("apache-airflow")}
    assert {"apache-airflow", "apache-airflow-providers-http", "apache-airflow-providers-amazon"} <= set(specs)
    for name, spec in specs.items():
        assert re.fullmatch(rf"{re.escape(name)}>=\d+\.\d+(\.\d+)?", spec), f"{spec}: a >= floor and no upper cap"
    # The floor is what `make test` runs: requirements.txt pins exactly it.
    pins = dict(
        line.split("==", 1) for line in (ROOT / "requirements.txt").read_text().splitlines() if line[:1].isalpha()
    )
    assert specs["apache-airflow"] == f"apache-airflow>={pins['apache-airflow']}"


@pytest.mark.unit
def test_no_private_airflow_imports():
    private = sorted(
        name
        for name in _plugin_imports()
        if name.startswith("airflow") and any(p.startswith("_") for p in name.split("."))
    )
    assert private == []


@pytest.mark.unit
def test_lint_builds_and_checks_the_distributions():
    lint = re.search(r"^lint:.*?(?=^\S|\Z)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE | re.DOTALL).group(0)
    assert "python -m build" in lint and "twine check --strict" in lint
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert re.search(r"^build==", dev, flags=re.MULTILINE) and re.search(r"^twine==", dev, flags=re.MULTILINE)


@pytest.mark.integration
def test_wheel_carries_license_typing_marker_and_metadata(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--installer", "uv", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("symbl_airflow-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "symbl_airflow/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert f"Version: {symbl_airflow.__version__}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert "Classifier: Framework :: Apache Airflow :: Provider" in metadata
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_name(name)] = version.split(";", 1)[0].strip()
    return pins


@pytest.mark.unit
def test_requirement_pins_agree_with_constraints():
    """bootstrap.sh installs requirements-dev.txt with -c constraints.txt: a pin that disagrees cannot install."""
    constraints = _pins(ROOT / "constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt"):
        pins = _pins(ROOT / name)
        assert {d: v for d, v in pins.items() if constraints.get(d) != v} == {}, f"{name} vs constraints.txt"
    runtime = _pins(ROOT / "requirements.txt")
    assert runtime["boto3"] == constraints["boto3"]  # S3Hook's client: listed with the runtime pins
    assert not set(runtime) & set(_pins(ROOT / "requirements-dev.txt")), "pin each package in one file"
