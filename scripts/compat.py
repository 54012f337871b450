"""The unit + integration suites against another Airflow version, each in its own venv.

``make test`` runs in ``.venv`` pinned by ``constraints.txt`` to Airflow 3.3.2, the lowest version
``pyproject.toml`` declares: that is the "lowest" leg. This script adds the others: for each leg it

1. derives the inputs: ``requirements-dev.txt`` with every ``apache-airflow*`` pin replaced (Airflow by
   the leg's specifier, providers unpinned so the resolver picks versions that accept that Airflow),
   ``constraints.txt`` less its ``apache-airflow*`` lines (everything else stays as pinned), and the
   project itself (so the package's own dependency spec must admit that Airflow);
2. resolves them with ``uv pip compile`` into ``.tmp/compat/<airflow version>/requirements.lock``
   (pre-releases allowed for ``apache-airflow`` only);
3. syncs ``.tmp/compat/<airflow version>/venv`` to that lock (skipped when unchanged);
4. runs ``pytest -m "not e2e"`` there with its own ``AIRFLOW_HOME`` and writes ``result.json``.

Legs: ``3.4`` (the newest release of that line, pre-releases included), an exact version ``3.3.2``,
``lowest`` (the floor of ``apache-airflow`` in ``pyproject.toml``), or ``floors``: that Airflow with the
providers ``pyproject.toml`` declares at the lowest versions the resolver can install
(``--resolution lowest-direct``; the rest of the set stays as pinned), in ``.tmp/compat/<version>-floors/``.
Run it with ``make compat`` (``make compat COMPAT_AIRFLOW="lowest floors 3.4"`` for all three).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".tmp" / "compat"
AIRFLOW_PREFIX = "apache-airflow"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def airflow_floor(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The lowest ``apache-airflow`` the package declares (its ``>=`` bound)."""
    for requirement in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        if _normalize(_NAME.match(requirement).group(1)) == AIRFLOW_PREFIX:
            floor = re.search(r">=\s*([0-9][^,;\s]*)", requirement)
            if floor:
                return floor.group(1)
            raise SystemExit(f"compat: pyproject.toml declares {requirement!r} with no >= floor")
    raise SystemExit("compat: pyproject.toml does not depend on apache-airflow")


def declared_airflow(pyproject: Path = ROOT / "pyproject.toml") -> set[str]:
    """The ``apache-airflow*`` distributions the package depends on (extras not included)."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    names = {_normalize(_NAME.match(requirement).group(1)) for requirement in dependencies}
    return {name for name in names if name == AIRFLOW_PREFIX or name.startswith(AIRFLOW_PREFIX + "-")}


def airflow_specifier(leg: str) -> str:
    """``3.4`` -> the newest of that line; ``3.3.2`` / ``3.4.0b2`` -> exactly that; ``lowest`` / ``floors``
    -> the floor."""
    if leg in ("lowest", "floors"):
        return f"{AIRFLOW_PREFIX}=={airflow_floor()}"
    line = re.fullmatch(r"(\d+)\.(\d+)", leg)
    if line:
        major, minor = map(int, line.groups())
        return f"{AIRFLOW_PREFIX}>={major}.{minor}.0a0,<{major}.{minor + 1}"
    if re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", leg):
        return f"{AIRFLOW_PREFIX}=={leg}"
    raise SystemExit(f"compat: leg {leg!r} is not 'lowest', 'floors', a line like '3.4' or a version like '3.3.2'")


def _requirement_lines(path: Path) -> list[str]:
    """The lines of a requirements file, ``-r`` includes inlined (comments and blanks dropped)."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            lines += _requirement_lines(path.parent / line.split(None, 1)[1])
        else:
            lines.append(line)
    return lines


def derive_inputs(specifier: str, root: Path = ROOT, *, floors: bool = False) -> tuple[str, str]:
    """(requirements, constraints) for one leg; see the module docstring.

    Every ``apache-airflow*`` pin is freed, or with ``floors`` only those of the distributions the package
    declares (the others, e.g. the e2e suite's celery provider, stay as pinned).
    """
    freed = declared_airflow(root / "pyproject.toml") if floors else None

    def is_freed(name: str) -> bool:
        return name.startswith(AIRFLOW_PREFIX) if freed is None else name in freed

    requirements = [specifier]
    for line in _requirement_lines(root / "requirements-dev.txt"):
        match = _NAME.match(line)
        name = _normalize(match.group(1)) if match and not line.startswith("-") else ""
        if name == AIRFLOW_PREFIX:
            continue
        if is_freed(name):
            line = match.group(1) + (match.group(2) or "")
        requirements.append(line)
    requirements.append(f"-e {root}")
    constraints = [
        line
        for line in _requirement_lines(root / "constraints.txt")
        if not is_freed(_normalize(_NAME.match(line).group(1)))
    ]
    return "\n".join(requirements) + "\n", "\n".join(constraints) + "\n"


def locked_versions(lock: str) -> dict[str, str]:
    """Name -> version of every ``name==version`` line of a ``uv pip compile`` output."""
    pins = {}
    for line in lock.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", line)
        if match:
            pins[_normalize(match.group(1))] = match.group(2)
    return pins


def junit_counts(path: Path) -> dict[str, int]:
    """passed / failed / errors / skipped from pytest's JUnit XML."""
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total, failed, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    return {"passed": total - failed - errors - skipped, "failed": failed, "errors": errors, "skipped": skipped}


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    try:
        from uv import find_uv_bin
    except ImportError:
        raise SystemExit("compat: needs uv (run it through `make compat`, whose bootstrap provides it)") from None
    return [find_uv_bin()]


