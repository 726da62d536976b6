"""Outlier exposure on the real data set (split from tests/unit/training/test_negatives.py): a short real run in
which the model learns to doubt letters in a font it never saw, and the flag recorded in the recipe and card."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from digitrec.inference.preprocess import to_mnist


def held_out_letters() -> np.ndarray:
    """Letters (no look-alikes) in DejaVu Sans, a family outlier exposure never trains on."""
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 150)
    out = []
    for ch in "AEFHKMNPRWXYaefhkmnrwx":
        im = Image.new("L", (240, 240), 255)
        ImageDraw.Draw(im).text((50, 20), ch, fill=0, font=font)
        out.append(to_mnist(im))
    return np.stack(out)


@pytest.mark.slow
def test_a_short_run_with_negatives_learns_to_doubt_letters_it_never_saw(mnist_cache, tmp_path):
    from digitrec.training.loop import train
    from digitrec.training.recipes import resolve_config

    letters = torch.from_numpy(held_out_letters()).unsqueeze(1)
    confidence, accuracy = {}, {}
    for flag in (False, True):
        cfg = resolve_config("student", limit=3000, epochs=3, negatives=flag)
        result = train(cfg, tmp_path / str(flag), device="cpu")
        with torch.no_grad():
            confidence[flag] = result.model(letters).softmax(1).max(1).values.mean().item()
        accuracy[flag] = result.history[-1]["val_acc"]
    assert confidence[True] < 0.5 < confidence[False]
    # What negatives cost this tiny run (3,000 images, 3 epochs) in validation accuracy varies with the seed: these
    # two runs with seed=0, 1, 2 gave 3.2, 1.7 and 1.7 points (2.5, 2.5, 2.1 when to_mnist, which makes the training
    # digits' views, enlarged bilinearly; 2026-12-01). 4 points leaves that spread room; a recipe costing much more
    # still fails.
    assert accuracy[True] > 0.9 and abs(accuracy[True] - accuracy[False]) < 0.04


@pytest.mark.slow
def test_the_flag_is_recorded_in_the_recipe_and_the_card(mnist_cache, tmp_path):
    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "digitrec", "train", "--preset", "student", "--limit", "1000",
                    "--epochs", "1", "--negatives", "--quiet", "--out", str(run)], check=True, capture_output=True)
    config = json.loads((run / "config.json").read_text())
    card = json.loads((run / "model_card.json").read_text())
    assert config["recipe"]["negatives"] is True and config["recipe"]["negatives_weight"] == 0.5
    assert card["recipe"]["negatives"] is True and "--negatives" in card["training_command"]
