"""The "Baseline health" page: a FastAPI app the Airflow plugin mounts under ``/baseline-guard``."""
