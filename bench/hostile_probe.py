"""Replay the hostile inputs of docs/robustness.md ("Commands and the web server") against a source tree and
print what each got, as JSON lines: exit status, whether a traceback was printed, the last line, seconds; then
a table per area: tried / OK / defects / tracebacks.

    PYTHONPATH=. .venv/bin/python bench/hostile_probe.py                       # this checkout
    git archive 5458d08 | tar -x -C /tmp/before                                # the tree before the work
    PYTHONPATH=. .venv/bin/python bench/hostile_probe.py --repo /tmp/before    # the "before" column
    PYTHONPATH=. .venv/bin/python bench/hostile_probe.py --round 3             # only round 3's inputs (issue #25)

A row is OK when the command (or request) is refused the way docs/robustness.md promises: the expected exit
status (2 for bad input, 1 for a failed run) or HTTP status class, one `Error:` line, no traceback, within the
timeout. Anything else (exit 0 on a hostile input, a timeout, a 500, a traceback) is a defect.

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


# runs the command as its child and reports the child's peak resident memory (RUSAGE_CHILDREN: that child only)
_PEAK = ("import resource, subprocess, sys\n"
         "r = subprocess.run(sys.argv[1:])\n"
         "sys.stderr.write('\\nPEAK_RSS_KB %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
         "sys.exit(r.returncode)")
PEAK_MB_OK = 1500  # a refusal may cost what the command's own start costs (torch and a tiny model), not more


def cli(repo: Path, work: Path, label: str, args: list[str], expect: int = 2, area: str | None = None) -> dict:
    import os
    import signal

    cmd = [sys.executable, "-c", _PEAK, sys.executable, "-m", "flowergan", *map(str, args)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=work, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_cap,
                         start_new_session=True)
    try:
        so, se = p.communicate(timeout=60)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the command and its wrapper
        so, se = p.communicate()
        rc = 124
    peak = [int(ln.split()[1]) // 1024 for ln in se.splitlines() if ln.startswith("PEAK_RSS_KB ")]
    out = so + "\n".join(ln for ln in se.splitlines() if not ln.startswith("PEAK_RSS_KB "))
    lines = [ln for ln in out.replace("\r", "\n").splitlines() if ln.strip()]
    tb = "Traceback" in out
    peak_mb = peak[0] if peak else None
    ok = (rc == expect and not tb and sum(ln.startswith("Error:") for ln in lines) == 1
          and (peak_mb or 0) <= PEAK_MB_OK)
    return {"area": area or label.split()[0], "input": label, "rc": rc, "traceback": tb, "ok": ok,
            "peak_mb": peak_mb, "last": (lines[-1] if lines else "")[:240],
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

    tmp.mkdir(parents=True, exist_ok=True)
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
        ("generate --seeds 0-4294967295",
         ["generate", "--network", t, "--seeds", "0-4294967295", "--outdir", "o2", *dev]),
        ("generate --seeds <5000 digits>", ["generate", "--network", t, "--seeds", "9" * 5000, "--outdir", "o3", *dev]),
        ("generate --seeds 0-99999 --grid (128 px)", ["generate", "--network", t128, "--seeds", "0-99999", "--grid",
                                                      "--outdir", "o4", *dev]),
        ("generate --projected-w <NaN>",
         ["generate", "--network", t, "--projected-w", tmp / "nan.npz", "--outdir", "o5", *dev]),
        ("generate --projected-w <header claims 191 GiB>",
         ["generate", "--network", t, "--projected-w", tmp / "lie.npz", "--outdir", "o6", *dev]),
        ("mix --rows 0-999999", ["mix", "--network", t, "--rows", "0-999999", "--cols", 1, "--out", "m.png", *dev]),
        ("mix --styles 0-20000000", ["mix", "--network", t, "--rows", 1, "--cols", 2, "--styles", "0-20000000",
                                     "--out", "m2.png", *dev]),
        ("interpolate --frames 1000000000", ["interpolate", "--network", t, "--seeds", "1,2", "--frames", 10**9,
                                             "--out", "v.gif", *dev]),
        ("interpolate --fps nan", ["interpolate", "--network", t, "--seeds", "1,2", "--frames", 2, "--fps", "nan",
                                   "--out", "v2.gif", *dev]),
        ("truncation --psi 1e300",
         ["truncation", "--network", t, "--seeds", 1, "--psi", "1e300", "--out", "t.png", *dev]),
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
        ("prepare synthetic --resolution 3",
         ["prepare", "synthetic", "--out", "d.zip", "--resolution", 3, "--count", 2]),
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
        return [cli(repo, work, label, args, expect=1 if "<full disk>" in label or "<read-only" in label else 2)
                for label, args in cases if match in label]
    finally:
        for m in ("full", "ro"):
            subprocess.run(["umount", str(tmp / m)], capture_output=True)


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header says width x height pixels (8-bit RGB)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def round3_cli_cases(repo: Path, tmp: Path, match: str = "") -> list[dict]:
    """The command rows of round 3 (issue #25): input files, flag bounds, directions files, overwrite."""
    import hashlib
    import os
    import struct

    import numpy as np
    import torch
    from safetensors.torch import save as st_save

    sys.path.insert(0, str(repo))
    from flowergan.config import preset
    from flowergan.inference.directions import find_directions
    from flowergan.networks import build_networks
    from flowergan.networks.store import write_model_dir

    tmp.mkdir(parents=True, exist_ok=True)
    cfg = preset("tiny")
    G, D = build_networks(cfg, seed=0)
    t = write_model_dir(tmp / "tiny", cfg, {"G": G, "G_ema": G, "D": D})
    work = tmp / "work"
    work.mkdir()
    dirs = find_directions(G, "sefa", "all", num=2, samples=200)
    dirs.save(t / "directions" / "sefa-all.safetensors")  # the default file the explorer shows

    def resigned(name: str, vec, std) -> Path:  # hostile values under a valid checksum (the author re-signs)
        f = tmp / f"{name}.safetensors"
        data = st_save({"directions": vec.float().contiguous(), "std": std.float().contiguous()},
                       metadata={"format": "flowergan-directions", "version": "1"})
        f.write_bytes(data)
        info = dict(dirs.info(), sha256=hashlib.sha256(data).hexdigest(), std=[float(s) for s in std])
        f.with_suffix(".json").write_text(json.dumps(info))
        return f

    huge_std = resigned("huge_std", dirs.vectors, torch.full_like(dirs.std, 1e30))
    non_unit = resigned("non_unit", dirs.vectors * 5, dirs.std)
    os.mkfifo(tmp / "fifo")
    with open(tmp / "sparse", "wb") as f:  # 1 GiB apparent, nothing on disk
        f.write(b"{")
        f.truncate(2**30)
    linked = tmp / "linked"
    linked.mkdir()
    (linked / "weights.safetensors").symlink_to(t / "weights.safetensors")
    (linked / "config.json").symlink_to(tmp / "sparse")
    (tmp / "claim.pkl").write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc")
    (tmp / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))
    np.savez(tmp / "nan.npz", w=np.full([1, G.num_ws, G.w_dim], np.nan, np.float32))
    with torch.no_grad():
        ws = G.mapping(torch.randn(1000, G.z_dim), None)[:, 0]
    far = (ws.mean(0) + 100 * (ws - ws.mean(0)).norm(dim=1).mean()).expand(G.num_ws, -1)[None]
    np.savez(tmp / "far.npz", w=far.numpy().astype(np.float32))
    (tmp / "exported.pt").write_bytes(b"old")
    (tmp / "exported.pt.json").write_text("old")
    (tmp / "only_json.pt.json").write_text("mine")
    (tmp / "data.zip").write_bytes(b"")
    d = ["--directions", t / "directions" / "sefa-all.safetensors"]
    ex = ["export", "--network", t, "--format", "torchscript", "--no-verify"]
    cases = [
        ("files", "prepare /dev/zero", ["prepare", "/dev/zero", "--out", "z.zip", "--resolution", 32]),
        ("files", "prepare <a FIFO>", ["prepare", tmp / "fifo", "--out", "z.zip", "--resolution", 32]),
        ("files", "train --config /dev/zero", ["train", "--config", "/dev/zero", "--data", tmp / "data.zip",
                                               "--out", "runs"]),
        ("files", "train --config <a FIFO>", ["train", "--config", tmp / "fifo", "--data", tmp / "data.zip",
                                              "--out", "runs"]),
        ("files", "train --config <1 GiB sparse file>", ["train", "--config", tmp / "sparse", "--data",
                                                         tmp / "data.zip", "--out", "runs"]),
        ("files", "config.json linked to a 1 GiB sparse file", ["generate", "--network", linked, "--seeds", 0,
                                                                "--outdir", "o1"]),
        ("files", "a pickle claiming a 2^40-byte string", ["info", "--network", tmp / "claim.pkl"]),
        ("files", "project --target <PNG header 100000x100000>", ["project", "--network", t, "--target",
                                                                  tmp / "bomb.png", "--steps", 2, "--outdir", "p"]),
        ("files", "edit --projected-w <NaN>", ["edit", "--network", t, *d, "--projected-w", tmp / "nan.npz",
                                               "--out", "e1.png"]),
        ("files", "generate --projected-w <a FIFO>", ["generate", "--network", t, "--projected-w", tmp / "fifo",
                                                      "--outdir", "o2"]),
        ("bounds", "export --batch 1000000", [*ex, "--out", "b.pt", "--batch", 1_000_000]),
        ("bounds", "export --truncation-psi nan", [*ex, "--out", "n.pt", "--truncation-psi", "nan"]),
        ("bounds", "edit --strength 1e30", ["edit", "--network", t, *d, "--seeds", 1, "--strength", "1e30",
                                            "--out", "e2.png"]),
        ("bounds", "edit --fps inf", ["edit", "--network", t, *d, "--seeds", 1, "--fps", "inf", "--out", "e3.gif"]),
        ("bounds", "generate --projected-w <w 100 spreads from w_avg>", ["generate", "--network", t, "--projected-w",
                                                                        tmp / "far.npz", "--outdir", "o3"]),
        ("directions", "edit --directions <re-signed, std 1e30>", ["edit", "--network", t, "--directions", huge_std,
                                                                  "--seeds", 1, "--out", "e4.png"]),
        ("directions", "edit --directions <re-signed, rows of length 5>", ["edit", "--network", t, "--directions",
                                                                          non_unit, "--seeds", 1, "--out", "e5.png"]),
        ("overwrite", "directions <default file exists>", ["directions", "--network", t, "--num", 2, "--samples",
                                                           200]),
        ("overwrite", "export --out X <only X.json exists>", [*ex, "--out", tmp / "only_json.pt"]),
    ]
    if _mount(tmp / "full", "size=64k"):  # a real full disk: the old file pair must survive, no temp file
        shutil.copy(tmp / "exported.pt", tmp / "full" / "g.pt")
        shutil.copy(tmp / "exported.pt.json", tmp / "full" / "g.pt.json")
        cases.append(("overwrite", "export --overwrite <full disk>", [*ex, "--out", tmp / "full" / "g.pt",
                                                                     "--overwrite"]))
    # last: on a tree without the fix it replaces the model's config.json, and later rows would fail for that
    cases.append(("overwrite", "export --out MODEL/config --overwrite", [*ex, "--out", t / "config", "--overwrite"]))
    try:
        rows = []
        for area, label, args in cases:
            if match in label:
                expect = 1 if "<full disk>" in label else 2
                rows.append(cli(repo, work, label, args, expect=expect, area=area))
        for r in rows:
            if r["input"].endswith("<full disk>"):
                left = sorted(p.name for p in (tmp / "full").iterdir())
                intact = (tmp / "full" / "g.pt").read_bytes() == b"old"
                r["ok"] = r["ok"] and intact and left == ["g.pt", "g.pt.json"]
                r["left"] = left
        return rows
    finally:
        subprocess.run(["umount", str(tmp / "full")], capture_output=True)


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


