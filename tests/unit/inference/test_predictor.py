"""The Python inference API: loading (bundled, run folder, .onnx), the model card check, array contracts,
images through preprocessing, and recognition of synthetic handwriting with the bundled model."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec import Prediction, load_model
from digitrec.errors import DigitrecError
from digitrec.fileio import sha256_file
from digitrec.inference.predictor import resolve_model_path
from digitrec.inference.preprocess import to_mnist
from digitrec.paths import BUNDLED_DIR
from digitrec.training.synth import render


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def digits() -> list[tuple[int, Image.Image]]:
    """Two synthetic canvas drawings of each digit (fixed seed), as the page would send them."""
    rng = np.random.default_rng(1234)
    return [(d, render(d, rng, "canvas")) for _ in range(2) for d in range(10)]


@pytest.fixture()
def model_copy(tmp_path: Path) -> Path:
    """A run folder holding a copy of the model that `load_model()` uses, with its card."""
    src = resolve_model_path(None)
    shutil.copy(src, tmp_path / "model.onnx")
    if (src.parent / "model_card.json").exists():
        shutil.copy(src.parent / "model_card.json", tmp_path / "model_card.json")
    return tmp_path


def test_import_digitrec_is_light():
    code = (
        "import sys, digitrec; "
        "heavy = [m for m in ('onnxruntime', 'torch', 'fastapi', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert callable(digitrec.load_model) and digitrec.Prediction.__name__ == 'Prediction'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bundled_model_has_a_card_that_matches_its_file():
    onnx = BUNDLED_DIR / "model.onnx"
    card = json.loads((BUNDLED_DIR / "model_card.json").read_text())
    for key in ("name", "version", "onnx_sha256", "test_accuracy", "per_class", "training_command", "input"):
        assert key in card, f"model card lacks {key!r}"
    assert card["onnx_sha256"] == sha256_file(onnx)
    m = load_model(BUNDLED_DIR)
    assert m.sha256 == card["onnx_sha256"] and m.name == card["name"] and m.card == card
    assert 0.9 < m.test_accuracy <= 1.0


def test_run_folder_and_onnx_file_load_the_same_model(model, model_copy: Path):
    by_dir, by_file = load_model(model_copy), load_model(model_copy / "model.onnx")
    assert by_dir.sha256 == by_file.sha256 == model.sha256
    x = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(by_dir.predict_proba(x), model.predict_proba(x), atol=1e-6)


def test_changed_model_file_is_refused_by_its_card(model_copy: Path):
    if not (model_copy / "model_card.json").exists():
        pytest.skip("the model under test has no card")
    with open(model_copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(DigitrecError, match="does not match its model card"):
        load_model(model_copy)


def test_corrupt_card_missing_and_garbage_models_are_clear_errors(tmp_path: Path, model_copy: Path):
    (model_copy / "model_card.json").write_text("{not json")
    with pytest.raises(DigitrecError, match="not valid JSON"):
        load_model(model_copy)
    tmp_path = tmp_path / "other"
    tmp_path.mkdir()
    with pytest.raises(DigitrecError, match="does not exist"):
        load_model(tmp_path / "nothing.onnx")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(DigitrecError, match="no model.onnx"):
        load_model(tmp_path / "empty-dir")
    (tmp_path / "garbage.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(DigitrecError, match="not a valid ONNX model"):
        load_model(tmp_path / "garbage.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(DigitrecError, match="empty"):
        load_model(tmp_path / "empty.onnx")


def test_model_with_another_input_contract_is_refused(tmp_path: Path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    with pytest.raises(DigitrecError, match="contract"):
        load_model(tmp_path / "m.onnx")


def test_all_array_layouts_and_dtypes_give_the_same_probabilities(model, digits):
    x = np.stack([to_mnist(im) for _, im in digits[:5]])  # (5, 28, 28) float32 in [0, 1]
    ref = model.predict_proba(x)
    assert ref.shape == (5, 10) and ref.dtype == np.float32
    np.testing.assert_allclose(ref.sum(axis=1), 1.0, atol=1e-5)
    for variant in (x[..., None], x[:, None], x.astype(np.float64)):
        np.testing.assert_allclose(model.predict_proba(variant), ref, atol=1e-6)
    u8 = np.round(x * 255).astype(np.uint8)
    np.testing.assert_allclose(model.predict_proba(u8), model.predict_proba(u8 / np.float32(255)), atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(x[0]), ref[:1], atol=1e-6)  # a single (28, 28)
    np.testing.assert_array_equal(model.predict(x), ref.argmax(axis=1))
    assert model.predict(x).dtype == np.int64
    assert model.predict_proba(np.zeros((0, 28, 28), np.uint8)).shape == (0, 10)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 28)), "got shape"),
        (np.zeros((2, 28, 28, 3), np.uint8), "got shape"),
        (np.zeros((2, 3, 28, 28), np.float32), "got shape"),
        (np.zeros((32, 32), np.uint8), "got shape"),
        (np.zeros((2, 28, 28), np.int64), "unsupported dtype"),
        (np.zeros((2, 28, 28), bool), "unsupported dtype"),
        (np.full((28, 28), np.nan, np.float32), "NaN"),
        (np.full((28, 28), np.inf, np.float32), "NaN or infinite"),
        (np.full((28, 28), 255.0, np.float32), r"must lie in \[0, 1\]"),
        (np.full((28, 28), -0.5, np.float32), r"must lie in \[0, 1\]"),
        ("not an image", "unsupported dtype"),
    ],
)
def test_bad_arrays_raise_valueerror_saying_what_was_expected(model, images, message):
    with pytest.raises(ValueError, match=message) as info:
        model.predict_proba(images)
    assert "expected" in str(info.value) or "divide" in str(info.value)


def test_predict_image_takes_paths_bytes_pil_and_arrays_alike(model, digits, tmp_path: Path):
    digit, im = digits[7]
    path = tmp_path / "d.png"
    im.save(path)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    answers = [model.predict_image(s) for s in (path, str(path), buf.getvalue(), im, np.asarray(im))]
    first = answers[0]
    assert isinstance(first, Prediction)
    assert first.input.shape == (28, 28) and first.input.dtype == np.float32
    assert len(first.probabilities) == 10 and abs(sum(first.probabilities) - 1) < 1e-5
    assert first.confidence == max(first.probabilities) and first.digit == int(np.argmax(first.probabilities))
    for other in answers[1:]:
        assert other.digit == first.digit
        np.testing.assert_allclose(other.probabilities, first.probabilities, atol=1e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.digit = 3  # type: ignore[misc]


def test_blank_images_are_no_digit_not_a_guess(model):
    for blank in (Image.new("L", (280, 280), 255), Image.new("RGB", (64, 48), (10, 10, 10))):
        p = model.predict_image(blank)
        assert p.digit is None and p.confidence == 0.0 and p.input is None
        assert list(p.probabilities) == [0.0] * 10


def test_unreadable_images_raise_digitrec_errors(model, tmp_path: Path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for source in (tmp_path / "bad.png", tmp_path / "missing.png", b"", b"not an image"):
        with pytest.raises(DigitrecError):
            model.predict_image(source)


def test_bundled_model_reads_synthetic_handwriting(model, digits):
    """Drawn digits of random size, slant, position and pen width: the case people actually bring."""
    predictions = model.predict_images([im for _, im in digits])
    correct = sum(p.digit == d for (d, _), p in zip(digits, predictions, strict=True))
    assert correct >= 0.85 * len(digits), f"{correct}/{len(digits)} synthetic drawings read correctly"


def test_concurrent_calls_share_one_session_safely(model, digits):
    x = np.stack([to_mnist(im) for _, im in digits])
    ref = model.predict_proba(x)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: model.predict_proba(x[i : i + 1]), range(len(x))))
    np.testing.assert_allclose(np.concatenate(results), ref, atol=1e-6)
