# The project image: a sweep worker (python -m experiments.sweep) with Fashion-MNIST inside.
# No credentials in here: the storage and tracking URIs come from the environment at run time.
# CPU torch by default; for CUDA workers: docker compose build --build-arg TORCH_INDEX=https://pypi.org/simple
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT=true

# Debian's copy of the original Zalando files (the same source `make data` uses).
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN pip install --index-url "${TORCH_INDEX}" "torch==2.14.1" "torchvision==0.29.1"
# Dependencies first (a layer that survives source edits), then the source itself.
COPY pyproject.toml README.md ./
RUN mkdir mlp experiments && touch mlp/__init__.py experiments/__init__.py \
 && pip install -e . \
 && rm -r mlp experiments
COPY mlp ./mlp
COPY experiments ./experiments
COPY conf ./conf
RUN python -m mlp data \
 && useradd --create-home --uid 1000 mlp \
 && mkdir -p conf/experiment/best \
 && chown -R mlp conf/experiment/best
USER mlp

# docker-compose.yml passes the sweep's overrides; this default only prints the usage.
CMD ["python", "-m", "experiments.sweep", "--help"]
