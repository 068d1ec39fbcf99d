"""Write a generator to a file that runs without flowergan (ONNX, TorchScript, torch.export), then run
that file and compare it with our PyTorch generator on seeded inputs."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from flowergan.export import rosinality as _rosinality
from flowergan.export.graph import ExportSpec, example_inputs, export_module, input_names, output_name
from flowergan.infra import process_alive, temp_name

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript", "exported-program", "rosinality")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2", "rosinality": ".pt"}
ONNX_OPSET = 18
MAX_BATCH = 4096  # upper bound of a dynamic batch (torch.export wants one)


def _need(module: str, extra: str = "export"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is needed for this export format: pip install 'flowergan[{extra}]'") from None


def _dynamic_shapes(n_inputs: int, spec: ExportSpec):
    if spec.batch is not None:
        return None
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return tuple({0: batch} for _ in range(n_inputs))


BATCH_AXIS = "batch"  # the name of a dynamic batch axis in an ONNX file (the exporter would write e.g. 's68')


def _name_batch_axis(path: str) -> None:
    """Rename the exporter's symbol for the batch (dim 0 of the first input) to BATCH_AXIS everywhere in the
    ONNX file at `path`: inputs, outputs and intermediate shapes."""
    onnx = _need("onnx")
    model = onnx.load(path)
    first = model.graph.input[0].type.tensor_type.shape.dim[0]
    sym = first.dim_param
    if not sym or sym == BATCH_AXIS:
        return
    for v in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param == sym:
                d.dim_param = BATCH_AXIS
    onnx.save(model, path)


@contextlib.contextmanager
def captured_output():
    """Send everything written to stdout/stderr inside the block (Python streams and the process's file
    descriptors 1 and 2, where C++ code and torch's log handlers write) to a buffer; yields a list that holds
    the captured text once the block ends. The exporters print 100+ lines of internals that are not ours."""
    text: list[str] = []
    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            s.flush()
    saved = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(tmp.fileno(), fd)
            py = io.StringIO()
            with contextlib.redirect_stdout(py), contextlib.redirect_stderr(py):
                yield text
        finally:
            for s in (sys.__stdout__, sys.__stderr__):
                with contextlib.suppress(Exception):
                    s.flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            tmp.seek(0)
            text.append(tmp.read().decode("utf-8", "replace") + py.getvalue())


def describe(G: nn.Module, spec: ExportSpec, fmt: str) -> dict[str, Any]:
    """The file's interface: inputs and output with shapes ('N' = the batch) and dtypes, and what is fixed."""
    n = spec.batch if spec.batch is not None else "N"
    shapes = {"z": [n, G.z_dim], "c": [n, G.c_dim], "ws": [n, G.num_ws, G.w_dim],
              "img": [n, G.img_channels, G.img_resolution, G.img_resolution]}
    out = output_name(spec)
    return {
        "format": fmt, "what": spec.what,
        "inputs": [{"name": k, "shape": shapes[k], "dtype": "float32"} for k in input_names(G, spec)],
        "output": {"name": out, "shape": shapes[out], "dtype": "float32",
                   "range": "[-1, 1] (clamped)" if out == "img" else "unbounded"},
        "truncation_psi": spec.truncation_psi, "truncation_cutoff": spec.truncation_cutoff,
        "noise": (f"'{spec.noise_mode}': " + ("the model's stored noise, a constant of the graph"
                                             if spec.noise_mode == "const" else "no noise")),
        "onnx_opset": ONNX_OPSET if fmt == "onnx" else None,
        "batch": spec.batch if spec.batch is not None else "dynamic",
    }


def export_network(G: nn.Module, spec: ExportSpec, fmt: str, out: str | Path, quiet: bool = True) -> dict[str, Any]:
    """Write `out` (and `out`.json, its interface) for `spec`; return the interface dict.

    `quiet`: the exporter's own printing (torch.onnx writes ~140 lines) is captured and logged at DEBUG level
    instead of reaching the terminal."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "rosinality":  # a state dict for rosinality's stylegan2-pytorch, not a graph (spec does not apply)
        return _rosinality.write_rosinality(G, out)
    if fmt == "onnx":
        _need("onnx")
        _need("onnxscript")
    spec.validate()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    G = G.to("cpu").float()
    module = export_module(G, spec)
    args = example_inputs(G, spec, batch=spec.batch or 2)  # a dynamic batch is traced at 2, not 1 (no specialising)

    info = describe(G, spec, fmt)
    companion = interface_path(out)
    remove_stale_temps(out)
    tmp, tmp_json = temp_name(out), temp_name(companion)
    try:  # both files are written beside their final names, then renamed: the old pair stays until then
        if quiet:
            chatter: list[str] = []
            try:
                with captured_output() as chatter:
                    _write_graph(module, args, G, spec, fmt, str(tmp))
            finally:
                if chatter and chatter[0].strip():
                    log.debug("exporter output (shown with --debug):\n%s", chatter[0].rstrip())
        else:
            _write_graph(module, args, G, spec, fmt, str(tmp))
        tmp_json.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(tmp, out)
        os.replace(tmp_json, companion)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        tmp_json.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:
            e.filename = str(out)  # e.g. a full disk: say which output failed
        raise
    return info


def interface_path(out: str | Path) -> Path:
    """The companion of an exported file: FILE.json, its interface."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def remove_stale_temps(out: str | Path) -> list[Path]:
    """Remove temp files left next to `out` (and its FILE.json) by an export that was killed or aborted
    (their names carry the writer's process id; those of a live process are kept)."""
    out = Path(out)
    gone = []
    for target in (out, interface_path(out)):
        for p in target.parent.glob(f".{target.stem}.*.tmp{target.suffix}"):
            pid = p.name[len(target.stem) + 2:].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
                p.unlink(missing_ok=True)
                gone.append(p)
    return gone


def estimate_bytes(G: nn.Module) -> int:
    """A generous estimate of an exported file's size: the generator's tensors as float32 (weights are stored
    once; the graph itself adds well under a MB), plus a quarter for the format's overhead."""
    n = sum(t.numel() for t in G.state_dict().values())
    return int(n * 4 * 1.25) + (1 << 20)


def _write_graph(module: nn.Module, args: tuple, G: nn.Module, spec: ExportSpec, fmt: str, tmp: str) -> None:
    """Trace/export `module` and write it to `tmp` in format `fmt`."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape asserts: they hold for every batch
        if fmt == "torchscript":
            torch.jit.trace(module, args, check_trace=False).save(tmp)
            return
        ep = torch.export.export(module, args, dynamic_shapes=_dynamic_shapes(len(args), spec), strict=False)
        if fmt == "exported-program":
            torch.export.save(ep, tmp)
        else:
            torch.onnx.export(ep, args, tmp, dynamo=True, input_names=input_names(G, spec),
                              output_names=[output_name(spec)], opset_version=ONNX_OPSET,
                              external_data=False, verbose=False)
            if spec.batch is None:
                _name_batch_axis(tmp)


def run_file(path: str | Path, fmt: str, inputs: tuple[torch.Tensor, ...], names: list[str]) -> np.ndarray:
    """Run an exported file on float32 inputs with its own runtime (onnxruntime on the CPU, torch.jit, torch.export)."""
    path = str(path)
    if fmt == "onnx":
        ort = _need("onnxruntime")
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return sess.run(None, {n: x.numpy().astype(np.float32) for n, x in zip(names, inputs)})[0]
    with torch.no_grad():
        if fmt == "torchscript":
            return torch.jit.load(path, map_location="cpu")(*inputs).numpy()
        return torch.export.load(path).module()(*inputs).numpy()


def verify(G: nn.Module, spec: ExportSpec, fmt: str, path: str | Path, batch: int | None = None,
           seed: int = 1) -> float:
    """Max |file - PyTorch| on fresh seeded inputs (a dynamic batch is checked at 3, another size than traced)."""
    G = G.to("cpu").float()
    module = export_module(G, spec)
    inputs = example_inputs(G, spec, batch=batch or spec.batch or 3, seed=seed)
    with torch.no_grad():
        ref = module(*inputs).numpy()
    got = run_file(path, fmt, inputs, input_names(G, spec))
    if got.shape != ref.shape:
        raise RuntimeError(f"{path}: output shape {got.shape}, expected {ref.shape}")
    return float(np.abs(got.astype(np.float64) - ref).max())
