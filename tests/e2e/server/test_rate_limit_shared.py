"""The rate limit as a deployment sees it: shared by workers through Redis, keyed by the real client, failing
open (never a 5xx) when Redis is lost, and refusing to start on a store it cannot reach.

Real parts only: `digitrec serve` (uvicorn, 2 workers) and Debian's `redis-server`. The tests that need Redis
skip only where DIGITREC_TEST_REDIS_URL is unset (.ci/run starts one with .ci/start-redis); the outage test
starts its own redis-server next to it, so stopping it disturbs nothing else. Limits are per hour, so no
answer depends on how fast this machine is: every request of a test falls inside one window.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from digitrec.testing.servers import ONE_PIXELS, cli_server, free_port, start_fails, stop

# redis-py reads timeouts from the URL; 5 s so that a loaded CI machine never fails a round trip by accident.
PATIENT = "?socket_timeout=5&socket_connect_timeout=5"


def fake_client() -> str:
    """A client address of its own per test (198.18.0.0/15, benchmarking), so tests never share a bucket."""
    n = uuid.uuid4().int
    return f"198.{18 + (n & 1)}.{(n >> 1) & 255}.{(n >> 9) & 255}"


def predict(url: str, client: str | None = None) -> httpx.Response:
    headers = {"x-forwarded-for": client} if client else {}
    with httpx.Client() as fresh:  # a new connection each time: any worker may accept it
        return fresh.post(f"{url}/api/predict", json={"pixels": ONE_PIXELS}, headers=headers, timeout=30)


def storage_errors(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("digitrec_rate_limit_storage_errors_total"))


def predict_answers_by_pid(metrics_dir: Path) -> Counter:
    """POST answers per worker process, from prometheus-client's per-process files (counter_<pid>.db)."""
    from prometheus_client.mmap_dict import MmapedDict

    per_pid: Counter = Counter()
    for f in metrics_dir.glob("counter_*.db"):
        pid = f.stem.split("_")[-1]
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(f)):
            _, name, labels, _ = json.loads(key)
            if name == "digitrec_http_requests_total" and labels.get("method") == "POST":
                per_pid[pid] += value
    return per_pid


def test_two_workers_admit_exactly_the_limit_whichever_answers(tmp_path, redis_url):
    url = redis_url + PATIENT
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    client, limit = fake_client(), 6
    args = ("--db", "off", "--workers", "2", "--rate-limit", f"{limit}/hour", "--rate-limit-storage", url)
    with cli_server(tmp_path, *args, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)}) as s:
        codes: list[int] = []
        # Keep asking until both workers have answered some (each request is a new connection), at most 300.
        while len(codes) < 300 and (len(codes) < 4 * limit or len(predict_answers_by_pid(metrics)) < 2):
            codes.append(predict(s.url, client).status_code)
        assert len(predict_answers_by_pid(metrics)) == 2, "only one worker answered: the test proves nothing"
        assert storage_errors(s.url) == 0
        assert codes.count(200) == limit and codes[:limit] == [200] * limit
        assert set(codes[limit:]) == {429}
        assert predict(s.url, fake_client()).status_code == 200  # another client has a bucket of its own


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted-peer", "trusted-proxy"])
def test_forwarded_for_is_believed_only_from_configured_proxies(tmp_path, trusted):
    # The test connects from 127.0.0.1: a proxy when trusted; otherwise only 192.0.2.1 is one.
    proxies = "127.0.0.1" if trusted else "192.0.2.1"
    args = ("--db", "off", "--rate-limit", "3/hour", "--forwarded-allow-ips", proxies)
    with cli_server(tmp_path, *args) as s:
        a, b = fake_client(), fake_client()
        codes_a = [predict(s.url, a).status_code for _ in range(4)]
        code_b = predict(s.url, b).status_code
    logged = [json.loads(line)["client"] for line in s.log_lines()  # read once the server has stopped
              if line.startswith("{") and '"path":"/api/predict"' in line]
    assert codes_a == [200, 200, 200, 429]
    if trusted:  # each forwarded client its own bucket, and the log names it
        assert code_b == 200 and a in logged[0] and b in logged[-1]
    else:  # a new X-Forwarded-For per request does not escape the limit: every request is 127.0.0.1's
        assert code_b == 429 and all("127.0.0.1" in c for c in logged)


