"""What each hostile file costs a real server: status, seconds, CPU seconds, MB added to the process's peak
RSS, and the worst /healthz latency while four clients send the heaviest files at once.

Starts `uvicorn digitrec.web.app:create_app` (one worker, the bundled model, a throwaway SQLite store) on
loopback. Each file is sent alone first (peak RSS reset through /proc/PID/clear_refs, so run it as root or as
the owner of the server; CPU from /proc/PID/stat); then four client threads send the heaviest ones for
--seconds while a fifth asks /healthz every 50 ms. Goals (issue 17): <= 100 MB added by any request, <= 1.5 s
CPU for any request, <= 0.5 s worst /healthz, every case a 4xx or a correct answer. Linux only.

    OMP_NUM_THREADS=1 python benchmarks/hostile.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from digitrec.testing.hostile import CASES, Case, files_for, phone_photo
from digitrec.testing.servers import free_port, stop, wait_ready

TICK = os.sysconf("SC_CLK_TCK")


def start(tmp: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DIGITREC_DB": f"sqlite:///{tmp}/feedback.db"}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "digitrec.web.app:create_app", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)  # no access log lines in the table
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def one(client: httpx.Client, pid: int, case: Case) -> tuple[int, float, float, float]:
    """(status, seconds, CPU seconds, MB the peak RSS rose above the RSS before) for one request."""
    files = files_for(case)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak RSS starts again from the current RSS
    before, cpu = memory_mb(pid)["VmRSS"], cpu_seconds(pid)
    t = time.perf_counter()
    status = client.post(case.route, files=files).status_code
    seconds = time.perf_counter() - t
    return status, seconds, cpu_seconds(pid) - cpu, memory_mb(pid)["VmHWM"] - before


def under_load(url: str, heavy: list[Case], seconds: float) -> tuple[float, int, dict[int, int]]:
    """Four clients send `heavy` round robin for `seconds`; (worst /healthz seconds, probes, statuses)."""
    bodies = [(case.route, files_for(case)) for case in heavy]
    stop_at = time.monotonic() + seconds
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def sender(k: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            i = k
            while time.monotonic() < stop_at:
                route, files = bodies[i % len(bodies)]
                code = c.post(route, files=files).status_code
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                i += 1

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    worst, probes = 0.0, 0
    with httpx.Client(base_url=url, timeout=30) as c:
        while time.monotonic() < stop_at:
            t = time.perf_counter()
            assert c.get("/healthz").status_code == 200
            worst, probes = max(worst, time.perf_counter() - t), probes + 1
            time.sleep(0.05)
    for th in threads:
        th.join()
    return worst, probes, statuses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the four-client phase")
    args = ap.parse_args()
    photo = Case("phone photo 12 Mpx JPEG (not hostile)", "/api/predict", lambda: [phone_photo()], (200,))
    cases = [*CASES, photo]
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; one uvicorn worker")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(tmp)
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                client.post("/api/predict", files=files_for(photo))  # warm-up: first-call allocations
                print("| input | bytes | status | handled | seconds | CPU s | MB added |")
                print("|---|---:|---:|:-:|---:|---:|---:|")
                failures = []
                for case in cases:
                    size = sum(len(data) for _, (_, data) in files_for(case))
                    status, seconds, cpu, added = one(client, proc.pid, case)
                    handled = status in case.ok
                    if not handled or added > 100 or cpu > 1.5:
                        failures.append(case.name)
                    print(f"| {case.name} | {size:,} | {status} | {'yes' if handled else 'NO'} | {seconds:.3f} | "
                          f"{cpu:.2f} | {added:.1f} |")
            heavy = [c for c in cases if c.name.startswith(("transparent", "noise", "grid", "phone", "animated"))]
            worst, probes, statuses = under_load(url, heavy, args.seconds)
            rss = memory_mb(proc.pid)
            answers = dict(sorted(statuses.items()))
            print(f"\nfour clients sending {', '.join(c.name for c in heavy)} for {args.seconds:.0f} s: "
                  f"worst /healthz {worst * 1000:.0f} ms over {probes} probes; answers {answers}; "
                  f"server RSS now {rss['VmRSS']:.0f} MB, peak {rss['VmHWM']:.0f} MB")
            print("goals met" if not failures and worst <= 0.5 else f"goals NOT met: {failures or 'healthz'}")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
