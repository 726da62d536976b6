"""Every serving module (digitrec.inference.*, digitrec.feedback.*, digitrec.web.*) imports with torch made
unimportable, in a fresh interpreter: the fast, in-process form of the boundary that tests/e2e/install proves
in a fresh venv and the import-linter contracts in pyproject.toml check statically."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import importlib, pkgutil, sys
sys.modules["torch"] = None  # `import torch` (and any torch.x) now raises ImportError
import digitrec.feedback, digitrec.inference, digitrec.web
names = []
for package in (digitrec.inference, digitrec.feedback, digitrec.web):
    names.append(package.__name__)
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    importlib.import_module(name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torchvision", "matplotlib"} and sys.modules[m])
assert not heavy, heavy
print(len(names))
"""


def test_every_serving_module_imports_without_torch():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) >= 20  # inference, feedback, web and their modules: the walk found them all
