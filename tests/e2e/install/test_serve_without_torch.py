"""`pip install digitrec[serve]` in a fresh venv: no torch, and the Python API, the CLI and the web app work.

This is what keeps the serving half honest about its imports. It downloads wheels (onnxruntime, fastapi...),
so it is marked slow; CI runs it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import venv
from pathlib import Path

import httpx
import numpy as np
import pytest

from digitrec import load_model
from digitrec.testing.servers import free_port, stop, wait_ready
from digitrec.training.synth import render
from tests import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def run(*cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory) -> Path:
    """A fresh venv with `pip install <copy of the repo>[serve]` (a copy, so the build never writes here)."""
    base = tmp_path_factory.mktemp("serve-venv")
    src = base / "digitrec"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", src / "src", ignore=ignore)
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    r = run(py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{src}[serve]")
    assert r.returncode == 0, f"pip install failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return env_dir


def test_serve_install_has_no_torch(serve_venv: Path):
    r = run(serve_venv / "bin" / "python", "-c", "import torch")
    assert r.returncode != 0 and "No module named 'torch'" in r.stderr


def test_python_api_predicts_like_the_dev_install(serve_venv: Path, tmp_path: Path):
    image = tmp_path / "four.png"
    render(4, np.random.default_rng(4), "canvas").save(image)
    code = (
        "import json, sys; from digitrec import load_model; m = load_model(); "
        f"p = m.predict_image({str(image)!r}); "
        "assert 'torch' not in sys.modules; "
        "print(json.dumps({'digit': p.digit, 'probabilities': list(p.probabilities), 'sha': m.sha256}))"
    )
    # Run from a neutral folder so the installed package is used, not this checkout.
    r = run(serve_venv / "bin" / "python", "-c", code, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    here = load_model(ROOT / "src" / "digitrec" / "bundled")
    assert got["sha"] == here.sha256  # the bundled model shipped inside the wheel
    np.testing.assert_allclose(got["probabilities"], here.predict_image(image).probabilities, atol=1e-5)


def test_console_script_predicts_and_serves(serve_venv: Path, tmp_path: Path):
    image = tmp_path / "one.png"
    render(1, np.random.default_rng(1), "canvas").save(image)
    env = {"PATH": f"{serve_venv / 'bin'}:/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    r = run("digitrec", "predict", image, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{image}: ")

    port = free_port()
    proc = subprocess.Popen(["digitrec", "serve", "--port", str(port)], cwd=tmp_path, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        answer = httpx.post(f"{url}/api/predict", files={"file": image.read_bytes()}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert httpx.get(url + "/").status_code == 200  # the page's static files ship in the wheel
        assert httpx.get(url + "/static/app.js").status_code == 200
    finally:
        stop(proc)


def _dockerfile() -> tuple[dict[str, str], str, str]:
    """The Dockerfile's runtime ENV, its CMD's shell line and its HEALTHCHECK's Python code."""
    import re
    import shlex

    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    # The image adds the redis extra (the Redis client, pure Python), used only with DIGITREC_RATE_LIMIT_STORAGE.
    assert re.search(r"^ARG EXTRAS=serve(,redis)?$", text, re.M), "the image must install what serve_venv installs"
    env_line = re.findall(r"^ENV (.*)$", text, re.M)[-1]
    env = dict(item.split("=", 1) for item in shlex.split(env_line))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    assert cmd[:2] == ["sh", "-c"]
    health = shlex.split(re.search(r"^HEALTHCHECK .* CMD (.*)$", text, re.M).group(1))
    assert health[:2] == ["python", "-c"]
    return env, cmd[2], health[2]


def test_server_runs_as_the_docker_image_runs_it(serve_venv: Path, tmp_path: Path):
    """No Docker engine here: the image's install (serve_venv), its ENV and its CMD, run as they are, with
    PORT moved to a free port and the folders to tmp. Two workers, so /metrics must sum over processes."""
    env, cmd, health = _dockerfile()
    port = free_port()
    env.update(PORT=str(port), DIGITREC_DATA_DIR=str(tmp_path / "data"),
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    env["PATH"] = f"{serve_venv / 'bin'}:/usr/bin:/bin"
    assert env["WEB_CONCURRENCY"] == "2"
    env["DIGITREC_RATE_LIMIT"] = "1000/second"  # the image's limit stays on, above this test's burst of requests
    proc = subprocess.Popen(["sh", "-c", cmd], cwd=tmp_path, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        r = run(serve_venv / "bin" / "python", "-c", health, env=env)  # the HEALTHCHECK passes
        assert r.returncode == 0, r.stderr
        pixels = np.zeros((28, 28))
        pixels[4:24, 13:15] = 1.0
        ids = []
        for _ in range(20):  # new connections: both workers answer some
            with httpx.Client() as client:
                answer = client.post(f"{url}/api/predict", json={"pixels": pixels.tolist()}, timeout=30)
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["id"])
        assert httpx.post(f"{url}/api/feedback", json={"id": ids[0], "label": 1}).status_code == 200
        assert httpx.get(f"{url}/api/stats").json()["predictions"] == 20  # one SQLite file, both workers
        metrics = httpx.get(f"{url}/metrics").text
        line = next(x for x in metrics.splitlines()
                    if x.startswith("digitrec_http_requests_total{") and 'route="/api/predict"' in x)
        assert float(line.split()[-1]) == 20  # summed over the two worker processes
        assert (tmp_path / "data" / "feedback.db").exists()
    finally:
        stop(proc)
