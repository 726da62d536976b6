# digitrec serving image: the web page, the REST API and /metrics on the bundled model. No torch.
# Build:  docker build -t digitrec .          Run:  docker run -p 8000:8000 digitrec
# The install below is exactly `pip install .[serve]` (EXTRAS; `--build-arg EXTRAS=serve,postgres` adds
# psycopg for a PostgreSQL feedback store). tests/test_serve_without_torch.py builds the same install in a
# fresh venv and runs this CMD from it: no Docker engine ran where this file was written.

# -- build: a wheel of this repo, and a venv with it and its serving dependencies ---------------------------
FROM python:3.11-slim AS build
ARG EXTRAS=serve
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install ".[${EXTRAS}]" \
 && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"

# -- runtime: the venv only, a non-root user, a writable /data for the SQLite feedback store --------------
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin digitrec \
 && mkdir -p /data && chown digitrec /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    MALLOC_ARENA_MAX=2 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    DIGITREC_DATA_DIR=/data \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
USER 10001
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"
# PORT (Cloud Run, Heroku) and WEB_CONCURRENCY (uvicorn worker processes) are read by `digitrec serve`.
# The metrics folder is made afresh at each start: prometheus-client's multiprocess files must not outlive workers.
CMD ["sh", "-c", "rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && exec digitrec serve --host 0.0.0.0"]
