"""`digitrec predict`: the digit (or, with --number, the number) in each image file, one line per file."""

from __future__ import annotations

from pathlib import Path

import typer

from digitrec.cli.typer_app import OptPath, app, err_console, fail
from digitrec.errors import DigitrecError


@app.command()
def predict(
    files: list[Path] = typer.Argument(..., help="Images (PNG, JPEG, WebP, BMP, GIF), one digit each."),
    model: OptPath = typer.Option(None, "--model", "-m", help="Run folder or .onnx (default: bundled)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per file instead of text."),
    number: bool = typer.Option(False, "--number", help="Each image holds a number of several digits."),
) -> None:
    """Recognise the digit in each image: `file: 7 (99.8%)`, or `file: no digit` for a blank one."""

    from digitrec.inference.predictor import load_model

    try:
        predictor = load_model(model)
    except DigitrecError as exc:
        fail(str(exc))
    line = _number_line if number else _digit_line
    _for_each_file(files, lambda path: line(predictor, path, as_json))


def _for_each_file(files: list[Path], line_for) -> None:
    """One output line per readable file; for the others a clear error on stderr, then a non-zero exit."""
    failed = 0
    for path in files:
        try:
            text = line_for(path)
        except DigitrecError as exc:  # unreadable, empty, truncated or too large: say so, go on
            err_console.print(f"{path}: error: {exc}", highlight=False, soft_wrap=True, markup=False)
            failed += 1
            continue
        typer.echo(text)
    if failed:
        fail(f"{failed} of {len(files)} file(s) could not be read.")


def _digit_line(predictor, path: Path, as_json: bool) -> str:
    """`file: 7 (99.8%)`, `file: no digit (reason)`, or the same as JSON."""
    import json

    p = predictor.predict_image(path)
    if as_json:
        return json.dumps({"file": str(path), "digit": p.digit, "confidence": round(p.confidence, 6),
                           "probabilities": [round(v, 6) for v in p.probabilities], "reason": p.reason})
    if p.digit is None:
        return f"{path}: no digit" + ("" if p.is_blank else f" ({p.reason.replace('_', ' ')})")
    return f"{path}: {p.digit} ({p.confidence:.1%})"


def _number_line(predictor, path: Path, as_json: bool) -> str:
    """`predict --number`: `file: 2024 (97.1%)`, or JSON with the digits' boxes."""
    import json

    from digitrec.inference.segment import read_number

    result = read_number(predictor, path)
    if as_json:
        return json.dumps({"file": str(path), **result.to_dict()})
    if not result.number:
        return f"{path}: no digits"
    return f"{path}: {result.number} ({result.confidence:.1%})"
