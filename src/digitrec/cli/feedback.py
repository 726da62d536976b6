"""`digitrec feedback export`: review what users labelled (per label, per client), then write it as IDX files
for `train --extra-data`. Feedback is anonymous, so nothing is written before the counts are shown."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from digitrec.cli.typer_app import app, console, fail
from digitrec.errors import DigitrecError

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
    from digitrec.feedback.store import feedback_samples, open_store, write_idx

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
