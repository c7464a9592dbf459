"""ONNX export of the recorded flow graph: ``fg.onnx.export(model, args, f, ...)`` with
``torch.onnx.export``'s argument names. The ``onnx`` package is needed only when ``export`` is
called (``pip install -e ".[onnx]"``); importing this module never needs it."""

from .export import SUPPORTED_OPS, export

__all__ = ["SUPPORTED_OPS", "export"]
