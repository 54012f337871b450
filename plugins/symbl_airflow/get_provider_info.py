"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``).

Airflow reads this without importing the hooks (the connection form's label comes from
``hook-name`` here), so everything the UI shows must be spelled out in the dict.
"""

from __future__ import annotations


def get_provider_info() -> dict:
    from symbl_airflow.version import __version__

    return {
        "package-name": "symbl-airflow",
        "name": "Symbl.ai",
        "description": "Symbl.ai conversation intelligence: async video API, jobs and insights.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Symbl.ai",
                "external-doc-url": "https://docs.symbl.ai/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Symbl.ai", "python-modules": ["symbl_airflow.hooks"]}],
        "triggers": [{"integration-name": "Symbl.ai", "python-modules": ["symbl_airflow.triggers.job"]}],
        "operators": [
            {
                "integration-name": "Symbl.ai",
                "python-modules": ["symbl_airflow.operators.append", "symbl_airflow.operators.insights"],
            }
        ],
        "sensors": [{"integration-name": "Symbl.ai", "python-modules": ["symbl_airflow.sensors.job"]}],
        "connection-types": [
            {
                "hook-class-name": "symbl_airflow.hooks.SymblHook",
                "hook-name": "Symbl.ai",
                "connection-type": "symbl",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Base URL", "login": "App ID", "password": "App Secret"},
                    "placeholders": {
                        "host": "https://api.symbl.ai",
                        "login": "your Symbl App ID",
                        "password": "your Symbl App Secret",
                        "extra": '{"timeout": 300, "token_refresh_margin": 300}',
                    },
                },
            }
        ],
        "extra-links": ["symbl_airflow.links.SymblConversationLink"],
    }
