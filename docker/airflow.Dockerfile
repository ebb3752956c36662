# Airflow image of the production-like deployment: the official slim image plus every package
# Baseline Guard needs at run time, at the versions of uv.lock (docker/airflow-requirements.txt is
# exported from the lock; tests/test_docker_compose.py checks they are equal). --no-deps: pip installs
# exactly those versions and resolves nothing else. DAGs, plugins and include/ are mounted by
# docker-compose.yaml.
ARG AIRFLOW_IMAGE=apache/airflow:slim-3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}
ARG AIRFLOW_VERSION=3.3.2
COPY docker/airflow-requirements.txt /tmp/baseline-guard-requirements.txt
# the lock pins apache-airflow==${AIRFLOW_VERSION}, the image's own version
RUN pip install --no-cache-dir --no-deps -r /tmp/baseline-guard-requirements.txt
