"""The recipe and the loss without a run (split from tests/e2e/mnist/test_frontier.py): distillation's loss, and a
recipe stored before a field existed."""

import json

import pytest
import torch
import torch.nn.functional as F

from digitrec.training.loop import loss_fn
from digitrec.training.recipes import PRESETS, TrainConfig, same_recipe


def test_distillation_loss_is_cross_entropy_blended_with_the_teachers_labels():
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 10), torch.randint(0, 10, (8,))
    onehot = F.one_hot(labels, 10).float()
    cfg = TrainConfig(label_smoothing=0.0, distill_alpha=1.0, distill_temperature=1.0)
    # KL(one-hot || p) is exactly the cross-entropy, so a teacher that only knows the labels changes nothing.
    assert loss_fn(logits, labels, onehot, cfg).item() == pytest.approx(F.cross_entropy(logits, labels).item(), 1e-5)
    soft = torch.full((8, 10), 0.1)
    half = TrainConfig(label_smoothing=0.0, distill_alpha=0.5, distill_temperature=2.0)
    kd = F.kl_div(F.log_softmax(logits / 2, 1), soft, reduction="batchmean") * 4
    want = 0.5 * F.cross_entropy(logits, labels) + 0.5 * kd
    assert loss_fn(logits, labels, soft, half).item() == pytest.approx(want.item(), 1e-5)


def test_a_recipe_stored_before_a_field_existed_still_matches_with_that_fields_default():
    stored = json.loads(json.dumps(PRESETS["best"].to_dict()))
    del stored["teacher"]
    assert same_recipe(stored, PRESETS["best"])
    stored["epochs"] += 1
    assert not same_recipe(stored, PRESETS["best"])


def test_the_bundled_models_recipe_is_still_the_student_preset():
    """`make bundle` must keep reproducing the bundled model: its stored recipe (written before crops and
    negatives existed) still equals today's preset."""
    from tests import ROOT

    card = json.loads((ROOT / "src/digitrec/bundled/model_card.json").read_text())
    assert same_recipe(card["recipe"], PRESETS["student"])


def test_two_flags_rebuild_the_fast_recipe_from_before_the_crop():
    """benchmarks/train_speed.py and docs/results.md name the old `fast` as `--preset fast --crop 28 --epochs 10`."""
    from digitrec.training.augment import AugmentConfig
    from digitrec.training.recipes import resolve_config

    before = TrainConfig(arch="fast", width=24, epochs=10, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4,
                         schedule="onecycle", early_stop_patience=None, label_smoothing=0.1,
                         augment=AugmentConfig(rotation_deg=10, shift=0.1, zoom=0.1, shear_deg=10))
    assert resolve_config("fast", crop=28, epochs=10) == before
    assert PRESETS["fast"].crop < 28 and PRESETS["fast"].model_config().crop == PRESETS["fast"].crop
