"""The "is this a digit?" gate at serve time: a second, tiny ONNX network beside the digit model.

A digit model trained on digits alone answers "7 (93 %)" for a handwritten letter; teaching it otherwise
(outlier exposure) cost it accuracy (docs/no-digit.md). The gate is a separate ~14k-parameter CNN with one
output, the logit of "this 28x28 input is a digit", trained by digitrec.training.gate against letters, symbols,
scribbles, shapes and textures. The model card lists it under "gate" (file, sha256, threshold fitted on the
validation split); the predictor refuses an input whose logit is below the threshold ("not_digit_like").
The other way round, a logit of at least "vouch" (above all but a few non-digits the gate never saw) says that
the picture is surely a digit, so the digit model's low confidence there is a doubt between two digits, not a
sign of a non-digit: the predictor answers it, with that confidence, instead of refusing it.
NumPy and ONNX Runtime only: the serving half never imports torch.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from digitrec.card import ModelCard, check_pinned
from digitrec.errors import DigitrecError

GATE_FILE = "gate.onnx"
GATE_FRR = 0.001  # the gate may refuse at most this fraction of each set of validation digits


class Gate:
    """One ONNX Runtime session, its threshold and (optional) vouch; `scores` takes (N, 1, 28, 28) float32 in
    [0, 1]."""

    def __init__(self, path: Path, threshold: float, sha256: str | None = None, options: Any = None,
                 vouch: float | None = None) -> None:
        import onnxruntime as ort

        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise DigitrecError(f"cannot read the gate {path}: {exc.strerror or exc}; restore it or "
                                "remove \"gate\" from the model card.") from exc
        digest = hashlib.sha256(blob).hexdigest()
        check_pinned(path, digest, sha256, ": restore the file or train the gate again.")
        self.path, self.threshold, self.sha256 = path, float(threshold), digest
        self.vouch = None if vouch is None else float(vouch)  # None: low confidence is refused as before
        # `options`: the predictor's ort.SessionOptions (one thread, no spinning), so both sessions behave alike.
        try:
            self._session = ort.InferenceSession(blob, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
            raise DigitrecError(f"{path} is not a valid ONNX model ({type(exc).__name__}); "
                                "train the gate again.") from exc
        self._input = self._session.get_inputs()[0].name
        self.scores(np.zeros((1, 1, 28, 28), np.float32))  # warm-up: arenas are allocated on the first run

    @classmethod
    def from_card(cls, card: ModelCard, folder: Path, options: Any = None) -> Gate | None:
        """The card's "gate" entry ({"file", "sha256", "threshold"}) loaded from `folder`; None without one."""
        entry = card.gate
        if not isinstance(entry, dict):
            return None
        try:
            path, threshold = folder / Path(str(entry.get("file", GATE_FILE))).name, float(entry["threshold"])
            vouch = None if entry.get("vouch") is None else float(entry["vouch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DigitrecError(f"the model card's \"gate\" entry has no valid threshold ({exc}); "
                                "train the gate again (python -m digitrec.training.gate --install).") from exc
        if not path.exists():
            # A model copied without its gate (model.onnx and its card alone) still serves, on the rules alone:
            # say so rather than refuse to start. A gate that is there but changed is an error (__init__).
            warnings.warn(f"the model card lists the gate {path.name}, which is not in {folder}: answering "
                          "without it (copy it beside the model to refuse non-digits as the card says).",
                          stacklevel=4)
            return None
        return cls(path, threshold, entry.get("sha256"), options, vouch)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(N, 1, 28, 28) float32 -> (N,) logits of "digit" (higher: more digit-like)."""
        return self._session.run(None, {self._input: x})[0].reshape(-1)

    def refuses(self, x: np.ndarray) -> np.ndarray:
        """(N,) bool: True where the input is not a digit by the gate's fitted threshold."""
        return self.scores(x) < self.threshold

    def amend(self, reasons: list[str | None], scores: np.ndarray) -> list[str | None]:
        """The card's rules' reasons, as the gate's logits amend them: "not_digit_like" where the rules passed
        what the gate refuses; no reason where the rules doubted only the confidence and the gate vouches."""
        out = []
        for reason, score in zip(reasons, scores, strict=True):
            if reason is None and score < self.threshold:
                reason = "not_digit_like"
            elif reason == "low_confidence" and self.vouch is not None and score >= self.vouch:
                reason = None
            out.append(reason)
        return out
