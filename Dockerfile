# digitrec serving image: the web page, the REST API and /metrics on the bundled model. No torch.
# Build:  make image          (docker when a Docker engine answers, else podman: .ci/build-image)
# Test:   make image-test     (builds it, runs it, checks it from outside: .ci/image-smoke)
# Run:    docker run -p 8000:8000 digitrec:latest      (or podman run; see docs/production.md)
# The install is exactly `pip install .[serve,redis]` (EXTRAS; `--build-arg EXTRAS=serve,redis,postgres` adds
# psycopg for a PostgreSQL feedback store). The rate limit is on (DIGITREC_RATE_LIMIT below); point
# DIGITREC_RATE_LIMIT_STORAGE at Redis to count it across workers and replicas.

# -- build: a venv with the serving dependencies, then this repo; then pip, setuptools and test suites removed
FROM python:3.11-slim AS build
ARG EXTRAS=serve,redis
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first, read from pyproject.toml, so that an edit under src/ reuses this layer.
COPY pyproject.toml ./
RUN python -m venv /opt/venv \
 && python -c "import tomllib, sys; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = sys.argv[1].split(','); \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
    "$EXTRAS" > /tmp/requirements.txt \
 && /opt/venv/bin/pip install --quiet -r /tmp/requirements.txt
COPY README.md LICENSE ./
COPY src ./src
# Compile bytecode at build time: the root filesystem is read-only in Kubernetes, so nothing is cached at run.
RUN /opt/venv/bin/pip install --quiet --no-deps ".[${EXTRAS}]" \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)" \
 && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools \
 && find /opt/venv/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# -- runtime: the venv only, a non-root user, a writable /data for the SQLite feedback store --------------
FROM python:3.11-slim
RUN groupadd --gid 10001 digitrec \
 && useradd --uid 10001 --gid 10001 --no-log-init --home-dir /data --shell /usr/sbin/nologin digitrec \
 && mkdir -p /data && chown digitrec:digitrec /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    MALLOC_ARENA_MAX=2 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    DIGITREC_DATA_DIR=/data \
    DIGITREC_RATE_LIMIT=20/second \
    DIGITREC_MAX_HEAVY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
USER 10001
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"
# PORT (Cloud Run, Heroku) and WEB_CONCURRENCY (uvicorn worker processes) are read by `digitrec serve`.
# The metrics folder is made afresh at each start: prometheus-client's multiprocess files must not outlive workers.
# `digitrec serve` itself refuses a bad PORT or an unwritable /data with one sentence and exit status 1.
CMD ["sh", "-c", "rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && exec digitrec serve --host 0.0.0.0"]
