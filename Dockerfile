# The training and serving image.
#   docker build -t sentipipe .
#   serve: docker run --gpus all -p 5001:5001 -e MLFLOW_TRACKING_URI=http://tracking:5000 sentipipe serve
#   train: docker run --gpus all -v "$PWD":/app -e MLFLOW_TRACKING_URI=... sentipipe train
#          (the repository, .git included, mounted at /app; `train` is `dvc repro`)
# torch's CUDA wheels bring their own CUDA and cuDNN libraries: the base only has to
# match the host driver generation, and the same image runs on CPU-only hosts.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv git make curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app \
    && python3 -m venv /opt/venv

WORKDIR /app
# Dependencies first, so a code change does not reinstall torch.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install .

COPY --chown=app:app . .
USER 10001

EXPOSE 5001
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s CMD ["curl", "-fsS", "http://127.0.0.1:5001/ping"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["serve"]
