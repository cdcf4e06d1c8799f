# syntax=docker/dockerfile:1

# --- build: install the package and its dependencies into a self-contained venv ---
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY . .
RUN pip install .

# --- runtime: the venv and an unprivileged user, nothing else ---
FROM python:3.11-slim

# `cedros-pay version` prints it: docker build --build-arg BUILD_TIME="$(date -u +%FT%TZ)" .
ARG BUILD_TIME=unknown

RUN groupadd --system cedros \
 && useradd --system --gid cedros --home-dir /app --shell /usr/sbin/nologin cedros \
 && mkdir -p /app/data \
 && chown cedros:cedros /app/data

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CEDROS_SERVER_ADDRESS=0.0.0.0:8080 \
    CEDROS_BUILD_TIME=$BUILD_TIME

WORKDIR /app
USER cedros

EXPOSE 8080

# urlopen raises on connection errors and non-2xx answers, so any failure exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/cedros-health', timeout=4)"]

CMD ["cedros-pay", "serve"]
