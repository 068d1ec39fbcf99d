"""Export a generator to files that run without flowergan: ONNX, TorchScript, torch.export programs."""

from flowergan.export.graph import EXPORT_NOISE_MODES, WHATS, ExportSpec, example_inputs, export_module
from flowergan.export.writers import FORMATS, ONNX_OPSET, describe, export_network, run_file, verify

__all__ = ["EXPORT_NOISE_MODES", "FORMATS", "ONNX_OPSET", "WHATS", "ExportSpec", "describe", "example_inputs",
           "export_module", "export_network", "run_file", "verify"]
