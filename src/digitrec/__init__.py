"""digitrec: handwritten-digit recognition.

    from digitrec import load_model
    model = load_model()
    model.predict_image("digit.png")  # Prediction(digit=7, confidence=0.998, ...)

The public names are imported lazily, so `import digitrec` (and `digitrec --help`) stays light: onnxruntime
is loaded only when a model is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Prediction", "Predictor", "load_model", "__version__"]

if TYPE_CHECKING:
    from digitrec.inference.predictor import Prediction, Predictor, load_model


def __getattr__(name: str) -> Any:
    if name in {"load_model", "Prediction", "Predictor"}:
        from digitrec.inference import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")
