"""The summaries ``SummaryWriter`` writes, built as ``torch.utils.tensorboard.summary`` builds
them (same tags, same fields, same histogram buckets, same PNG encoding), from the protos of the
``tensorboard`` package alone.

Inputs are flowgrad Tensors (on any device), NumPy arrays or Python numbers.
"""

from __future__ import annotations

import io
import sys

import numpy as np

try:
    from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
except ImportError as err:  # pragma: no cover - exercised without tensorboard installed
    raise ImportError("flowgrad.utils.tensorboard needs the tensorboard package: "
                      "pip install 'flowgrad[tensorboard]' (or pip install tensorboard)") from err

from ... import backend

__all__ = ["make_np", "scalar", "histogram", "histogram_raw", "make_histogram", "default_bins",
           "image", "make_image", "convert_to_HWC", "make_grid", "figure_to_image", "text",
           "hparams"]


def make_np(x) -> np.ndarray:
    """A NumPy array from a flowgrad Tensor (copied to the host), an array or a number (a
    one-element 1-D array, as PyTorch's ``make_np``)."""
    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.array([x])
    data = getattr(x, "_data", None)
    if data is not None and hasattr(x, "requires_grad"):  # a flowgrad Tensor: its raw array
        return backend.to_numpy(data)
    try:
        return np.asarray(x)
    except Exception as err:
        raise TypeError(f"tensorboard: expected a flowgrad Tensor, a NumPy array or a number, "
                        f"got {type(x).__name__}") from err


# --- scalars ------------------------------------------------------------------------------------

def scalar(name: str, value, new_style: bool = False, double_precision: bool = False) -> Summary:
    """A scalar summary: ``simple_value`` (float32), or with ``new_style`` a scalars-plugin
    tensor (float32, or float64 with ``double_precision``)."""
    array = make_np(value).squeeze()
    if array.ndim != 0:
        raise ValueError(f"add_scalar({name!r}): expected one value, got an array of shape "
                         f"{make_np(value).shape}")
    number = float(array)
    if not new_style:
        return Summary(value=[Summary.Value(tag=name, simple_value=number)])
    proto = (TensorProto(double_val=[number], dtype="DT_DOUBLE") if double_precision
             else TensorProto(float_val=[number], dtype="DT_FLOAT"))
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    return Summary(value=[Summary.Value(tag=name, tensor=proto, metadata=meta)])


# --- histograms ---------------------------------------------------------------------------------

def default_bins() -> list[float]:
    """TensorFlow's histogram edges: ±1e-12 growing by 10% up to 1e20, and 0."""
    edges, v = [], 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-e for e in reversed(edges)] + [0] + edges


def make_histogram(values, bins, max_bins: int | None = None) -> HistogramProto:
    """Bucket ``values`` with ``np.histogram(values, bins)``; merge neighbours down to at most
    ``max_bins`` buckets; keep the buckets from one empty one before the first filled bucket to
    the last filled one (``bucket_limit`` holds each bucket's right edge)."""
    values = np.asarray(values).reshape(-1)
    if values.size == 0:
        raise ValueError("add_histogram: the values are empty")
    counts, edges = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        group = len(counts) // max_bins
        short = -len(counts) % group
        counts = np.concatenate([counts, np.zeros(short, counts.dtype)])
        counts = counts.reshape(-1, group).sum(axis=1)
        edges = np.concatenate([edges[:-1:group], edges[-1:]])
    filled = np.flatnonzero(counts)
    if filled.size == 0:
        raise ValueError("add_histogram: no value falls inside the bins (are they finite?)")
    first, last = int(filled[0]), int(filled[-1])
    kept = (counts[first - 1:last + 1] if first > 0
            else np.concatenate([[0], counts[:last + 1]]))
    return HistogramProto(min=float(values.min()), max=float(values.max()), num=len(values),
                          sum=float(values.sum()), sum_squares=float(values.dot(values)),
                          bucket_limit=edges[first:last + 2].tolist(), bucket=kept.tolist())


