# syntax=docker/dockerfile:1
# SLaM bot image: `docker build -t slam-bot .` (or `make image`), then see compose.yaml and
# docs/operations.md.
#
# Build arguments. The defaults are what everyone should use; `make image-test` overrides them
# to build where no container registry or PyTorch index can be reached (see scripts/image/).
#   BASE_IMAGE       Python 3.11 image both stages start from (Debian-based: apt, useradd)
#   PIP_INDEX_URL    the Python package index
#   TORCH_INDEX_URL  where the CPU build of torch comes from
#   PIP_FIND_LINKS   extra wheels, e.g. a prebuilt llama-cpp-python (empty: build it here)
#   PIP_CERT         CA bundle for reaching the index through a TLS-inspecting proxy
#   BUILD_PACKAGES   Debian packages that compile llama.cpp
ARG BASE_IMAGE=python:3.11-slim

# ---- build: compile llama-cpp-python and install everything into a venv -------------------
FROM ${BASE_IMAGE} AS build
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=
ARG PIP_CERT=
ARG BUILD_PACKAGES="build-essential cmake"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Portable llama.cpp kernels: a native build can pick CPU features the server lacks.
    CMAKE_ARGS="-DGGML_NATIVE=OFF"
# hadolint ignore=DL3008,SC2086
RUN apt-get update \
    && apt-get install -y --no-install-recommends ${BUILD_PACKAGES} \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU-only torch first, pinned: the package's torch==2.13.0 then resolves to it instead of
# pulling the multi-GB CUDA build (GPU inference happens in Ollama, not in the bot).
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX_URL}"
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
FROM ${BASE_IMAGE}
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
# SLAM_HTTP_HOST=0.0.0.0: the bot's own default is 127.0.0.1, which a published port (and
# Slack in HTTP mode) cannot reach from outside the container.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MPLBACKEND=Agg \
    SLAM_HTTP_HOST=0.0.0.0 \
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
