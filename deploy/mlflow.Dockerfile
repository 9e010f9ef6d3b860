# The MLflow tracking server of compose.yaml: the official image plus the PostgreSQL driver
# that its backend store needs (the image ships MLflow's core only).
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir psycopg2-binary==2.9.13
