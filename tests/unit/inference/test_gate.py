"""The "is this a digit?" gate: the bundled one refuses drawn letters and shapes, answers drawn digits, and
lets the predictor answer an unsure digit it vouches for; the predictor loads a card's gate only when its sha256
matches; a gate trained on tiny data runs the same in ONNX Runtime as in torch, its threshold and vouch hold the
asked shares, and `--gate FILE` refits them."""

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


def test_a_gate_trained_on_tiny_data_exports_and_serves(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from digitrec.fileio import sha256_file as file_sha256
    from digitrec.training import gate as training_gate
    from digitrec.training.export import export_onnx
    from digitrec.training.gate import fit_threshold, fit_vouch, gate_logits, train_gate

    rng = np.random.default_rng(0)
    digits = np.stack([np.uint8(to_mnist(render(d % 10, rng, "canvas")) * 255) for d in range(24)])
    shapes = np.stack([np.uint8(to_mnist(drawn(v)) * 255) for v in NOT_DIGITS.values()])
    data = {"digits": digits[:8], "views": digits[8:16], "drawn": digits[16:], "pool": shapes[:3], "other": shapes[3:]}
    model = train_gate(data, epochs=2, batch=8, log=lambda *_: None)
    scores = {"a": gate_logits(model, digits), "b": gate_logits(model, digits[:10])}
    t = fit_threshold(scores, 0.1)
    # At most 10 % of each set below t (here: 2 of 24 and 1 of 10), and t is one of the scores.
    assert (scores["a"] < t).sum() <= 2 and (scores["b"] < t).sum() <= 1
    # The vouch: at most 10 % of these (as if they were non-digits) reach it, and it is the lowest such logit.
    v, top = fit_vouch(scores["a"], 0.1), np.sort(scores["a"])[::-1]
    assert (scores["a"] >= v).sum() == 2 and top[2] < v <= top[1]
    onnx = tmp_path / "gate-run" / GATE_FILE
    onnx.parent.mkdir()
    assert export_onnx(model, onnx, check_images=digits[:4].astype(np.float32) / 255) < 1e-4
    folder = tmp_path / "model"
    folder.mkdir()
    m = load_model(with_gate(folder, onnx.read_bytes(), {"file": GATE_FILE, "sha256": file_sha256(onnx),
                                                         "threshold": t, "parameters": 123}))
    x = digits.astype(np.float32)[:, None] / 255
    with torch.no_grad():
        want = model(torch.from_numpy(x))[:, 0].numpy()
    assert np.allclose(m.gate.scores(x), want, atol=1e-4)
    # t is one of the scores, and ONNX Runtime agrees with torch to ~1e-6, not bit for bit: the image whose score
    # is t may fall on either side of it, so only the others are compared.
    clear = np.abs(want - t) > 1e-4
    assert (m.gate.refuses(x)[clear] == (want < t)[clear]).all() and clear.sum() >= len(x) - 2
    # `--gate FILE --install` fits threshold and vouch of an existing file (here on the tiny sets) and keeps what
    # its training recorded in the card.
    monkeypatch.setattr(training_gate, "validation_sets", lambda: {"val": digits.astype(np.float32) / 255})
    monkeypatch.setattr(training_gate, "unseen_negatives", lambda seed, outlines: shapes)
    training_gate.main(["--gate", str(onnx), "--model", str(folder), "--out", str(tmp_path / "refit"), "--install"])
    entry = json.loads((folder / "model_card.json").read_text())["gate"]
    assert entry["parameters"] == 123 and entry["sha256"] == file_sha256(onnx)
    assert entry["vouch"] == pytest.approx(fit_vouch(m.gate.scores(shapes.astype(np.float32)[:, None] / 255)))
    assert load_model(folder).gate.vouch == entry["vouch"]


def unsure(tmp_path: Path, vouch: bool) -> Path:
    """The bundled model and gate, with a card that calls every answer unsure (reject_below above 1); the gate's
    vouch kept or left out."""
    entry = json.loads((BUNDLED_DIR / "model_card.json").read_text())["gate"]
    if not vouch:
        entry.pop("vouch")
    folder = with_gate(tmp_path, (BUNDLED_DIR / GATE_FILE).read_bytes(), entry)
    card = json.loads((folder / "model_card.json").read_text())
    card["calibration"] = {"temperature": 1.0, "reject_below": 1.5}
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def test_an_unsure_answer_is_given_where_the_gate_vouches_for_a_digit(tmp_path):
    rng = np.random.default_rng(3)
    digits = [render(d, rng, "canvas") for d in range(10)]
    letters = [drawn(v) for v in NOT_DIGITS.values()]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    vouching, plain = load_model(unsure(tmp_path / "a", True)), load_model(unsure(tmp_path / "b", False))
    assert vouching.gate.vouch is not None and vouching.gate.vouch > vouching.gate.threshold
    assert plain.gate.vouch is None
    scores = vouching.gate.scores(np.stack([to_mnist(im) for im in digits])[:, None])
    answered = vouching.predict_images(digits)
    # Each digit the gate vouches for is answered (its confidence as it was); the others stay refused.
    assert sum(scores >= vouching.gate.vouch) >= 8
    for d, (p, s) in enumerate(zip(answered, scores, strict=True)):
        assert (p.digit == d and p.reason is None) if s >= vouching.gate.vouch else p.reason == "low_confidence"
    assert all(p.reason == "low_confidence" for p in plain.predict_images(digits))
    assert [p.confidence for p in answered] == [p.confidence for p in plain.predict_images(digits)]
    # Letters and shapes: no vouch, refused by either model.
    assert all(p.digit is None for p in vouching.predict_images(letters))


def test_amend_refuses_below_the_threshold_and_answers_from_the_vouch_up(bundled):
    gate = bundled.gate
    t, v = gate.threshold, gate.vouch
    reasons = [None, None, "low_confidence", "low_confidence", "not_digit_like", "blank"]
    scores = np.array([t - 1, t + 0.1, v, v - 0.1, v + 5, v + 5], np.float32)
    assert gate.amend(reasons, scores) == ["not_digit_like", None, None, "low_confidence", "not_digit_like", "blank"]
