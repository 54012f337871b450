"""Provider info as Airflow 3.3 reads it: the UI's connection form, modules, extra links."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import symbl_airflow
from symbl_airflow.get_provider_info import get_provider_info

pytestmark = pytest.mark.unit

#: What the api-server's connection form endpoint (/ui/connections/hook_meta) answers for "symbl".
_HOOK_META = """
import json, warnings
warnings.simplefilter("ignore")
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
(meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "symbl"]
print("RESULT " + json.dumps(meta.model_dump(mode="json")))
"""


def test_connection_form_offers_symbl_ai_with_app_id_and_secret():
    # A fresh interpreter: the providers manager caches what it discovered in-process.
    proc = subprocess.run([sys.executable, "-c", _HOOK_META], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert meta["hook_name"] == "Symbl.ai"
    assert meta["hook_class_name"] == "symbl_airflow.hooks.SymblHook"
    fields = meta["standard_fields"]
    assert fields["login"]["title"] == "App ID"
    assert fields["password"]["title"] == "App Secret"
    assert fields["host"]["title"] == "Base URL"
    assert fields["url_schema"]["hidden"] and fields["port"]["hidden"]


def test_provider_info_matches_airflows_schema():
    import jsonschema
    from airflow import providers_manager

    schema = json.loads((Path(providers_manager.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)
    assert get_provider_info()["versions"] == [symbl_airflow.__version__]


def _modules_defining(base: type) -> set[str]:
    found = set()
    for info in pkgutil.walk_packages(symbl_airflow.__path__, "symbl_airflow."):
        if info.name.endswith(("__main__", "_cli")):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == info.name and issubclass(obj, base) and obj is not base:
                found.add(info.name)
    return found


def _listed(section: str) -> set[str]:
    return {m for entry in get_provider_info()[section] for m in entry["python-modules"]}


def test_every_operator_sensor_trigger_and_hook_module_is_listed():
    from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator
    from airflow.triggers.base import BaseTrigger

    sensors = _modules_defining(BaseSensorOperator)
    assert _listed("sensors") == sensors == {"symbl_airflow.sensors.job"}
    assert _listed("operators") == _modules_defining(BaseOperator) - sensors
    assert "symbl_airflow.operators.insights" in _listed("operators")
    assert _listed("triggers") == _modules_defining(BaseTrigger)
    assert _listed("hooks") <= {m.rsplit(".", 1)[0] if m.count(".") > 1 else m for m in _modules_defining(BaseHook)} | {
        "symbl_airflow.hooks"
    }
    hook_path = get_provider_info()["connection-types"][0]["hook-class-name"]
    module, _, name = hook_path.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), name), BaseHook)


def test_extra_links_are_registered_and_on_the_operators():
    from airflow.sdk import BaseOperatorLink

    from symbl_airflow.insights import SymblInsightsOperator
    from symbl_airflow.links import SYMBL_CONVERSATION_LINK_NAME, SymblConversationLink
    from symbl_airflow.sensors import SymblJobSensor

    (path,) = get_provider_info()["extra-links"]
    module, _, name = path.rpartition(".")
    link_class = getattr(importlib.import_module(module), name)
    assert link_class is SymblConversationLink and issubclass(link_class, BaseOperatorLink)
    for operator in (SymblInsightsOperator, SymblJobSensor):
        assert [link.name for link in operator.operator_extra_links] == [SYMBL_CONVERSATION_LINK_NAME], operator


def test_append_operator_has_the_link():
    from symbl_airflow.links import SYMBL_CONVERSATION_LINK_NAME
    from symbl_airflow.operators import SymblAppendVideoOperator

    assert [link.name for link in SymblAppendVideoOperator.operator_extra_links] == [SYMBL_CONVERSATION_LINK_NAME]
    assert hasattr(SymblAppendVideoOperator, "get_openlineage_facets_on_complete")
