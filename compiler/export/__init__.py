"""Exporters: npuc graphs written as standard ONNX files (docs/qdq-export.md).

* `export_qdq_onnx(graph)`: a quantized IR graph (from a compile or read back from
  a binary) as ONNX with QuantizeLinear/DequantizeLinear pairs;
* `export_float_onnx(graph)`: a float IR graph (e.g. after the float rewrites) as ONNX.
"""
from npuc.export.errors import ExportError
from npuc.export.onnx_float import export_float_onnx
from npuc.export.onnx_qdq import exactness_note, export_qdq_onnx, save_onnx

__all__ = ["ExportError", "exactness_note", "export_float_onnx", "export_qdq_onnx", "save_onnx"]
