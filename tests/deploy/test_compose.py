"""Static checks of docker-compose.yaml, Dockerfile and .env.example (no Docker engine needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
SERVICES = ("postgres", "redis", "minio", "minio-init", "seed-samples", "symbl-sandbox", *AIRFLOW_SERVICES)
#: Run once and exit; the others wait for them with ``service_completed_successfully``.
ONE_SHOT = ("airflow-init", "minio-init", "seed-samples")
#: The local stand-ins, behind the "local" profile (on by default through .env.example).
LOCAL_PROFILE = ("minio", "minio-init", "seed-samples", "symbl-sandbox")
#: Interactive helper of the official file (profile ``debug``): no command loop to health-check.
NO_HEALTHCHECK = (*ONE_SHOT, "airflow-cli")
REQUIRED_ENV = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW_CONN_SYMBL_DEFAULT",
    "AIRFLOW_CONN_AWS_DEFAULT",
)
#: ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``, ``${NAME:?error}``; ``$${...}`` is an escape.
VAR_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def _default(value: str) -> str:
    """The default of ``${VAR:-default}`` (what the stack uses when .env does not set VAR)."""
    match = VAR_RE.fullmatch(value.strip())
    assert match and match.group(2) in (":-", "-"), f"{value!r} is not ${{VAR:-default}}"
    return match.group(3)


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def _mounts(service: dict) -> dict[str, str]:
    """Container path -> host path of the bind mounts (``${AIRFLOW_PROJ_DIR:-.}`` resolved to ``.``)."""
    mounts = {}
    for volume in service.get("volumes") or []:
        host, _, container = VAR_RE.sub(lambda m: m.group(3) or "", volume).partition(":")
        mounts[container.split(":")[0]] = host
    return mounts


def _depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _required_deps(service: dict) -> set[str]:
    """Dependencies Compose refuses to start without (``required: false`` ones are skipped when disabled)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return set(deps)
    return {name for name, spec in deps.items() if (spec or {}).get("required", True)}


def _enabled(services: dict, profiles: set[str]) -> set[str]:
    """The services ``docker compose up`` starts with these profiles active (as Compose resolves them)."""
    return {name for name, svc in services.items() if not svc.get("profiles") or set(svc["profiles"]) & profiles}


def _command_text(service: dict) -> str:
    command = service.get("command")
    return " ".join(command) if isinstance(command, list) else str(command)


def _healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


# ------------------------------------------------------------------------------------------ services
def test_services_exist(services):
    missing = [name for name in SERVICES if name not in services]
    assert not missing


def test_every_service_has_a_command(services):
    assert [name for name, svc in services.items() if not svc.get("command")] == []


def test_long_running_services_have_a_healthcheck(services):
    for name, svc in services.items():
        if name in NO_HEALTHCHECK:
            continue
        check = svc.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL") if isinstance(check["test"], list) else True
        assert svc.get("restart") in ("always", "unless-stopped"), f"{name} is not restarted"


def test_one_shots_are_not_restarted(services):
    for name in ONE_SHOT:
        assert services[name].get("restart", "no") == "no", name


def test_airflow_commands(services):
    expected = {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }
    assert {name: services[name]["command"] for name in expected} == expected


