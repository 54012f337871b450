"""The installed package registers the ``symbl`` connection type with Airflow's providers manager."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symbl_airflow.hooks import SymblHook

pytestmark = pytest.mark.unit

_SCRIPT = """
import json, warnings
warnings.simplefilter("ignore")
from airflow.providers_manager import ProvidersManager
pm = ProvidersManager()
hook = pm.hooks["symbl"]
out = {
    "hook_class_name": hook.hook_class_name,
    "conn_id_attr": hook.connection_id_attribute_name,
    "hook_name": hook.hook_name,
    "package": hook.package_name,
    "field_behaviours": pm.field_behaviours.get("symbl"),
}
try:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    out["runtime_hook"] = ProvidersManagerTaskRuntime().hooks["symbl"].hook_class_name
except ImportError:
    out["runtime_hook"] = None
print("RESULT " + json.dumps(out))
"""


def test_providers_manager_lists_symbl():
    # A fresh interpreter: the providers manager caches what it discovered in-process.
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    info = json.loads(line[len("RESULT ") :])
    assert info["hook_class_name"] == "symbl_airflow.hooks.SymblHook"
    assert info["conn_id_attr"] == "symbl_conn_id"
    assert info["hook_name"] == "Symbl.ai"
    assert info["package"] == "symbl-airflow"
    assert info["runtime_hook"] == "symbl_airflow.hooks.SymblHook"
    # the declarative provider info and the hook's own method agree
    assert info["field_behaviours"] == SymblHook.get_ui_field_behaviour()


def test_every_plugin_package_is_packaged():
    """``pip install .`` must ship the hook package too (setuptools lists packages explicitly)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    packages = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    plugin = root / "plugins" / "symbl_airflow"
    found = {
        ".".join(("symbl_airflow", *init.parent.relative_to(plugin).parts)) for init in plugin.rglob("__init__.py")
    }
    assert found <= packages, f"not packaged: {sorted(found - packages)}"
