# The MLflow tracking server: the official image plus the PostgreSQL driver it lacks.
# The backend store URI (with its password) comes from the environment at run time.
ARG MLFLOW_VERSION=3.17.2
FROM ghcr.io/mlflow/mlflow:v${MLFLOW_VERSION}
RUN pip install --no-cache-dir "psycopg2-binary>=2.9,<3"
