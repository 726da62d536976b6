"""The preprocessing and segmentation of commit LEGACY_REV (before issue 13), loaded from git for comparison.

benchmarks/documents.py compares today's `to_mnist` / `read_number` with the ones this repository had
before document images were handled; rather than keep a frozen copy of that code, this module reads it from
git history (`git show REV:path`) into private modules. Benchmarks only: nothing in src imports it.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

LEGACY_REV = "e1bcc3d"  # the last commit before issue 13's document preprocessing
ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: str, renames: dict[str, str]) -> types.ModuleType:
    src = subprocess.run(["git", "show", f"{LEGACY_REV}:{path}"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    for old, new in renames.items():
        src = src.replace(old, new)
    module = types.ModuleType(name)
    module.__file__ = f"{LEGACY_REV}:{path}"
    sys.modules[name] = module
    exec(compile(src, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own code from git
    return module


def legacy() -> tuple[types.ModuleType, types.ModuleType]:
    """(preprocess, segment) as they were at LEGACY_REV."""
    # The old sources import these by their paths of that time; the modules they did not have come from today's.
    names = {"digitrec.components": "_legacy_components", "digitrec.preprocess": "_legacy_preprocess",
             "digitrec.images": "digitrec.inference.images"}
    _load("_legacy_components", "src/digitrec/components.py", {})
    pre = _load("_legacy_preprocess", "src/digitrec/preprocess.py", names)
    seg = _load("_legacy_segment", "src/digitrec/segment.py", names)
    return pre, seg