def test_airflow_environment(services):
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        missing = [key for key in REQUIRED_ENV if key not in env]
        assert not missing, f"{name} lacks {missing}"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
        assert urlparse(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
        api = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert (api.hostname, api.port, api.path) == ("airflow-apiserver", 8080, "/execution/")
        assert env.get("AIRFLOW__CORE__LOAD_EXAMPLES") == "false"
    assert _env(services["airflow-worker"])["DUMB_INIT_SETSID"] == "0"


def test_default_symbl_connection_points_at_the_sandbox(services):
    from airflow.models.connection import Connection

    from symbl_airflow.hooks import normalize_base_url

    uri = _default(_env(services["airflow-worker"])["AIRFLOW_CONN_SYMBL_DEFAULT"])
    conn = Connection(conn_id="symbl_default", uri=uri)
    assert conn.conn_type == "symbl"
    base_url = normalize_base_url(conn.host, conn.schema, conn.port)
    assert base_url == "http://symbl-sandbox:8900"
    sandbox = services["symbl-sandbox"]
    assert _command_text(sandbox) == "python -m symbl_sandbox --host 0.0.0.0 --port 8900"
    assert "http://localhost:8900/sandbox/health" in _healthcheck_text(sandbox)
    # The connection's App ID / App Secret are a pair the sandbox accepts by default.
    accepted = _default(_env(sandbox)["SYMBL_SANDBOX_CREDENTIALS"])
    assert f"{conn.login}:{conn.password}" in accepted.split(",")


def test_default_aws_connection_points_at_minio(services):
    from airflow.models.connection import Connection

    conn = Connection(conn_id="aws_default", uri=_default(_env(services["airflow-worker"])["AIRFLOW_CONN_AWS_DEFAULT"]))
    assert conn.conn_type == "aws"
    endpoint = urlparse(conn.extra_dejson["endpoint_url"])
    assert (endpoint.hostname, endpoint.port) == ("minio", 9000)
    assert conn.extra_dejson.get("region_name")
    minio_env = _env(services["minio"])
    assert conn.login == _default(minio_env["MINIO_ROOT_USER"])
    assert conn.password == _default(minio_env["MINIO_ROOT_PASSWORD"])
    assert len(conn.password) >= 8  # MinIO refuses shorter root passwords


def test_minio_and_bucket_init(services):
    minio, init = services["minio"], services["minio-init"]
    assert minio["image"].startswith("minio/minio:RELEASE.")
    assert init["image"].startswith("minio/mc:RELEASE.")
    assert _depends_on(init) == {"minio": "service_healthy"}
    script = _command_text(init)
    assert "mc mb --ignore-existing" in script and "http://minio:9000" in script
    # The bucket defaults to the one the example DAG uses.
    bucket = _default(_env(init)["S3_BUCKET"])
    assert _env(services["airflow-worker"])["SYMBL_PIPELINE_ASSET"] == "${SYMBL_PIPELINE_ASSET:-symbl_insights}"
    assert bucket == "symbl-demo"  # also the DAG's own default (test_the_dag_takes_its_bucket_default_...)


def test_project_mounts(services):
    for name in ("airflow-triggerer", "airflow-worker", "airflow-scheduler", "airflow-dag-processor"):
        mounts = _mounts(services[name])
        assert mounts.get("/opt/airflow/plugins") == "./plugins", name
        assert mounts.get("/opt/airflow/dags") == "./dags", name
        assert mounts.get("/opt/airflow/logs") == "./logs", name
        assert mounts.get("/opt/airflow/config") == "./config", name


def test_depends_on_reference_existing_services_with_valid_conditions(services):
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, svc in services.items():
        for dep, condition in _depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert condition in conditions, f"{name} -> {dep}: {condition}"
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} health but it has no check"
            if condition == "service_completed_successfully":
                assert dep in ONE_SHOT, f"{name} waits for {dep} to exit but it is long-running"
    worker = _depends_on(services["airflow-worker"])
    assert worker["airflow-apiserver"] == "service_healthy"
    assert _depends_on(services["seed-samples"]) == {"minio-init": "service_completed_successfully"}
    assert worker["airflow-init"] == "service_completed_successfully"
    assert worker["minio-init"] == "service_completed_successfully"
    assert worker["symbl-sandbox"] == "service_healthy"
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        deps = _depends_on(services[name])
        assert deps["airflow-init"] == "service_completed_successfully", name
        assert deps["postgres"] == deps["redis"] == "service_healthy", name


