"""Kaggle Digit Recognizer: test.csv (pixel0..pixel783, 0..255) -> submission.csv (ImageId,Label)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.fileio import write_atomic

PIXELS = 28 * 28
HEADER = [f"pixel{i}" for i in range(PIXELS)]


def read_test_csv(path: Path) -> np.ndarray:
    """Validated (N, 28, 28) uint8 images; any malformed row is reported by its line number."""
    if not path.is_file():
        raise DigitrecError(f"{path} does not exist")
    rows = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DigitrecError(f"{path} is empty; expected a header pixel0..pixel783 and rows of 784 values")
        if [h.strip() for h in header] != HEADER:
            raise DigitrecError(f"{path}: the header must be pixel0..pixel783 (784 columns), "
                                f"found {len(header)} columns starting {','.join(header[:3])!r}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != PIXELS:
                raise DigitrecError(f"{path}, line {line}: expected 784 values, found {len(row)}")
            try:
                values = [int(v) for v in row]
            except ValueError:
                bad = next(v for v in row if not v.strip().lstrip("-").isdigit())
                raise DigitrecError(f"{path}, line {line}: {bad!r} is not a whole number from 0 to 255") from None
            if min(values) < 0 or max(values) > 255:
                raise DigitrecError(f"{path}, line {line}: pixel values must be between 0 and 255")
            rows.append(values)
    if not rows:
        raise DigitrecError(f"{path} has a header but no images")
    return np.asarray(rows, dtype=np.uint8).reshape(-1, 28, 28)


def write_submission(test_csv: Path, out: Path, model_path: Path | None = None) -> int:
    """Predict every row and write ImageId,Label (ids from 1). Returns the number of rows written."""
    from digitrec.inference.predictor import load_model

    images = read_test_csv(test_csv)
    labels = load_model(model_path).predict(images)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["ImageId", "Label"])
    writer.writerows((i, int(label)) for i, label in enumerate(labels, start=1))
    write_atomic(out, text.getvalue().encode())
    return len(labels)
