# The training and serving image. Build: docker build -t sentipipe .
#   serve: docker run -p 5001:5001 -v $PWD/mlflow.db:/app/mlflow.db -v $PWD/mlartifacts:/app/mlartifacts sentipipe
#   train: docker run -v $PWD:/app sentipipe dvc repro     (the repository, with .git, mounted)
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends git make curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 app

WORKDIR /app
# Dependencies first, so a code change does not reinstall torch.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install .

COPY --chown=app:app . .
USER app

EXPOSE 5001
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD curl -fsS http://127.0.0.1:5001/ping || exit 1
CMD ["sentipipe", "serve", "--host", "0.0.0.0", "--port", "5001"]