def test_worker_can_be_scaled(services):
    worker = services["airflow-worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_project_image_is_built_from_the_dockerfile(services):
    images = set()
    for name in (*AIRFLOW_SERVICES, "symbl-sandbox", "seed-samples"):
        assert services[name].get("build") == ".", name
        images.add(services[name]["image"])
    assert len(images) == 1


def test_init_creates_the_symbl_pool_with_deferred_tasks(services):
    script = _command_text(services["airflow-init"])
    assert "airflow pools set" in script and "--include-deferred" in script
    env = _env(services["airflow-init"])
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert services["airflow-init"]["user"] == "0:0"


# ------------------------------------------------------------------------------------------ variables
def _documented_vars() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def _strings(node) -> list[str]:
    """Every string of the parsed file, keys included (comments are not interpolated by Compose)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def _variables(compose) -> list[re.Match]:
    return [m for text in _strings(compose) for m in VAR_RE.finditer(text)]


def test_variables_are_found(compose):
    names = {m.group(1) for m in _variables(compose)}
    assert {"AIRFLOW_UID", "AIRFLOW_CONN_SYMBL_DEFAULT", "MINIO_ROOT_PASSWORD", "SYMBL_POOL"} <= names


def test_every_variable_has_a_default_or_is_documented(compose):
    documented = _documented_vars()
    undocumented = sorted({m.group(1) for m in _variables(compose) if m.group(2) not in (":-", "-")} - documented)
    assert undocumented == []


#: Variables Compose itself reads from .env (not interpolated in the file).
COMPOSE_OWN = {"COMPOSE_PROFILES"}


def test_env_example_documents_only_variables_compose_uses(compose):
    used = {m.group(1) for m in _variables(compose)}
    assert sorted(_documented_vars() - used - COMPOSE_OWN) == []


def test_env_example_holds_no_real_symbl_secret():
    text = ENV_EXAMPLE.read_text()
    for line in text.splitlines():
        if line.startswith("AIRFLOW_CONN_SYMBL_DEFAULT="):
            pytest.fail("the Symbl connection must stay commented out in .env.example")
    assert '"login": "<App ID>", "password": "<App Secret>"' in text


# ------------------------------------------------------------------------------------------ Dockerfile
def test_dockerfile_base_image_matches_the_airflow_pin():
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert len(froms) == 1
    image, _, tag = froms[0].partition(":")
    assert image == "apache/airflow"
    assert tag.split("-")[0] == _pins(ROOT / "requirements.txt")["apache-airflow"]


def test_dockerfile_installs_requirements_sandbox_deps_and_the_provider():
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install[^\n]*(\\\n[^\n]*)*-r [^\s]*requirements\.txt", text)
    runtime_pins = _pins(ROOT / "requirements.txt")  # what the image installs: media extra included
    for package in ("av", "imageio-ffmpeg"):
        assert package in runtime_pins, package
    for source in ("pyproject.toml", "symbl_sandbox/", "plugins/"):
        assert re.search(rf"^COPY .*\b{re.escape(source)}", text, flags=re.MULTILINE), source
    assert "pip install --no-cache-dir --no-deps -e /opt/airflow" in text


def test_editable_install_maps_the_provider_onto_the_plugins_mount():
    """pyproject's package-dir, resolved from /opt/airflow, is where compose mounts ./plugins."""
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = pyproject["tool"]["setuptools"]["package-dir"]
    assert f"/opt/airflow/{package_dir['symbl_airflow']}" == "/opt/airflow/plugins/symbl_airflow"
    assert "provider_info" in pyproject["project"]["entry-points"]["apache_airflow_provider"]
    assert re.search(r"^COPY .*plugins/ /opt/airflow/plugins/", DOCKERFILE.read_text(), flags=re.MULTILINE)


# ------------------------------------------------------------------------------------------ docker compose
def test_docker_compose_config(tmp_path):
    """``docker compose config`` resolves the file (interpolation, anchors, schema); needs the plugin only."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    proc = subprocess.run(
        [docker, "compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    if proc.returncode != 0 and re.search(
        r"unknown (shorthand flag|command|flag)|is not a docker command|Cannot connect to the Docker daemon",
        proc.stdout + proc.stderr,
    ):
        reason = (proc.stderr or proc.stdout).strip().splitlines()[0]
        pytest.skip(f"docker compose unavailable here: {reason}")
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------ issue #13
def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_local_stand_ins_are_a_profile_on_by_default(services):
    for name in LOCAL_PROFILE:
        assert services[name].get("profiles") == ["local"], name
    for name in ("postgres", "redis", *AIRFLOW_SERVICES):
        assert not services[name].get("profiles"), name
    assert _env_example()["COMPOSE_PROFILES"] == "local"  # `cp .env.example .env && up`: sandbox, MinIO, samples


@pytest.mark.parametrize("profiles", [set(), {"local"}], ids=["real_api", "local"])
def test_every_required_dependency_is_started(services, profiles):
    enabled = _enabled(services, profiles)
    for name in enabled:
        missing = _required_deps(services[name]) - enabled
        assert not missing, f"{name} would wait for disabled {missing} with COMPOSE_PROFILES={','.join(profiles)}"


def test_pointed_at_the_real_api_nothing_waits_for_the_sandbox(services):
    enabled = _enabled(services, set())
    assert enabled.isdisjoint(LOCAL_PROFILE)
    for name in AIRFLOW_SERVICES:
        assert _required_deps(services[name]).isdisjoint(LOCAL_PROFILE), name
    # ... while with the local profile the worker and triggerer still wait for a healthy sandbox.
    assert _depends_on(services["airflow-worker"])["symbl-sandbox"] == "service_healthy"
    assert _depends_on(services["airflow-triggerer"])["symbl-sandbox"] == "service_healthy"


def test_published_ports_listen_on_loopback_only(services):
    published = [(name, port) for name, svc in services.items() for port in svc.get("ports") or []]
    assert {name for name, _ in published} >= {"airflow-apiserver", "minio", "symbl-sandbox"}
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def _services_referencing(services: dict, variable: str) -> set[str]:
    pattern = re.compile(r"\$\{" + re.escape(variable) + r"\b")
    return {name for name, svc in services.items() if any(pattern.search(s) for s in _strings(svc))}


def test_secrets_reach_only_the_services_that_use_them(compose, services):
    assert not any("env_file" in svc for svc in services.values())
    assert "env_file" not in compose["x-airflow-common"]
    assert _services_referencing(services, "MINIO_ROOT_PASSWORD") == {"minio", "minio-init", "seed-samples"}
    assert _services_referencing(services, "_AIRFLOW_WWW_USER_PASSWORD") == {"airflow-init"}
    assert _services_referencing(services, "SYMBL_SANDBOX_CREDENTIALS") == {"symbl-sandbox"}
    airflow = set(AIRFLOW_SERVICES) | {"airflow-cli", "flower"}
    assert _services_referencing(services, "AIRFLOW_CONN_SYMBL_DEFAULT") == airflow
    assert _services_referencing(services, "AIRFLOW__CORE__FERNET_KEY") == airflow


def test_bucket_from_env_reaches_the_dag_the_bucket_and_the_seeder(services):
    for name in AIRFLOW_SERVICES:
        assert _env(services[name])["SYMBL_PIPELINE_BUCKET"] == "${S3_BUCKET:-symbl-demo}", name
    assert _env(services["minio-init"])["S3_BUCKET"] == "${S3_BUCKET:-symbl-demo}"
    assert "${S3_BUCKET:-symbl-demo}" in services["seed-samples"]["command"]


def _dag_bucket_default(env: dict[str, str]) -> str:
    script = (
        "import os, sys; sys.path[:0] = [os.path.join(sys.argv[1], 'plugins'), sys.argv[1]];"
        "from airflow.sdk.definitions.dag import DAG;"
        "import runpy; ns = runpy.run_path(os.path.join(sys.argv[1], 'dags', 'symbl_video_pipeline.py'));"
        "dags = [v for v in ns.values() if isinstance(v, DAG)];"
        "print('BUCKET', dags[0].params['bucket'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split("BUCKET ", 1)[1].strip()


def test_the_dag_takes_its_bucket_default_from_the_environment(services):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMBL_PIPELINE_")}
    assert _dag_bucket_default({**env, "SYMBL_PIPELINE_BUCKET": "bucket-from-dotenv"}) == "bucket-from-dotenv"
    # Unset, the DAG and compose agree on the default.
    assert _dag_bucket_default(env) == _default(_env(services["airflow-worker"])["SYMBL_PIPELINE_BUCKET"])


def test_seed_samples_runs_the_repo_script_baked_into_the_image(services):
    seed = services["seed-samples"]
    assert seed["entrypoint"] == ["python", "-m", "scripts.seed_samples"]
    assert "http://minio:9000" in seed["command"]
    env = _env(seed)
    assert env["AWS_ACCESS_KEY_ID"] == "${MINIO_ROOT_USER:-minioadmin}"
    assert env["AWS_SECRET_ACCESS_KEY"] == "${MINIO_ROOT_PASSWORD:-minioadmin}"
    copies = re.findall(r"^COPY .*$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert any("scripts/seed_samples.py" in c and "scripts/demo.py" in c and "scripts/__init__.py" in c for c in copies)


def test_sandbox_summary_links_point_where_the_browser_reaches_it(services):
    sandbox = services["symbl-sandbox"]
    assert _env(sandbox)["SYMBL_SANDBOX_PUBLIC_URL"] == "http://127.0.0.1:${SYMBL_SANDBOX_PORT:-8900}"
    assert "127.0.0.1:${SYMBL_SANDBOX_PORT:-8900}:8900" in sandbox["ports"]
