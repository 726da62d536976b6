"""The `digitrec` commands beyond train-and-predict: calibration, explanations, the webcam and feedback.

They register on the one Typer app of digitrec.cli_app, with its error and output conventions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from digitrec.cli_app import OptPath, app, console, fail
from digitrec.errors import DigitrecError


@app.command()
def calibrate(
    model: Path = typer.Argument(..., help="A run folder or an .onnx file (its model card is updated)."),
    synthetic: int = typer.Option(500, min=0, help="Synthetic handwritten digits added to the fit."),
    data_dir: OptPath = typer.Option(None, "--data-dir", help="Folder with the four MNIST files."),
) -> None:
    """Fit temperature scaling and the "no digit" rules on the validation split; store them in the model card."""
    from digitrec.artifacts import command_line
    from digitrec.calibrate import write_calibration

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
    from digitrec.explain import explain as explain_image
    from digitrec.explain import heatmap_image
    from digitrec.predictor import load_model

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
    from digitrec.predictor import load_model
    from digitrec.webcam import run_webcam

    try:
        predictor = load_model(model)
        n = run_webcam(predictor, source, window=window, as_json=as_json, max_frames=max_frames)
    except DigitrecError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if n == 0:
        fail(f"no frame could be read from {source!r}.")


feedback_app = typer.Typer(no_args_is_help=True, help="The feedback store: what users corrected.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Path = typer.Option(..., "--out", help="Folder for the IDX files (train --extra-data reads it)."),
    db: str | None = typer.Option(None, "--db", envvar="DIGITREC_DB", help="The store serve used (default: same)."),
    only_wrong: bool = typer.Option(False, "--only-wrong", help="Only samples the model got wrong."),
    max_per_client: int | None = typer.Option(None, "--max-per-client", min=1,
                                              help="Keep at most N samples (the oldest) from any one client."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Write after showing the counts, without asking."),
) -> None:
    """Show the labelled samples per label and per client, then (with --yes, or a yes at the prompt) write
    them as IDX files. Feedback is anonymous: look before it goes into training."""
    from digitrec.feedback_store import feedback_samples, open_store, write_idx

    try:
        store = open_store(db)
        try:
            images, labels, clients = feedback_samples(store, only_wrong, max_per_client)
        finally:
            store.close()
    except DigitrecError as exc:
        fail(str(exc))
    _print_review(labels.tolist(), clients)
    if not yes and not (sys.stdin.isatty() and typer.confirm(f"write {len(labels)} samples to {out}?")):
        fail(f"nothing written: review the counts above, then rerun with --yes to write {len(labels)} samples.")
    try:
        write_idx(out, images, labels)
    except OSError as exc:
        fail(f"cannot write to {out} ({exc.strerror or exc}).")
    console.print(f"wrote {len(labels)} labelled samples to {out} (digitrec train --extra-data {out})",
                  highlight=False)


def _print_review(labels: list[int], clients: list[str], top: int = 10) -> None:
    """Counts per label, then the clients (hashed) that sent most: one client dominating is worth a look."""
    from collections import Counter

    from rich.table import Table

    console.print(f"{len(labels)} labelled samples", highlight=False)
    by_label = Table("label", "samples", title="per label")
    for label, n in sorted(Counter(labels).items()):
        by_label.add_row(str(label), str(n))
    console.print(by_label)
    counts = Counter(clients)
    by_client = Table("client (hash)", "samples", "share", title=f"per client ({len(counts)} clients)")
    for client, n in counts.most_common(top):
        by_client.add_row(client or "(unknown)", str(n), f"{n / len(labels):.0%}")
    if len(counts) > top:
        rest = sum(n for _, n in counts.most_common()[top:])
        by_client.add_row(f"{len(counts) - top} others", str(rest), f"{rest / len(labels):.0%}")
    console.print(by_client)
