"""Every training hyperparameter in one visible place: TrainConfig, and the presets as frozen instances of it.

Stored in each run folder's config.json as "recipe", so a run folder says exactly how it was made, and
`same_recipe` tells whether a finished run can be reused for a requested one (ensembles, sweeps).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, replace

from digitrec.errors import DigitrecError
from digitrec.training.augment import AugmentConfig
from digitrec.training.models import RENAMED, ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter in one visible place. Presets below are instances of it."""

    arch: str = "fast"
    width: int = 32
    crop: int = 28  # fast family: train and predict on the central crop x crop (augmentation shifts: random crops)
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "plateau"  # plateau (ReduceLROnPlateau on val loss) | onecycle
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    early_stop_patience: int | None = 7  # None: run all epochs, keep the last weights
    label_smoothing: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    limit: int | None = None
    extra_data: str | None = None  # folder from `digitrec feedback export`: user-corrected samples to add
    teacher: str | None = None  # run folder (an ensemble, usually) whose soft labels the student also learns
    distill_alpha: float = 0.5  # weight of the teacher's soft labels; 1 - alpha goes to the true labels
    distill_temperature: float = 1.0  # teachers trained with label smoothing are soft already: no extra heat
    negatives: bool = False  # outlier exposure (training/negatives.py): non-digits pushed towards a uniform softmax
    negatives_weight: float = 0.5  # weight of their loss; each batch gets half as many negatives as digits

    def model_config(self) -> ModelConfig:
        return ModelConfig(arch=self.arch, width=self.width, crop=self.crop)

    def to_dict(self) -> dict:
        return asdict(self)


# Ours, tuned for a 2-core CPU: a net that spends its FLOPs at 14x14 and 7x7, one-cycle SGD with Nesterov
# momentum, label smoothing and lighter augmentation, a fixed short budget and no early stop. The other recipes
# of ours say how they differ from it. (This was `fast` until the crop: `--crop 28 --epochs 10` rebuilds it.)
_CNN = TrainConfig(arch="fast", width=24, epochs=10, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4,
                   schedule="onecycle", early_stop_patience=None, label_smoothing=0.1,
                   augment=AugmentConfig(rotation_deg=10, shift=0.1, zoom=0.1, shear_deg=10))

PRESETS = {
    # The reference recipe, as the reference project trains it.
    "reference": TrainConfig(arch="reference", epochs=30, batch_size=128, optimizer="adam", lr=1e-3, schedule="plateau",
                        early_stop_patience=7),
    # The default: the net looks at the central 24x24 only (augmentation's shifts make that a random crop), which
    # costs 0.75 of the whole image per epoch, and stops after 4 epochs: 0.30 of the time of 10 epochs on 28x28
    # (docs/results.md, "Training speed").
    "fast": replace(_CNN, crop=24, epochs=4),
    # The accuracy recipe: a third more width and twice the epochs (about 8.5 minutes on 2 cores).
    "best": replace(_CNN, width=32, epochs=20),
    # The small model for --teacher: two thirds of the fast width, 4x the reference CNN's throughput (inference.py);
    # without label smoothing, which the teacher's soft labels stand in for.
    "student": replace(_CNN, width=16, epochs=20, label_smoothing=0.0),
    # Optional: a small vision transformer (models.TinyViT) with the optimiser transformers want (Adam, warm-up
    # then decay, no L2), for an honest comparison with the CNNs.
    "vit": replace(_CNN, arch="vit", width=64, epochs=15, optimizer="adam", lr=2e-3, weight_decay=0.0),
}


def same_recipe(stored: dict, cfg: TrainConfig) -> bool:
    """A stored recipe equals cfg; a field added to TrainConfig since it was stored counts as its default."""
    want = json.loads(json.dumps(cfg.to_dict()))
    default = json.loads(json.dumps(TrainConfig().to_dict()))
    stored = {**stored, "arch": RENAMED.get(stored.get("arch", default["arch"]), stored.get("arch", default["arch"]))}
    return all(stored.get(k, default[k]) == v for k, v in want.items())


def resolve_config(preset: str, **overrides) -> TrainConfig:
    """A preset with the command-line overrides that were given (None means 'keep the preset's'). The old
    name `seed` (preset or arch) still works, with a FutureWarning."""
    preset, arch = renamed(preset), overrides.get("arch")
    if arch is not None:
        overrides["arch"] = renamed(arch)
    if preset not in PRESETS:
        raise DigitrecError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[preset]
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **given)


def renamed(name: str) -> str:
    """Today's name of a preset or architecture; an old one warns that it goes away in the next release."""
    if name in RENAMED:
        warnings.warn(f"'{name}' is now called '{RENAMED[name]}'; the old name goes away in the next release",
                      FutureWarning, stacklevel=3)
    return RENAMED.get(name, name)
