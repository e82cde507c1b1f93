# syntax=docker/dockerfile:1
# SLaM bot image: `docker build -t slam-bot .` then see compose.yaml and docs/operations.md.

# ---- build: compile llama-cpp-python and install everything into a venv -------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Portable llama.cpp kernels: a native build can pick CPU features the server lacks.
    CMAKE_ARGS="-DGGML_NATIVE=OFF"
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU-only torch first, pinned: the package's torch==2.13.0 then resolves to it instead of
# pulling the multi-GB CUDA build (GPU inference happens in Ollama, not in the bot).
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY slam ./slam
COPY bot ./bot
COPY evaluation ./evaluation
COPY hosting ./hosting
COPY storage ./storage
RUN pip install . && pip check

# ---- runtime: slim, non-root ------------------------------------------------------------
FROM python:3.11-slim
# libgomp1: llama.cpp's OpenMP threads.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 slam \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin slam \
    && mkdir -p /data \
    && chown slam:slam /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MPLBACKEND=Agg \
    SLAM_HTTP_PORT=3000
# slam.toml and the default SQLite database live in the working directory: mount /data.
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000
# Python instead of curl keeps the image small; any non-2xx answer or no answer fails.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ.get('SLAM_HTTP_PORT', '3000') + '/healthz', timeout=4)"]
ENTRYPOINT ["slam"]
CMD ["bot", "slack"]
