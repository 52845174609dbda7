-- The stack's two databases, created once when the postgres volume is new: Optuna's storage
-- (workers and optuna-dashboard) and the MLflow tracking server's backend store.
CREATE DATABASE optuna;
CREATE DATABASE mlflow;