def web_cases(repo: Path, round3_only: bool = False) -> list[dict]:
    import base64
    import contextlib
    import io
    import logging

    sys.path.insert(0, str(repo))
    from flowergan.config import preset
    from flowergan.inference import Pipeline
    from flowergan.networks import build_networks
    from flowergan.web import make_server

    pipe = Pipeline(build_networks(preset("tiny"), seed=0)[0])
    extra = {}
    try:
        from flowergan.inference.directions import find_directions

        extra["directions"] = [("s", find_directions(pipe.G, "sefa", "all", num=3, samples=200))]
    except ImportError:  # a tree from before the editing endpoints
        pass
    srv = make_server(pipe, "127.0.0.1", 0, **extra)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    mix = json.dumps({"row_seed": 1, "col_seed": 2, "styles": "0-20000000"}).encode()

    def edit_key(key: str) -> bytes:
        return json.dumps({"seed": 1, "set": "s", "values": {key: 1.0}}).encode()

    bomb = json.dumps({"image": "data:image/png;base64," + base64.b64encode(_png_claiming(100_000, 100_000)).decode(),
                       "steps": 2}).encode()
    round3 = [
        ('/api/edit values key "²"', lambda: _raw(port, edit_key("²"), "/api/edit")),
        ("/api/edit values key of 5,000 digits", lambda: _raw(port, edit_key("9" * 5000), "/api/edit")),
        ("/api/project PNG header 100000x100000", lambda: _raw(port, bomb, "/api/project")),
    ]
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
    cases = [(a, lab, fn) for a, cs in (("web", [] if round3_only else cases), ("web (round 3)", round3))
             for lab, fn in cs]

    class Tracebacks(logging.Handler):  # what the server's terminal would show with a traceback
        n = 0

        def emit(self, record):
            Tracebacks.n += bool(record.exc_info)

    logging.getLogger().addHandler(handler := Tracebacks())
    out = []
    for area, label, fn in cases:
        before, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
        n0, err = Tracebacks.n, io.StringIO()
        with contextlib.redirect_stderr(err):
            got = fn()
        tb = Tracebacks.n > n0 or "Traceback" in err.getvalue()
        out.append({"area": area, "request": label, "got": got, "traceback": tb,
                    "ok": got[:1] == "4" and not tb, "seconds": round(time.perf_counter() - t0, 1),
                    "peak_mb_grew": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)})
    logging.getLogger().removeHandler(handler)
    srv.shutdown()
    srv.server_close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=HERE, help="Source tree to probe (default: this checkout).")
    ap.add_argument("--only", choices=["cli", "web"], default=None)
    ap.add_argument("--match", default="", help="Only the command rows whose input contains this text.")
    ap.add_argument("--round", type=int, choices=[3], default=None, help="Only the inputs of round 3 (issue #25).")
    args = ap.parse_args()
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        if args.only != "web":
            if args.round is None:
                rows += cli_cases(repo, Path(tmp) / "r2", args.match)
            rows += round3_cli_cases(repo, Path(tmp) / "r3", args.match)
        if args.only != "cli":
            rows += web_cases(repo, round3_only=args.round == 3)
    for r in rows:
        print(json.dumps(r))
    print(tally(rows))


def tally(rows: list[dict]) -> str:
    """A markdown table per area: tried / OK / defects / tracebacks (and the total)."""
    areas: dict[str, list[int]] = {}
    for r in rows:
        a = areas.setdefault(r["area"], [0, 0, 0, 0])
        a[0] += 1
        a[1] += bool(r["ok"])
        a[2] += not r["ok"]
        a[3] += bool(r["traceback"])
    total = [sum(v[i] for v in areas.values()) for i in range(4)]
    lines = ["| area | tried | OK | defects | tracebacks |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v[0]} | {v[1]} | {v[2]} | {v[3]} |" for k, v in sorted(areas.items())]
    lines.append(f"| **all** | {total[0]} | {total[1]} | {total[2]} | {total[3]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