def _run(cmd: list[str], **kwargs) -> None:
    print("compat: $ " + shlex.join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


@dataclass
class Leg:
    leg: str
    specifier: str
    floors: bool = False
    airflow: str = ""
    providers: dict[str, str] = field(default_factory=dict)
    python: str = ""
    resolve_s: float = 0.0
    install_s: float = 0.0
    suite_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def prepare(leg: Leg, uv: list[str]) -> Path:
    """Resolve the leg's set and sync its venv; returns the leg's directory."""
    work = OUT / "inputs"
    work.mkdir(parents=True, exist_ok=True)
    requirements, constraints = derive_inputs(leg.specifier, floors=leg.floors)
    (work / "requirements.in").write_text(requirements)
    (work / "constraints.txt").write_text(constraints)
    python = sys.executable
    started = time.monotonic()
    # uv prefers the versions of an existing output file: a leg's lock must not steer the next leg's resolution.
    (work / "requirements.lock").unlink(missing_ok=True)
    inputs = ["-c", work / "constraints.txt", work / "requirements.in", "-o", work / "requirements.lock"]
    prerelease = ["--prerelease-package", f"{AIRFLOW_PREFIX}=allow"]
    if leg.floors:
        prerelease += ["--resolution", "lowest-direct"]
    _run([*uv, "pip", "compile", "--quiet", "--python", python, *prerelease, "--no-header", "--no-annotate", *inputs])
    leg.resolve_s = time.monotonic() - started
    lock = (work / "requirements.lock").read_text()
    pins = locked_versions(lock)
    leg.airflow = pins[AIRFLOW_PREFIX]
    leg.providers = {k: v for k, v in sorted(pins.items()) if k.startswith(AIRFLOW_PREFIX + "-providers-")}
    leg_dir = OUT / (leg.airflow + ("-floors" if leg.floors else ""))
    leg_dir.mkdir(parents=True, exist_ok=True)
    (leg_dir / "requirements.lock").write_text(lock)
    venv = leg_dir / "venv"
    stamp = venv / ".lock.sha256"
    want = hashlib.sha256(lock.encode()).hexdigest()
    started = time.monotonic()
    if not (venv / "bin" / "python").exists() or not stamp.exists() or stamp.read_text() != want:
        shutil.rmtree(venv, ignore_errors=True)
        _run([*uv, "venv", "--quiet", "--python", python, venv])
        sync = ["--compile-bytecode", "--python", venv / "bin" / "python", leg_dir / "requirements.lock"]
        _run([*uv, "pip", "sync", "--quiet", *sync])
        stamp.write_text(want)
    else:
        print(f"compat: {venv} matches {leg_dir / 'requirements.lock'}; not reinstalled", flush=True)
    leg.install_s = time.monotonic() - started
    leg.python = subprocess.run(
        [venv / "bin" / "python", "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return leg_dir


def run_suite(leg: Leg, leg_dir: Path, pytest_args: list[str]) -> None:
    venv = leg_dir / "venv"
    home = leg_dir / "airflow-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        PYTHONPATH=f"{ROOT / 'plugins'}{os.pathsep}{ROOT}",
    )
    junit = leg_dir / "junit.xml"
    junit.unlink(missing_ok=True)
    cmd = [venv / "bin" / "python", "-m", "pytest", "-m", "not e2e", f"--junitxml={junit}", *pytest_args]
    print(f"compat: Airflow {leg.airflow}: {shlex.join(str(c) for c in cmd)}", flush=True)
    started = time.monotonic()
    leg.exit_code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    leg.suite_s = time.monotonic() - started
    if junit.exists():
        leg.counts = junit_counts(junit)
    if leg.exit_code == 5 or not leg.counts.get("passed"):
        print(f"compat: Airflow {leg.airflow}: no test passed (pytest exit {leg.exit_code}): failing", flush=True)
        leg.exit_code = leg.exit_code or 1


def table(legs: list[Leg]) -> str:
    rows = [
        "| Airflow | providers | Python | suites | install | suite | result |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for leg in legs:
        providers = ", ".join(f"{k.removeprefix(AIRFLOW_PREFIX + '-providers-')} {v}" for k, v in leg.providers.items())
        c = leg.counts
        failed = c.get("failed", 0) + c.get("errors", 0)
        result = f"{c.get('passed', 0)} passed, {failed} failed, {c.get('skipped', 0)} skipped or xfailed"
        name = leg.airflow + (" (provider floors)" if leg.floors else "")
        rows.append(
            f'| {name} | {providers} | {leg.python} | unit + integration (`-m "not e2e"`) '
            f"| {leg.install_s:.0f} s | {leg.suite_s:.0f} s | {result} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.compat", description=__doc__.split("\n\n")[0])
    parser.add_argument("legs", nargs="*", default=["3.4"], help="'lowest', 'floors', a line like 3.4, or a version")
    parser.add_argument("--pytest-args", default=os.environ.get("PYTEST_ARGS", "-q"), help="extra pytest arguments")
    args = parser.parse_args(argv)
    uv = _uv()
    legs = [Leg(leg, airflow_specifier(leg), floors=leg == "floors") for leg in args.legs]
    for leg in legs:
        leg_dir = prepare(leg, uv)
        run_suite(leg, leg_dir, shlex.split(args.pytest_args))
        (leg_dir / "result.json").write_text(json.dumps(vars(leg), indent=2) + "\n")
    report = table(legs)
    (OUT / "report.md").write_text(report + "\n")
    print("\n" + report, flush=True)
    failed = [leg.airflow for leg in legs if not leg.ok]
    if failed:
        print(f"compat: failed on Airflow {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
