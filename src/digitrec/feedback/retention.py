"""Retention of the feedback store: how long (or how many) predictions are kept, and the background pruner.

Every answered prediction is stored (~1 KB a row), so without a limit traffic alone fills the data volume.
`--retain 30d` keeps 30 days, `--retain 100000` the newest 100,000 rows. A daemon thread prunes every
`interval` seconds: never per request and never on the event loop; each delete is a small batch
(FeedbackStore.prune), so the writes of the requests in between wait a few milliseconds at most.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from digitrec.errors import DigitrecError

log = logging.getLogger("digitrec.web")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
PRUNE_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Retention:
    max_age_s: float | None = None
    max_rows: int | None = None
    text: str = ""

    @property
    def active(self) -> bool:
        return self.max_age_s is not None or self.max_rows is not None


def parse_retain(text: str | None) -> Retention:
    """'30d', '12h', '90m', '2w' -> an age; '100000' -> a row count; None, '' or 'forever' -> keep all."""
    if text is None or text.strip().lower() in ("", "forever", "off"):
        return Retention()
    stripped = text.strip().replace("_", "")
    if stripped.isdigit() and int(stripped) > 0:
        return Retention(max_rows=int(stripped), text=text.strip())
    match = _AGE.match(stripped.lower())
    if match and float(match.group(1)) > 0:
        return Retention(max_age_s=float(match.group(1)) * _UNITS[match.group(2)], text=text.strip())
    raise DigitrecError(f"--retain {text!r} is neither an age nor a row count; write 30d, 12h or 100000.")


class Pruner:
    """Prunes `store` to `retention` now and then every `interval` seconds, on its own daemon thread."""

    def __init__(self, store: Any, retention: Retention, interval: float = PRUNE_INTERVAL_S) -> None:
        self.store, self.retention, self.interval = store, retention, interval
        self.pruned = 0
        self.last_run: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="digitrec-pruner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_once(self) -> int:
        from digitrec.feedback.store import StoreUnavailable

        try:
            n = self.store.prune(self.retention.max_age_s, self.retention.max_rows)
        except StoreUnavailable as exc:  # the database is down: try again next time
            log.warning("retention: prune failed: %s", exc)
            return 0
        self.pruned += n
        self.last_run = time.time()
        if n:
            log.info("retention: pruned %d predictions (%s)", n, self.retention.text)
        return n

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

    def summary(self) -> dict[str, Any]:
        """What /api/stats reports: the policy, and what this process pruned."""
        return {"retain": self.retention.text or "forever", "max_age_s": self.retention.max_age_s,
                "max_rows": self.retention.max_rows, "pruned": self.pruned, "last_pruned_at": self.last_run}
