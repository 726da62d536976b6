"""The real MNIST files (split from tests/unit/training/test_data.py): the cache matches the canonical checksums,
and a given folder of .gz files is used and cached."""

import gzip
import hashlib

import pytest

from digitrec.training import data as mnist


@pytest.mark.slow
def test_real_mnist_matches_canonical_checksums(mnist_cache):
    for name, expected in mnist.FILES.values():
        assert hashlib.md5((mnist_cache / name).read_bytes()).hexdigest() == expected


@pytest.mark.slow
def test_given_folder_of_gz_files_is_used_and_cached(mnist_cache, tmp_path):
    given = tmp_path / "given"
    given.mkdir()
    for name, _ in mnist.FILES.values():
        (given / f"{name}.gz").write_bytes(gzip.compress((mnist_cache / name).read_bytes(), compresslevel=1))
    folder = mnist.ensure_mnist(given, cache=tmp_path / "cache")
    assert folder == tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(n for n, _ in mnist.FILES.values())
