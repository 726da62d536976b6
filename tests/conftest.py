"""Settings every tier shares. The fixtures live with the tier that needs them: tests/e2e/conftest.py (the real
MNIST, PostgreSQL, Redis) and tests/e2e/browser/conftest.py (Chromium); helpers the benchmarks also use are in
digitrec.testing."""

import os
import tempfile

# Two cores: keep each test process to the threads it needs, deterministic and polite to its neighbours.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Servers started by tests store predictions (feedback store) in a throwaway folder, never in ~/.local/share.
os.environ.setdefault("DIGITREC_DATA_DIR", tempfile.mkdtemp(prefix="digitrec-test-data-"))
