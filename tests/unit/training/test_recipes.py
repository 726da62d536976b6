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
