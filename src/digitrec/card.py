"""The model card (`model_card.json` beside `model.onnx`): the contract the training half writes and the serving
half reads, as one type. It says which ONNX file it describes (its sha256), what that file expects (`InputSpec`),
how its refusals are calibrated, and how it was made and measured.

Read and written here only. A card also reads like the JSON it is (`card["test_accuracy"]`), which is what
`run()` and `Predictor.card` have always handed out; keys this version does not know are kept, not dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from digitrec.errors import DigitrecError
from digitrec.fileio import write_json

CARD_FILE = "model_card.json"


@dataclass(frozen=True)
class InputSpec:
    """What the ONNX graph takes and gives: the one statement of the input contract."""

    name: str = "image"
    dtype: str = "float32"
    shape: tuple = ("N", 1, 28, 28)
    range: tuple = (0.0, 1.0)
    polarity: str = "white ink on black (MNIST)"
    normalisation: str = "inside the graph"
    output_name: str = "logits"
    output_shape: tuple = ("N", 10)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "range": list(self.range),
                "polarity": self.polarity, "normalisation": self.normalisation,
                "output": {"name": self.output_name, "shape": list(self.output_shape)}}

    @classmethod
    def from_dict(cls, d: Any) -> InputSpec:
        if not isinstance(d, dict):  # cards of the first release stated it as a sentence
            return cls()
        out = d.get("output") if isinstance(d.get("output"), dict) else {}
        default = cls()
        return cls(name=d.get("name", default.name), dtype=d.get("dtype", default.dtype),
                   shape=tuple(d.get("shape", default.shape)), range=tuple(d.get("range", default.range)),
                   polarity=d.get("polarity", default.polarity),
                   normalisation=d.get("normalisation", default.normalisation),
                   output_name=out.get("name", default.output_name),
                   output_shape=tuple(out.get("shape", default.output_shape)))

    def describe(self) -> str:
        shape = ", ".join(map(str, self.shape))
        return f"{self.dtype} ({shape}), values in [{self.range[0]:g}, {self.range[1]:g}], {self.polarity}"


def check_pinned(path: Path, sha256: str, expected: str | None, remedy: str) -> None:
    """A file the card pins by sha256 (the model, its gate) must be that very file; `remedy` ends the message."""
    if expected is not None and str(expected).lower() != sha256:
        raise DigitrecError(f"{path} does not match its model card (sha256 {sha256[:12]}…, card says "
                            f"{str(expected)[:12]}…){remedy}")


# Written only when set: an ensemble's members, an int8 model's quantization, the torch parity of an fp32 export.
_OPTIONAL = {"onnx_torch_max_abs_diff", "members", "member_test_accuracy", "quantization", "calibration", "gate"}


@dataclass(frozen=True, eq=False)  # equality is the Mapping's: a card equals the dict of its JSON
class ModelCard(Mapping):
    """Every field a card has; None where this kind of model has no such figure."""

    name: str | None = None
    version: str = "unknown"
    created: str | None = None
    arch: dict | None = None
    parameters: dict | None = None
    onnx_file: str = "model.onnx"
    onnx_sha256: str | None = None
    onnx_torch_max_abs_diff: float | None = None
    input: InputSpec = field(default_factory=InputSpec)
    test_accuracy: float | None = None
    test_errors: int | None = None
    val_accuracy: float | None = None
    per_class: dict | None = None
    confusion_matrix: list | None = None
    data_checksums: dict | None = None
    training_command: str | None = None
    training_seconds: float | None = None
    epochs_run: int | None = None
    recipe: dict | None = None
    device: str | None = None
    library_versions: dict | None = None
    git_commit: str | None = None
    members: list | None = None
    member_test_accuracy: dict | None = None
    quantization: dict | None = None
    calibration: dict | None = None  # the refusal rules (digitrec.inference.rules.Rules) and their fit
    gate: dict | None = None  # the "is this a digit?" network beside the model: file, sha256, threshold (gate.py)
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept as they were

    # -- JSON ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.name in _OPTIONAL and value is None):
                continue
            out[f.name] = value.to_dict() if isinstance(value, InputSpec) else value
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in d.items() if k in known}
        values["input"] = InputSpec.from_dict(d.get("input"))
        return cls(**values, extra={k: v for k, v in d.items() if k not in known})

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DigitrecError(f"model card {path} is not valid JSON ({exc}); re-export the model.") from exc
        if not isinstance(d, dict):
            raise DigitrecError(f"model card {path} must be a JSON object; re-export the model.")
        return cls.from_dict(d)

    def write(self, path: Path) -> None:
        write_json(Path(path), self.to_dict())

    def check_describes(self, onnx_path: Path, sha256: str) -> None:
        """The card pins its ONNX file: a different file (changed, corrupted, swapped) is refused."""
        check_pinned(onnx_path, sha256, self.onnx_sha256,
                     "; the file was changed or corrupted: re-export it or restore the original.")

    # -- reads like its JSON ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