@pytest.fixture
def own_redis(tmp_path, redis_url) -> Iterator[tuple[str, Callable[[], None]]]:
    """A redis-server of this test's own (stoppable), and a function that (re)starts it on the same port."""
    # redis_url: skip where CI's Redis is not set up (redis-server may not be installed)
    binary = shutil.which("redis-server")
    assert binary, "DIGITREC_TEST_REDIS_URL is set but redis-server is not installed"
    port = free_port()
    procs: list[subprocess.Popen] = []

    def start() -> None:
        import redis

        procs.append(subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                       "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL))
        client = redis.Redis(port=port, socket_connect_timeout=5)
        for _ in range(300):  # up to 30 s on a loaded machine
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not answer")

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", start
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)


def test_redis_lost_mid_run_fails_open_then_limits_again(tmp_path, own_redis):
    url, restart = own_redis
    client = fake_client()
    args = ("--db", "off", "--workers", "2", "--rate-limit", "3/hour", "--rate-limit-storage", url)
    with cli_server(tmp_path, *args) as s:
        assert [predict(s.url, client).status_code for _ in range(4)] == [200, 200, 200, 429]
        import redis

        redis.Redis.from_url(url).shutdown(nosave=True)  # Redis gone mid-run
        down = [predict(s.url, client) for _ in range(8)]
        assert [r.status_code for r in down] == [200] * 8  # fail open: predictions keep working
        assert all(r.json()["digit"] == 1 for r in down)
        assert storage_errors(s.url) >= 8
        assert httpx.get(f"{s.url}/readyz", timeout=30).status_code == 200
        restart()  # back, empty: limiting resumes with a fresh window
        codes = [predict(s.url, client).status_code for _ in range(12)]
        assert codes.count(200) == 3 and codes[-1] == 429, codes
    warnings = [line for line in s.log_lines() if "rate limit storage" in line and "failed" in line]
    assert 1 <= len(warnings) <= 2, warnings  # once per outage per worker, not once per request
    assert any("answers again" in line for line in s.log_lines())
    assert not any("Traceback" in line for line in s.log_lines())


def test_a_hanging_redis_delays_but_never_fails_an_answer(tmp_path, own_redis):
    url, _ = own_redis
    import redis

    with cli_server(tmp_path, "--db", "off", "--rate-limit", "100/hour", "--rate-limit-storage", url) as s:
        assert predict(s.url).status_code == 200
        redis.Redis.from_url(url).execute_command("CLIENT", "PAUSE", "4000", "ALL")  # Redis stops answering
        assert [predict(s.url).status_code for _ in range(3)] == [200] * 3
        assert storage_errors(s.url) >= 1


def test_unreachable_redis_at_start_is_one_clear_error(tmp_path):
    pytest.importorskip("redis")
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    r = start_fails(tmp_path, "--rate-limit", "5/second", "--rate-limit-storage", url)
    assert r.returncode == 1 and "Redis does not answer" in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert "hunter2" not in r.stderr + r.stdout and ":***@127.0.0.1" in r.stderr


@pytest.mark.parametrize("value", ["2/hour", "off"])
def test_the_limit_comes_from_the_environment_as_the_image_sets_it(tmp_path, value):
    with cli_server(tmp_path, "--db", "off", env={"DIGITREC_RATE_LIMIT": value}) as s:
        codes = [predict(s.url).status_code for _ in range(4)]
    assert codes == ([200, 200, 429, 429] if value != "off" else [200] * 4)


@pytest.mark.parametrize(("args", "message"), [
    (("--rate-limit", "5/second", "--rate-limit-storage", "memcached://cache:11211"), "use memory:// or redis://"),
    (("--rate-limit-storage", "redis://127.0.0.1:6379"), "needs --rate-limit"),
    (("--forwarded-allow-ips", "10.0.0.300"), "not an IP address or network"),
])
def test_bad_options_are_refused_at_start(tmp_path, args, message):
    r = start_fails(tmp_path, *args)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr + r.stdout