def histogram(name: str, values, bins, max_bins: int | None = None) -> Summary:
    hist = make_histogram(make_np(values).astype(float), bins, max_bins)
    return Summary(value=[Summary.Value(tag=name, histo=hist)])


def histogram_raw(name: str, min, max, num, sum, sum_squares, bucket_limits,
                  bucket_counts) -> Summary:
    hist = HistogramProto(min=min, max=max, num=num, sum=sum, sum_squares=sum_squares,
                          bucket_limit=bucket_limits, bucket=bucket_counts)
    return Summary(value=[Summary.Value(tag=name, histo=hist)])


# --- images -------------------------------------------------------------------------------------

def make_grid(images: np.ndarray, ncols: int = 8) -> np.ndarray:
    """N×C×H×W images tiled, ``ncols`` to a row, into one C×H'×W' image (grey becomes RGB)."""
    if images.shape[1] == 1:
        images = np.concatenate([images] * 3, axis=1)
    if images.ndim != 4 or images.shape[1] not in (3, 4):
        raise ValueError(f"add_images: expected N images of 1, 3 or 4 channels, got shape "
                         f"{images.shape} after reordering to NCHW")
    n, c, h, w = images.shape
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    canvas = np.zeros((c, h * nrows, w * ncols), dtype=images.dtype)
    for i in range(n):
        r, col = divmod(i, ncols)
        canvas[:, r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
    return canvas


def convert_to_HWC(array: np.ndarray, dataformats: str) -> np.ndarray:
    """Reorder an image (HW, CHW/HWC..., or a batch NCHW/NHWC... tiled into a grid) to H×W×C
    with 3 (RGB) or 4 (RGBA) channels."""
    fmt = dataformats.upper()
    if len(set(fmt)) != len(fmt) or not set(fmt) <= set("NCHW"):
        raise ValueError(f"add_image: dataformats {dataformats!r} should name each of N, C, H, W "
                         f"at most once")
    if array.ndim != len(fmt):
        raise ValueError(f"add_image: an image of shape {array.shape} does not match "
                         f"dataformats {dataformats!r}")
    if len(fmt) == 4:
        return make_grid(array.transpose([fmt.find(c) for c in "NCHW"])).transpose(1, 2, 0)
    if len(fmt) == 3:
        hwc = array.transpose([fmt.find(c) for c in "HWC"])
        return np.concatenate([hwc] * 3, axis=2) if hwc.shape[2] == 1 else hwc
    if len(fmt) == 2:
        return np.stack([array.transpose([fmt.find(c) for c in "HW"])] * 3, axis=2)
    raise ValueError(f"add_image: dataformats {dataformats!r} should have 2, 3 or 4 letters")


def make_image(hwc: np.ndarray) -> Summary.Image:
    """An H×W×C uint8 image as a PNG ``Summary.Image``."""
    from PIL import Image

    height, width, channels = hwc.shape
    buf = io.BytesIO()
    Image.fromarray(hwc).save(buf, format="PNG")
    return Summary.Image(height=height, width=width, colorspace=channels,
                         encoded_image_string=buf.getvalue())


def image(tag: str, img, dataformats: str = "NCHW") -> Summary:
    """An image summary; uint8 pixels are taken as 0..255, any other dtype as 0..1 (clipped)."""
    hwc = convert_to_HWC(make_np(img), dataformats)
    scale = 1 if hwc.dtype == np.uint8 else 255
    hwc = (hwc.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    return Summary(value=[Summary.Value(tag=tag, image=make_image(hwc))])


def _render(figure, close: bool) -> np.ndarray:
    """A matplotlib Figure as a C×H×W uint8 RGB array, drawn on a private Agg canvas; the
    figure's own canvas is put back, and no backend is switched. ``close`` closes it in pyplot
    only if the user's program has imported pyplot (else pyplot cannot hold it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    previous = figure.canvas
    canvas = FigureCanvasAgg(figure)
    try:
        canvas.draw()
        rgb = np.asarray(canvas.buffer_rgba())[:, :, :3]
        chw = np.ascontiguousarray(rgb.transpose(2, 0, 1))
    finally:
        figure.set_canvas(previous)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if close and pyplot is not None:
        pyplot.close(figure)
    return chw


def figure_to_image(figures, close: bool = True) -> np.ndarray:
    """A Figure as C×H×W uint8, or a list of (same-sized) Figures as N×C×H×W."""
    if isinstance(figures, list):
        return np.stack([_render(f, close) for f in figures])
    return _render(figures, close)


# --- text and hyperparameters -------------------------------------------------------------------

def text(tag: str, text_string: str) -> Summary:
    """A text-plugin summary, tagged ``<tag>/text_summary`` as PyTorch tags it."""
    from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
    proto = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf_8")],
                        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=meta,
                                        tensor=proto)])


def hparams(hparam_dict: dict, metric_dict: dict, hparam_domain_discrete: dict | None = None):
    """The hparams plugin's three summaries (experiment, session start, session end), as
    PyTorch writes them: numbers (bools too, as PyTorch does) are DATA_TYPE_FLOAT64, strings
    DATA_TYPE_STRING; one-element Tensors and arrays are numbers; None values are left out."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.api_pb2 import (
        DataType,
        Experiment,
        HParamInfo,
        MetricInfo,
        MetricName,
        Status,
    )
    from tensorboard.plugins.hparams.plugin_data_pb2 import (
        HParamsPluginData,
        SessionEndInfo,
        SessionStartInfo,
    )

    if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
        raise TypeError("add_hparams: hparam_dict and metric_dict should be dictionaries")
    discrete = hparam_domain_discrete or {}
    if not isinstance(discrete, dict):
        raise TypeError("add_hparams: hparam_domain_discrete should be a dictionary")
    for k, v in discrete.items():
        if (k not in hparam_dict or not isinstance(v, list)
                or not all(isinstance(d, type(hparam_dict[k])) for d in v)):
            raise TypeError(f"add_hparams: hparam_domain_discrete[{k!r}] should be a list of "
                            f"values of the type of hparam_dict[{k!r}]")

    start, infos = SessionStartInfo(), []
    for k, v in hparam_dict.items():
        if v is None:
            continue
        if isinstance(v, (int, float, np.number)):
            start.hparams[k].number_value = float(v)
            kind, field = "DATA_TYPE_FLOAT64", "number_value"
        elif isinstance(v, str):
            start.hparams[k].string_value = v
            kind, field = "DATA_TYPE_STRING", "string_value"
        elif isinstance(v, np.ndarray) or hasattr(v, "requires_grad"):
            start.hparams[k].number_value = float(make_np(v).reshape(-1)[0])
            infos.append(HParamInfo(name=k, type=DataType.Value("DATA_TYPE_FLOAT64")))
            continue
        else:
            raise ValueError(f"add_hparams: hparam {k!r} should be an int, float, str, bool or a "
                             f"one-element Tensor, got {type(v).__name__}")
        domain = (struct_pb2.ListValue(values=[struct_pb2.Value(**{field: d})
                                               for d in discrete[k]])
                  if k in discrete else None)
        infos.append(HParamInfo(name=k, type=DataType.Value(kind), domain_discrete=domain))

    experiment = Experiment(hparam_infos=infos,
                            metric_infos=[MetricInfo(name=MetricName(tag=k)) for k in metric_dict])
    end = SessionEndInfo(status=Status.Value("STATUS_SUCCESS"))

    def summary(tag, data):
        return Summary(value=[Summary.Value(tag=tag,
                                            metadata=metadata.create_summary_metadata(data))])

    return (summary(metadata.EXPERIMENT_TAG, HParamsPluginData(experiment=experiment)),
            summary(metadata.SESSION_START_INFO_TAG, HParamsPluginData(session_start_info=start)),
            summary(metadata.SESSION_END_INFO_TAG, HParamsPluginData(session_end_info=end)))
