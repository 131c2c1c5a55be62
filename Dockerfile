# syntax=docker/dockerfile:1
# The code-location image: Dagster code server, run and step workers, `sands serve`, and the MLflow
# tracking server all run from it. Dependencies are pinned by docker/requirements.lock
# (`make lock`); the dbt manifest is parsed at build time, so pods never write to the image.
#
#   docker build -t registry.example.com/shifting-sands:1.0.0 .
#   docker build --build-arg WITH_JAVA=true -t registry.example.com/shifting-sands:1.0.0-spark .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG WITH_JAVA=false
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DO_NOT_TRACK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY docker/requirements.lock /tmp/requirements.lock
RUN pip install --no-deps -r /tmp/requirements.lock
WORKDIR /opt/sands
COPY pyproject.toml README.md ./
COPY sands sands
COPY assets assets
COPY resources resources
COPY dagster_project dagster_project
COPY dbt dbt
# Editable: the code stays in /opt/sands beside dbt/ (resources/dbt.py finds the project there).
RUN pip install --no-deps -e . \
    && rm -rf dbt/target dbt/logs \
    && cd dbt && dbt parse --profiles-dir . --target-path target --log-path /tmp/dbt-logs
# The Spark variant carries the Delta jars, so executors start offline (SANDS_SPARK_JARS).
RUN if [ "$WITH_JAVA" = "true" ]; then \
      apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
      && SANDS_SPARK_IVY=/tmp/ivy sands spark-jars /opt/sands/jars; \
    else mkdir -p /opt/sands/jars; fi

FROM ${PYTHON_IMAGE} AS runtime
ARG WITH_JAVA=false
RUN if [ "$WITH_JAVA" = "true" ]; then \
      apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --gid 10001 sands \
    && useradd --uid 10001 --gid sands --no-create-home --home-dir /var/lib/sands \
       --shell /usr/sbin/nologin sands
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/sands /opt/sands
# Writable state lives on volumes (SANDS_HOME, /tmp); the root filesystem can be read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    DAGSTER_DISABLE_TELEMETRY=1 \
    SANDS_HOME=/var/lib/sands \
    SANDS_SPARK_JARS=/opt/sands/jars \
    DBT_LOG_PATH=/tmp/dbt-logs \
    HOME=/var/lib/sands
WORKDIR /opt/sands
USER 10001:10001
EXPOSE 3030 8000 5000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "3030", "-m", "dagster_project.definitions"]
