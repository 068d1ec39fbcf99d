"""Replay the hostile inputs of docs/robustness.md ("Commands and the web server") against a source tree and
print what each got, as JSON lines: exit status, whether a traceback was printed, the last line, seconds.

    PYTHONPATH=. .venv/bin/python bench/hostile_probe.py                       # this checkout
    git archive 5458d08 | tar -x -C /tmp/before                                # the tree before the work
    PYTHONPATH=. .venv/bin/python bench/hostile_probe.py --repo /tmp/before    # the "before" column

Each command runs in its own process under a 3 GB address-space cap and a 60 s timeout (rc 124 = killed
at the timeout). The full-disk and read-only rows mount small tmpfs folders and are skipped where mounting
is not allowed (it needs root). Web rows start the tree's explorer server in this process on 127.0.0.1
and report the status, the error and how much the process's peak memory grew.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _cap():
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, resource.RLIM_INFINITY))


def cli(repo: Path, work: Path, label: str, args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "flowergan", *map(str, args)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=work, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"}, capture_output=True,
                           text=True, timeout=60, preexec_fn=_cap)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = 124, (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
    lines = [ln for ln in out.replace("\r", "\n").splitlines() if ln.strip()]
    return {"input": label, "rc": rc, "traceback": "Traceback" in out, "last": (lines[-1] if lines else "")[:240],
            "seconds": round(time.perf_counter() - t0, 1)}


def _mount(path: Path, opts: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0


def cli_cases(repo: Path, tmp: Path, match: str = "") -> list[dict]:
    import numpy as np
    import PIL.Image

    sys.path.insert(0, str(repo))
    from flowergan.config import preset
    from flowergan.networks import build_networks
    from flowergan.networks.store import write_model_dir

    def model(name, res):
        cfg = preset("tiny").replace(resolution=res)
        G, D = build_networks(cfg, seed=0)
        return write_model_dir(tmp / name, cfg, {"G": G, "G_ema": G, "D": D})

    t, t128 = model("tiny", 32), model("t128", 128)
    bad_st = tmp / "bad_st"
    bad_st.mkdir()
    shutil.copy(t / "config.json", bad_st)
    (bad_st / "weights.safetensors").write_bytes((t / "weights.safetensors").read_bytes()[:100])
    (tmp / "bad.pkl").write_bytes(b"garbage\n")
    PIL.Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(tmp / "photo.png")
    np.savez(tmp / "nan.npz", w=np.full([1, 8, 64], np.nan, np.float32))
    header = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**8, 8, 64)})
    with zipfile.ZipFile(tmp / "lie.npz", "w") as z:
        z.writestr("w.npy", header.getvalue() + bytes(64))
    run_ck = tmp / "run" / "checkpoints" / "ck"
    run_ck.mkdir(parents=True)
    (run_ck / "train_state.json").write_text("{}")
    (tmp / "run" / "config.json").write_text("{not json")
    work = tmp / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "flowergan", "prepare", "synthetic", "--out", str(tmp / "flowers.zip"),
                    "--count", "8", "--resolution", "32", "--workers", "1", "--no-progress"], cwd=work, check=True,
                   env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"}, capture_output=True)
    dev = ["--device", "cpu"]
    cases = [
        ("generate --trunc nan", ["generate", "--network", t, "--seeds", 0, "--trunc", "nan", "--outdir", "o1", *dev]),
        ("generate --seeds 0-4294967295", ["generate", "--network", t, "--seeds", "0-4294967295", "--outdir", "o2", *dev]),
        ("generate --seeds <5000 digits>", ["generate", "--network", t, "--seeds", "9" * 5000, "--outdir", "o3", *dev]),
        ("generate --seeds 0-99999 --grid (128 px)", ["generate", "--network", t128, "--seeds", "0-99999", "--grid",
                                                      "--outdir", "o4", *dev]),
        ("generate --projected-w <NaN>", ["generate", "--network", t, "--projected-w", tmp / "nan.npz", "--outdir", "o5", *dev]),
        ("generate --projected-w <header claims 191 GiB>", ["generate", "--network", t, "--projected-w", tmp / "lie.npz",
                                                            "--outdir", "o6", *dev]),
        ("mix --rows 0-999999", ["mix", "--network", t, "--rows", "0-999999", "--cols", 1, "--out", "m.png", *dev]),
        ("mix --styles 0-20000000", ["mix", "--network", t, "--rows", 1, "--cols", 2, "--styles", "0-20000000",
                                     "--out", "m2.png", *dev]),
        ("interpolate --frames 1000000000", ["interpolate", "--network", t, "--seeds", "1,2", "--frames", 10**9,
                                             "--out", "v.gif", *dev]),
        ("interpolate --fps nan", ["interpolate", "--network", t, "--seeds", "1,2", "--frames", 2, "--fps", "nan",
                                   "--out", "v2.gif", *dev]),
        ("truncation --psi 1e300", ["truncation", "--network", t, "--seeds", 1, "--psi", "1e300", "--out", "t.png", *dev]),
        ("project --steps 1000000000", ["project", "--network", t, "--target", tmp / "photo.png", "--steps", 10**9,
                                        "--outdir", "p", *dev]),
        ("project --lr nan", ["project", "--network", t, "--target", tmp / "photo.png", "--lr", "nan", "--steps", 2,
                              "--outdir", "p2", *dev]),
        ("--device cuda (no CUDA)", ["generate", "--network", t, "--seeds", 0, "--outdir", "o7", "--device", "cuda"]),
        ("--device bogus", ["generate", "--network", t, "--seeds", 0, "--outdir", "o8", "--device", "bogus"]),
        ("truncated weights.safetensors", ["generate", "--network", bad_st, "--seeds", 0, "--outdir", "o9", *dev]),
        ("info --network <garbage .pkl>", ["info", "--network", tmp / "bad.pkl"]),
        ("import-official <garbage .pkl>", ["import-official", tmp / "bad.pkl", "imported"]),
        ("metrics --metrics nope", ["metrics", "--network", t, "--metrics", "nope", "--num", 2, *dev]),
        ("prepare synthetic --resolution 3", ["prepare", "synthetic", "--out", "d.zip", "--resolution", 3, "--count", 2]),
        ("bench --batch 1000000000", ["bench", "--what", "generator", "--preset", "tiny", "--batch", 10**9,
                                      "--repeats", 1, "--warmup", 0]),
        ("train --batch 1000000000", ["train", "--data", tmp / "flowers.zip", "--preset", "tiny", "--batch", 10**9,
                                      "--kimg", 0.01, "--out", "runs"]),
        ("train --resume <garbled config.json>", ["train", "--resume", run_ck, "--out", "runs"]),
    ]
    if _mount(tmp / "full", "size=16k"):
        cases.append(("generate --outdir <full disk>", ["generate", "--network", t, "--seeds", "0-40", "--outdir",
                                                        tmp / "full" / "o", *dev]))
    if _mount(tmp / "ro", "size=1m,ro"):
        cases.append(("generate --outdir <read-only fs>", ["generate", "--network", t, "--seeds", 0, "--outdir",
                                                           tmp / "ro" / "o", *dev]))
    try:
        return [cli(repo, work, label, args) for label, args in cases if match in label]
    finally:
        for m in ("full", "ro"):
            subprocess.run(["umount", str(tmp / m)], capture_output=True)


def _raw(port: int, body: bytes, path: str = "/api/generate", length: str | None = "auto",
         extra: tuple[str, ...] = ()) -> str:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", "Content-Type: application/json"]
    if length is not None:
        head.append(f"Content-Length: {len(body) if length == 'auto' else length}")
    head += list(extra)
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=40) as s:
            s.sendall(data)
            buf = b""
            while chunk := s.recv(65536):
                buf += chunk
    except OSError as e:
        return type(e).__name__
    status = buf.split(b" ", 2)[1].decode() if buf else "no answer"
    body_out = buf.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in buf else b""
    try:
        return f"{status} {json.loads(body_out).get('error', '')[:100]}"
    except ValueError:
        return status


def web_cases(repo: Path) -> list[dict]:
    sys.path.insert(0, str(repo))
    from flowergan.config import preset
    from flowergan.inference import Pipeline
    from flowergan.networks import build_networks
    from flowergan.web import make_server

    srv = make_server(Pipeline(build_networks(preset("tiny"), seed=0)[0]), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    mix = json.dumps({"row_seed": 1, "col_seed": 2, "styles": "0-20000000"}).encode()
    cases = [
        ("a 5,000-digit integer", lambda: _raw(port, b'{"seed": ' + b"9" * 5000 + b"}")),
        ("JSON nested 5,000 deep", lambda: _raw(port, b'{"seed": ' + b"[" * 5000 + b"]" * 5000 + b"}")),
        ('"psi": NaN', lambda: _raw(port, b'{"seed": 1, "psi": NaN}')),
        ('"psi": 1e999', lambda: _raw(port, b'{"seed": 1, "psi": 1e999}')),
        ("Content-Length: -1", lambda: _raw(port, b'{"seed": 1}', length="-1")),
        ("two different Content-Length headers", lambda: _raw(port, b'{"seed": 1}', extra=("Content-Length: 12",))),
        ("Content-Length missing", lambda: _raw(port, b'{"seed": 1}', length=None)),
        ("body over 16 KB", lambda: _raw(port, b'{"seed": 1' + b" " * 20000 + b"}")),
        ('"seed": "5" (wrong type)', lambda: _raw(port, b'{"seed": "5"}')),
        ("an unknown field", lambda: _raw(port, b'{"seed": 1, "x": 2}')),
        ("Content-Length: abc", lambda: _raw(port, b'{"seed": 1}', length="abc")),
        ("Content-Length of 30 digits", lambda: _raw(port, b'{"seed": 1}', length="9" * 30)),
        ("Content-Length: 200 with 11 bytes sent", lambda: _raw(port, b'{"seed": 1}', length="200")),
        ("not UTF-8", lambda: _raw(port, b'\xff{"seed": 1}')),
        ('/api/mix "styles": "0-20000000"', lambda: _raw(port, mix, "/api/mix")),
    ]
    out = []
    for label, fn in cases:
        before, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
        got = fn()
        out.append({"request": label, "got": got, "seconds": round(time.perf_counter() - t0, 1),
                    "peak_mb_grew": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)})
    srv.shutdown()
    srv.server_close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=HERE, help="Source tree to probe (default: this checkout).")
    ap.add_argument("--only", choices=["cli", "web"], default=None)
    ap.add_argument("--match", default="", help="Only the command rows whose input contains this text.")
    args = ap.parse_args()
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        rows = ([] if args.only == "web" else cli_cases(repo, Path(tmp), args.match)) + \
               ([] if args.only == "cli" else web_cases(repo))
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
