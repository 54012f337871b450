"""The plugin's import graph has no cycle, and every documented import path works.

The graph counts every import statement of a module, lazy ones inside functions too (a lazy import
hides a cycle, it does not remove it), but not ``if TYPE_CHECKING:`` blocks.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "symbl_airflow"
#: Old paths that forward to the new layout; they import their target and nothing imports them.
SHIMS = {"symbl_airflow.ledger", "symbl_airflow.plan", "symbl_airflow.ledger_cli", "symbl_airflow.insights"}


def _module_name(path: Path) -> str:
    parts = ["symbl_airflow", *path.relative_to(PLUGIN).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".")[: len(name.split(".")) - child.level + (1 if is_package else 0)]
                    module = ".".join([*base, child.module] if child.module else base)
                else:
                    module = child.module or ""
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PLUGIN.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        imported = _imports(ast.parse(path.read_text()), name, path.name == "__init__.py")
        graph[name] = {m for m in imported if m in paths and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodule is how re-exports work, not a cycle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_the_plugin_has_no_import_cycle():
    graph = _graph()
    assert len(graph) > 30, sorted(graph)  # the walk found the plugin
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_nothing_in_the_plugin_imports_the_old_paths():
    graph = _graph()
    users = {name: deps & SHIMS for name, deps in graph.items() if deps & SHIMS and name not in SHIMS}
    # the example-pipeline support (owned elsewhere) may still use the documented paths
    assert set(users) <= {"symbl_airflow.discovery", "symbl_airflow.pipeline"}, users


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("symbl_airflow", "SymblAppendVideoOperator"),
        ("symbl_airflow", "SymblInsightsOperator"),
        ("symbl_airflow", "SymblJobSensor"),
        ("symbl_airflow", "SymblJobTrigger"),
        ("symbl_airflow", "SymblHook"),
        ("symbl_airflow.operators", "SymblAppendVideoOperator"),
        ("symbl_airflow.operators", "SymblInsightsOperator"),
        ("symbl_airflow.sensors", "SymblJobSensor"),
        ("symbl_airflow.triggers", "SymblJobTrigger"),
        ("symbl_airflow.hooks", "SymblHook"),
        ("symbl_airflow.hooks", "SymblAsyncHook"),
        ("symbl_airflow.ledger", "S3LedgerStore"),
        ("symbl_airflow.ledger", "Ledger"),
        ("symbl_airflow.ledger", "acquire"),
        ("symbl_airflow.plan", "plan_appends"),
        ("symbl_airflow.insights", "SymblInsightsOperator"),
        ("symbl_airflow.ledger_cli", "main"),
    ],
)
def test_documented_import_paths(module, name):
    assert getattr(importlib.import_module(module), name) is not None


def test_the_same_class_under_every_path():
    import symbl_airflow
    from symbl_airflow.operators.append import SymblAppendVideoOperator
    from symbl_airflow.triggers.job import SymblJobTrigger

    assert symbl_airflow.SymblAppendVideoOperator is SymblAppendVideoOperator
    assert importlib.import_module("symbl_airflow.triggers").SymblJobTrigger is SymblJobTrigger
    assert SymblJobTrigger(job_ids="j").serialize()[0] == "symbl_airflow.triggers.SymblJobTrigger"


def test_no_main_module_under_plugins():
    """Airflow's plugin loader imports every file under plugins/ by its stem: a ``__main__.py`` would
    replace the scheduler's own ``__main__`` in ``sys.modules`` and run (so the CLI's entry is the
    ``if __name__ == "__main__"`` block of ``symbl_airflow/ledger.py``)."""
    assert not list(PLUGIN.rglob("__main__.py"))


def test_the_ledger_cli_runs_as_a_module_and_loads_the_ledger_once():
    entry = "symbl_airflow.ledger"
    probe = (
        "import runpy, sys; sys.argv = ['x', '--help']\n"
        "try:\n"
        f"    runpy.run_module({entry!r}, run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "names = [n for n in sys.modules if n.endswith('ledger')]\n"
        "print('LOADED', sorted(names))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "show" in proc.stdout and "resolve" in proc.stdout
    loaded = ast.literal_eval(proc.stdout.split("LOADED", 1)[1].strip())
    assert loaded.count("symbl_airflow.appends.ledger") == 1
    assert "__main__" not in loaded
