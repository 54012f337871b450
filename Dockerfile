# Airflow 3.3.2 with the symbl-airflow provider and the Symbl sandbox baked in.
#
# Used by docker-compose.yaml for every Airflow service and for the sandbox. Dependencies are baked in
# here rather than installed at start-up with _PIP_ADDITIONAL_REQUIREMENTS (which re-installs on
# every container start). The Python 3.11 variant matches the interpreter the test suite and
# constraints.txt were resolved on; keep the Airflow version in step with requirements.txt.
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/airflow

# Runtime pins (requirements.txt), which include the media extra (PyAV, a static ffmpeg): the workers convert
# other containers and cut long recordings with it, and the sandbox reads captions and durations with it.
# Installing "apache-airflow==${AIRFLOW_VERSION}" alongside keeps pip from moving Airflow itself.
COPY --chown=airflow:0 requirements.txt /tmp/symbl-airflow/requirements.txt
RUN pip install --no-cache-dir \
        "apache-airflow==${AIRFLOW_VERSION}" \
        -r /tmp/symbl-airflow/requirements.txt

# The project goes to /opt/airflow itself so that the editable install maps the package
# `symbl_airflow` to /opt/airflow/plugins/symbl_airflow: the copy baked here, or the ./plugins bind
# mount of docker-compose.yaml when it is mounted over it (edits then apply without a rebuild).
# The install registers the `apache_airflow_provider` entry point (the Symbl.ai connection type).
COPY --chown=airflow:0 pyproject.toml README.md LICENSE /opt/airflow/
COPY --chown=airflow:0 symbl_sandbox/ /opt/airflow/symbl_sandbox/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
# scripts/seed_samples.py (the compose seed-samples service) and the demo's sample conversations it uploads.
COPY --chown=airflow:0 scripts/__init__.py scripts/demo.py scripts/seed_samples.py /opt/airflow/scripts/
RUN pip install --no-cache-dir --no-deps -e /opt/airflow \
    && python -c "import symbl_airflow, symbl_sandbox; print('symbl-airflow', symbl_airflow.__version__)"
