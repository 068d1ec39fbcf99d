"""A bounded load test of the explorer server (`flowergan serve`) on 127.0.0.1; prints one JSON object.

    PYTHONPATH=. .venv/bin/python bench/serve_load.py              # tiny random-weight model, ~30 s
    PYTHONPATH=. .venv/bin/python bench/serve_load.py --network models/flowers --requests 50

Starts the server in its own process (so its memory is its own), then measures: requests/s and p50/p99
latency of /api/generate with 1 client and with 8 clients (a new connection per request), 200 requests
started at the same moment (all must be answered 200 or 503: no resets, no timeouts), a handful of hostile
requests, and the server's resident memory (VmRSS) before and after. Loopback only; every phase is
bounded in request count and in time (--max-seconds per phase).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tiny_model(folder: Path) -> Path:
    from flowergan.config import preset
    from flowergan.networks import build_networks
    from flowergan.networks.store import write_model_dir

    cfg = preset("tiny")
    G, D = build_networks(cfg, seed=0)
    return write_model_dir(folder / "tiny", cfg, {"G": G, "G_ema": G, "D": D})


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _request(url: str, body: dict | None, timeout: float = 60.0) -> tuple[int | str, float]:
    """-> (HTTP status or the error's name, seconds)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json", "Connection": "close"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            status: int | str = r.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    except OSError as e:  # reset, refused, timed out
        status = type(e).__name__
    return status, time.perf_counter() - t0


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(1000 * xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))], 1)


def _clients(url: str, n_clients: int, n_requests: int, max_s: float) -> dict:
    """`n_clients` threads share `n_requests` /api/generate requests (seed = request number)."""
    lock, next_i, out = threading.Lock(), [0], []
    deadline = time.perf_counter() + max_s

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= n_requests:
                return
            out.append(_request(url + "api/generate", {"seed": i}))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [s for st, s in out if st == 200]
    return {"clients": n_clients, "requests": len(out), "ok": len(ok), "busy_503": sum(st == 503 for st, _ in out),
            "other": sorted({str(st) for st, _ in out if st not in (200, 503)}), "seconds": round(wall, 2),
            "ok_per_s": round(len(ok) / wall, 2), "p50_ms": _pct(ok, 0.5), "p99_ms": _pct(ok, 0.99)}


def _burst(url: str, n: int) -> dict:
    """n requests (half generate, half health) released at the same moment, each on its own connection."""
    barrier, results = threading.Barrier(n), [None] * n

    def one(i):
        barrier.wait(30)
        results[i] = _request(url + ("api/generate" if i % 2 else "api/health"), {"seed": i} if i % 2 else None)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    statuses = [r[0] if r else "no answer" for r in results]
    return {"simultaneous": n, "ok_200": statuses.count(200), "busy_503": statuses.count(503),
            "unanswered": [s for s in statuses if s not in (200, 503)], "seconds": round(time.perf_counter() - t0, 2),
            "p99_ms": _pct([r[1] for r in results if r], 0.99)}


def _hostile(url: str) -> dict:
    cases = {"mix styles 0-20000000": ("api/mix", {"row_seed": 1, "col_seed": 2, "styles": "0-20000000"}),
             "5000-digit seed": ("api/generate", None), "seeds list of 20000 ints": ("api/generate", None)}
    out = {}
    for name, (path, body) in cases.items():
        raw = json.dumps(body).encode() if body is not None else (
            b'{"seed": ' + b"9" * 5000 + b"}" if "digit" in name
            else json.dumps({"seeds": list(range(20000))}).encode())
        req = urllib.request.Request(url + path, data=raw, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                out[name] = r.status
        except urllib.error.HTTPError as e:
            out[name] = e.code
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", default=None, help="Model to serve (default: a tiny random-weight model).")
    ap.add_argument("--requests", type=int, default=100, help="Requests per client phase (at most 2000).")
    ap.add_argument("--simultaneous", type=int, default=200, help="Requests in the burst (at most 500).")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="Time cap per client phase.")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the server.")
    args = ap.parse_args()
    n_req, n_burst = min(args.requests, 2000), min(args.simultaneous, 500)
    with tempfile.TemporaryDirectory() as tmp:
        network = args.network or str(_tiny_model(Path(tmp)))
        env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(args.threads)}
        cmd = [sys.executable, "-m", "flowergan", "serve", "--network", network, "--port", "0", "--device", "cpu",
               "--queue-size", "16"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            line = proc.stdout.readline()
            url = line.split(" at ", 1)[1].split()[0]
            assert url.startswith("http://127.0.0.1:"), line
            _request(url + "api/generate", {"seed": 0})  # warm up
            rss_before = _rss_mb(proc.pid)
            one = _clients(url, 1, n_req, args.max_seconds)
            eight = _clients(url, 8, n_req, args.max_seconds)
            burst = _burst(url, n_burst)
            hostile = _hostile(url)
            time.sleep(0.5)
            rss_after = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    print(json.dumps({"bench": "serve_load", "network": args.network or "tiny (random weights)",
                      "server": " ".join(["flowergan"] + cmd[3:]).replace(network, "MODEL"),
                      "one_client": one, "eight_clients": eight, "burst": burst, "hostile_status": hostile,
                      "rss_mb_before": round(rss_before, 1), "rss_mb_after": round(rss_after, 1),
                      "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)}, indent=1))


if __name__ == "__main__":
    main()
