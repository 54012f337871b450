"""Shared fixtures: real servers on loopback (Symbl sandbox, moto S3) and a per-session Airflow home.

Environment is set at import time, before any test module imports Airflow, because Airflow reads
``AIRFLOW_HOME`` and its config once per process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="symbl-airflow-tests-"))
SANDBOX_APP_ID = "test-app-id"
SANDBOX_APP_SECRET = "test-app-secret-4f1c9a7e"

os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow-home")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# An empty DAGs folder: dag.test() re-parses its bundle on every call; tests load example DAGs explicitly.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_SESSION_DIR / "dags")
(_SESSION_DIR / "dags").mkdir()
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__CORE__PARALLELISM"] = "4"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_DIR / 'airflow.db'}"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _p in (str(ROOT / "plugins"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


from scripts.local_stack import start_s3, start_sandbox  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_token_cache():
    """The sandbox forgets tokens on reset, and token counts must be per test: start each without one."""
    from symbl_airflow.tokens import TOKEN_CACHE

    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()


@pytest.fixture
def submit(clean_sandbox, mp4):
    """``submit(seconds=1.0, conversation_id=None) -> SymblSubmission``: POST/PUT a real small MP4."""
    import io

    from symbl_airflow.hooks import SymblHook

    hook = SymblHook()

    def _submit(seconds: float = 1.0, conversation_id: str | None = None):
        data = mp4.make([("Alice", "Hello there."), ("Bob", "Hi Alice.")], seconds_per_cue=seconds / 2)
        return hook.submit_video(lambda: io.BytesIO(data), len(data), conversation_id=conversation_id)

    yield _submit
    hook.close()


@pytest.fixture(scope="session")
def sandbox():
    server = start_sandbox(_SESSION_DIR / "sandbox", app_id=SANDBOX_APP_ID, app_secret=SANDBOX_APP_SECRET)
    os.environ["AIRFLOW_CONN_SYMBL_DEFAULT"] = server.conn_json()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clean_sandbox(sandbox):
    sandbox.reset()
    yield sandbox


@pytest.fixture(scope="session")
def s3():
    server = start_s3(_SESSION_DIR / "s3")
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = server.conn_json()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3):
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


class Mp4Factory:
    """Makes small real MP4s (audio + optional mov_text captions), cached by arguments."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, bytes] = {}

    def make(self, cues=(("Alice", "Hello everyone."),), *, seconds_per_cue: float = 1.0, captions=True) -> bytes:
        from symbl_sandbox.samples import make_mp4

        key = json.dumps([list(map(list, cues)), seconds_per_cue, captions])
        if key not in self._cache:
            path = self.workdir / f"{uuid.uuid4().hex}.mp4"
            make_mp4(path, list(cues), seconds_per_cue=seconds_per_cue, captions=captions)
            self._cache[key] = path.read_bytes()
            path.unlink()
        return self._cache[key]


@pytest.fixture(scope="session")
def mp4():
    return Mp4Factory(_SESSION_DIR / "mp4")


@pytest.fixture(scope="session", autouse=True)
def airflow_db():
    """Migrate the session's SQLite metadata DB once so ``dag.test()`` works in any test."""
    env = {**os.environ}
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return Path(os.environ["AIRFLOW_HOME"])


def register_dag(dag) -> None:
    """Serialize a DAG built in a test into the metadata DB, as the DAG processor would.

    Airflow 3.3's ``dag.test()`` only runs DAGs it can find serialized in a bundle; DAGs defined
    inside test functions are in no bundle, so they are registered under the default one.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.flush()
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


@pytest.fixture
def run_dag():
    """``run_dag(dag, **test_kwargs) -> DagRun``: register the DAG, then ``dag.test()`` it."""

    def _run(dag, **kwargs):
        register_dag(dag)
        return dag.test(**kwargs)

    return _run


def _close_async_db_pool() -> None:
    """Close Airflow's async metadata-DB pool inside an event loop, before the process exits.

    From 3.4 the in-process execution API of ``dag.test()`` opens async sessions (its live-attempt check
    on each state change), and Airflow's atexit ``dispose_orm()`` closes that pool synchronously, which
    aiosqlite cannot do: it logs "Exception closing connection" with a MissingGreenlet traceback at exit.
    """
    import asyncio

    engine = getattr(sys.modules.get("airflow.settings"), "async_engine", None)
    if engine is not None:
        asyncio.run(engine.dispose())


def pytest_sessionfinish(session, exitstatus):
    _close_async_db_pool()
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def media_files():
    """``media_files(name) -> Path``: a real recording of a shape of tests/media_samples.py (made once)."""
    from tests.media_samples import MediaFiles

    return MediaFiles(_SESSION_DIR / "media-shapes")
