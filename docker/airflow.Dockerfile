# Airflow image of the production-like deployment: the official image plus the providers and
# libraries Baseline Guard uses, at the versions pyproject.toml pins (tests/test_docker_compose.py
# checks they agree). DAGs, plugins and include/ are mounted by docker-compose.yaml.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}
ARG AIRFLOW_VERSION=3.3.2
COPY docker/airflow-requirements.txt /tmp/baseline-guard-requirements.txt
# Pinning apache-airflow too keeps pip from up- or downgrading the image's Airflow.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/baseline-guard-requirements.txt
