"""The model card as a type (digitrec.card): it reads and writes the JSON format unchanged."""

import json

import pytest

from digitrec.card import CARD_FILE, InputSpec, ModelCard
from digitrec.errors import DigitrecError
from digitrec.paths import BUNDLED_DIR


def test_bundled_card_round_trips_to_the_same_json(tmp_path):
    raw = json.loads((BUNDLED_DIR / CARD_FILE).read_text())
    card = ModelCard.read(BUNDLED_DIR / CARD_FILE)
    assert card.to_dict() == raw and dict(card) == raw and card == raw
    assert card.test_accuracy == raw["test_accuracy"] and card["recipe"] == raw["recipe"]
    card.write(tmp_path / CARD_FILE)
    assert json.loads((tmp_path / CARD_FILE).read_text()) == raw


def test_unknown_keys_are_kept_and_old_input_sentences_read_as_the_contract():
    card = ModelCard.from_dict({"name": "m", "input": "float32 (N, 1, 28, 28)", "from_the_future": [1, 2]})
    assert card.input == InputSpec() and card.extra == {"from_the_future": [1, 2]}
    assert card.to_dict()["from_the_future"] == [1, 2] and card.to_dict()["input"]["shape"] == ["N", 1, 28, 28]
    assert "members" not in card and "quantization" not in card  # written only when set


def test_a_card_pins_its_onnx_file_and_a_broken_card_is_one_clear_error(tmp_path):
    card = ModelCard(onnx_sha256="ab" * 32)
    card.check_describes(tmp_path / "m.onnx", "ab" * 32)
    with pytest.raises(DigitrecError, match="does not match its model card"):
        card.check_describes(tmp_path / "m.onnx", "cd" * 32)
    (tmp_path / CARD_FILE).write_text("[1, 2]")
    with pytest.raises(DigitrecError, match="must be a JSON object"):
        ModelCard.read(tmp_path / CARD_FILE)
    (tmp_path / CARD_FILE).write_text("{nope")
    with pytest.raises(DigitrecError, match="not valid JSON"):
        ModelCard.read(tmp_path / CARD_FILE)
