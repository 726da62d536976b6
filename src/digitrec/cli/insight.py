"""`digitrec calibrate`, `explain` and `webcam`: refusal rules fitted to a model, saliency maps, a camera."""

from __future__ import annotations

from pathlib import Path

import typer

from digitrec.cli.typer_app import OptPath, app, console, fail
from digitrec.errors import DigitrecError


@app.command()
def calibrate(
    model: Path = typer.Argument(..., help="A run folder or an .onnx file (its model card is updated)."),
    synthetic: int = typer.Option(500, min=0, help="Synthetic handwritten digits added to the fit."),
    data_dir: OptPath = typer.Option(None, "--data-dir", help="Folder with the four MNIST files."),
) -> None:
    """Fit temperature scaling and the "no digit" rules on the validation split; store them in the model card."""
    from digitrec.training.calibrate import write_calibration
    from digitrec.training.runs import command_line

    try:
        card_path, cal = write_calibration(model, data_dir=data_dir, synthetic=synthetic, command=command_line())
    except DigitrecError as exc:
        fail(str(exc))
    console.print(
        f"T = {cal['temperature']:.3f}, reject below {cal['reject_below']:.3f}; ECE (validation) "
        f"{cal['ece_before'] * 100:.2f}% -> {cal['ece_after'] * 100:.2f}%; {cal['val_rejected'] * 100:.2f}% of "
        f"validation digits refused; wrote {card_path}", highlight=False, soft_wrap=True)


@app.command()
def explain(
    file: Path = typer.Argument(..., help="An image of one digit."),
    out: Path = typer.Option(Path("heat.png"), "--out", "-o", help="Where to write the heat map (PNG)."),
    model: OptPath = typer.Option(None, "--model", "-m", help="Run folder or .onnx (default: bundled)."),
    scale: int = typer.Option(10, min=1, max=40, help="Enlarge the 28x28 map this many times."),
) -> None:
    """Occlusion saliency: which pixels the answer depends on, as a heat map over what the model saw."""
    from digitrec.inference.explain import explain as explain_image
    from digitrec.inference.explain import heatmap_image
    from digitrec.inference.predictor import load_model

    if out.suffix.lower() != ".png":
        fail(f"--out must be a .png file, not {out.name!r}.")
    try:
        predictor = load_model(model)
    except DigitrecError as exc:
        fail(str(exc))
    try:
        e = explain_image(predictor, file)
    except DigitrecError as exc:
        fail(f"{file}: {exc}")
    if e.digit is None:
        fail(f"{file}: no digit to explain (the image is blank).")
    try:
        heatmap_image(e.input, e.saliency, scale=scale).save(out, "PNG")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}.")
    console.print(f"{file}: {e.digit} ({e.confidence:.1%}); heat map written to {out}", highlight=False,
                  soft_wrap=True)


@app.command()
def webcam(
    source: str = typer.Option("0", "--source", help="Camera index (0) or a video file."),
    model: OptPath = typer.Option(None, "--model", "-m", help="Run folder or .onnx (default: bundled)."),
    window: bool = typer.Option(True, "--window/--no-window", help="Show the annotated frames (q quits)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per frame."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
) -> None:
    """Read handwritten numbers from a camera or a video file, frame by frame."""
    from digitrec.cli.webcam import run_webcam
    from digitrec.inference.predictor import load_model

    try:
        predictor = load_model(model)
        n = run_webcam(predictor, source, window=window, as_json=as_json, max_frames=max_frames)
    except DigitrecError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if n == 0:
        fail(f"no frame could be read from {source!r}.")
