"""The "is this a digit?" gate: the bundled one refuses drawn letters and shapes and answers drawn digits;
the predictor loads a card's gate only when its sha256 matches; a gate trained on tiny data runs the same in
ONNX Runtime as in torch, and its threshold refuses at most the asked share of each set of digits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec import load_model
from digitrec.errors import DigitrecError
from digitrec.inference.gate import GATE_FILE
from digitrec.inference.preprocess import to_mnist
from digitrec.paths import BUNDLED_DIR
from digitrec.training.synth import render


def drawn(lines: list[list[tuple[int, int]]], width: int = 16) -> Image.Image:
    """Strokes drawn in black on a white 280x280 canvas, as the web page sends them."""
    im = Image.new("L", (280, 280), 255)
    d = ImageDraw.Draw(im)
    for pts in lines:
        d.line(pts, fill=0, width=width, joint="curve")
    return im


NOT_DIGITS = {
    "K": [[(90, 40), (90, 240)], [(190, 40), (95, 140), (190, 240)]],
    "H": [[(80, 40), (80, 240)], [(200, 40), (200, 240)], [(80, 140), (200, 140)]],
    "M": [[(60, 240), (80, 40), (140, 170), (200, 40), (220, 240)]],
    "X": [[(70, 50), (210, 230)], [(210, 50), (70, 230)]],
    "#": [[(110, 40), (100, 240)], [(180, 40), (170, 240)], [(50, 105), (230, 105)], [(50, 175), (230, 175)]],
    "star": [[(140, 30), (205, 230), (35, 105), (245, 105), (75, 230), (140, 30)]],
}


@pytest.fixture(scope="module")
def bundled():
    return load_model()


def test_the_bundled_card_lists_its_gate_with_a_matching_sha256(bundled):
    card = json.loads((BUNDLED_DIR / "model_card.json").read_text())
    entry = card["gate"]
    assert entry["file"] == GATE_FILE and (BUNDLED_DIR / GATE_FILE).is_file()
    assert bundled.gate is not None and bundled.gate.sha256 == entry["sha256"]
    assert bundled.gate.threshold == pytest.approx(entry["threshold"])
    assert "python -m digitrec.training.gate" in entry["command"]


def test_the_bundled_gate_refuses_drawn_letters_and_shapes(bundled):
    preds = bundled.predict_images([drawn(v) for v in NOT_DIGITS.values()])
    assert all(p.digit is None and p.reason in ("not_digit_like", "low_confidence") for p in preds)
    # The gate alone refuses every one of them (the rules may have refused some first).
    assert bundled.gate.refuses(np.stack([p.input for p in preds])[:, None]).all()


def test_the_bundled_gate_answers_drawn_digits(bundled):
    rng = np.random.default_rng(3)
    images = [render(d % 10, rng, "canvas") for d in range(30)]
    x = np.stack([to_mnist(im) for im in images])[:, None]
    assert not bundled.gate.refuses(x).any()
    preds = bundled.predict_images(images)
    assert sum(p.digit == d % 10 for d, p in enumerate(preds)) >= 29


def with_gate(tmp_path: Path, gate_bytes: bytes, entry: dict) -> Path:
    """A copy of the bundled model whose card lists `entry` as its gate, stored as gate.onnx."""
    shutil.copy(BUNDLED_DIR / "model.onnx", tmp_path / "model.onnx")
    card = json.loads((BUNDLED_DIR / "model_card.json").read_text())
    card["gate"] = entry
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    (tmp_path / GATE_FILE).write_bytes(gate_bytes)
    return tmp_path


def test_a_gate_that_does_not_match_its_card_is_not_loaded(tmp_path):
    blob = (BUNDLED_DIR / GATE_FILE).read_bytes()
    entry = json.loads((BUNDLED_DIR / "model_card.json").read_text())["gate"]
    changed = bytearray(blob)
    changed[-1] ^= 1
    with pytest.raises(DigitrecError, match="does not match its model card"):
        load_model(with_gate(tmp_path, bytes(changed), entry))
    (tmp_path / GATE_FILE).unlink()  # copied without its gate: served on the rules alone, with a warning
    with pytest.warns(UserWarning, match="lists the gate gate.onnx"):
        assert load_model(tmp_path).gate is None


def test_without_a_gate_entry_the_rules_alone_decide(tmp_path):
    shutil.copy(BUNDLED_DIR / "model.onnx", tmp_path / "model.onnx")
    card = json.loads((BUNDLED_DIR / "model_card.json").read_text())
    card.pop("gate")
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    assert load_model(tmp_path).gate is None


def test_a_gate_trained_on_tiny_data_exports_and_serves(tmp_path):
    torch = pytest.importorskip("torch")
    from digitrec.fileio import sha256_file as file_sha256
    from digitrec.training.export import export_onnx
    from digitrec.training.gate import fit_threshold, gate_logits, train_gate

    rng = np.random.default_rng(0)
    digits = np.stack([np.uint8(to_mnist(render(d % 10, rng, "canvas")) * 255) for d in range(24)])
    shapes = np.stack([np.uint8(to_mnist(drawn(v)) * 255) for v in NOT_DIGITS.values()])
    data = {"digits": digits[:8], "views": digits[8:16], "drawn": digits[16:], "pool": shapes[:3], "other": shapes[3:]}
    model = train_gate(data, epochs=2, batch=8, log=lambda *_: None)
    scores = {"a": gate_logits(model, digits), "b": gate_logits(model, digits[:10])}
    t = fit_threshold(scores, 0.1)
    # At most 10 % of each set below t (here: 2 of 24 and 1 of 10), and t is one of the scores.
    assert (scores["a"] < t).sum() <= 2 and (scores["b"] < t).sum() <= 1
    onnx = tmp_path / "gate-run" / GATE_FILE
    onnx.parent.mkdir()
    assert export_onnx(model, onnx, check_images=digits[:4].astype(np.float32) / 255) < 1e-4
    folder = tmp_path / "model"
    folder.mkdir()
    m = load_model(with_gate(folder, onnx.read_bytes(), {"file": GATE_FILE, "sha256": file_sha256(onnx),
                                                         "threshold": t}))
    x = digits.astype(np.float32)[:, None] / 255
    with torch.no_grad():
        want = model(torch.from_numpy(x))[:, 0].numpy()
    assert np.allclose(m.gate.scores(x), want, atol=1e-4)
    # t is one of the scores, and ONNX Runtime agrees with torch to ~1e-6, not bit for bit: the image whose score
    # is t may fall on either side of it, so only the others are compared.
    clear = np.abs(want - t) > 1e-4
    assert (m.gate.refuses(x)[clear] == (want < t)[clear]).all() and clear.sum() >= len(x) - 2
