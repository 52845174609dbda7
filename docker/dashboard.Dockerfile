# optuna-dashboard on the stack's Optuna storage, pinned to the project's Optuna version.
# The storage URL (with its password) is read from $OPTUNA_STORAGE at run time, so it appears
# neither in the image nor on the process's command line.
FROM python:3.11-slim-bookworm
RUN pip install --no-cache-dir "optuna==5.0.0" "optuna-dashboard==0.21.0" "psycopg2-binary>=2.9,<3" \
 && useradd --create-home dashboard
USER dashboard
EXPOSE 8080
CMD ["python", "-c", "import os; from optuna_dashboard import run_server; run_server(os.environ['OPTUNA_STORAGE'], host='0.0.0.0', port=8080)"]
