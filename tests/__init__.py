"""The test suite, in tiers that mirror the package: unit/ (library code, tiny synthetic data), api/ (the app in
process), e2e/ (real servers, Chromium, a fresh venv, the real MNIST, real training). See docs/architecture.md."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: benchmarks/, examples/, deploy/, notebooks/
