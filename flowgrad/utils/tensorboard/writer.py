"""``SummaryWriter``: PyTorch's ``torch.utils.tensorboard.SummaryWriter`` over the
``tensorboard`` package's own ``EventFileWriter`` (no TensorFlow, no PyTorch)."""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime

__all__ = ["SummaryWriter", "FileWriter"]


def _summary():
    """The summary builders; a clear ImportError naming the extra when tensorboard is absent."""
    try:
        import tensorboard  # noqa: F401
    except ImportError as err:
        raise ImportError("SummaryWriter needs the tensorboard package: pip install "
                          "'flowgrad[tensorboard]' (or pip install tensorboard)") from err
    from . import summary

    return summary


class FileWriter:
    """One event file in ``log_dir``: events go through a queue and a thread that flushes every
    ``flush_secs`` seconds or when ``max_queue`` events wait."""

    def __init__(self, log_dir, max_queue: int = 10, flush_secs: int = 120,
                 filename_suffix: str = "") -> None:
        _summary()
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs,
                                            filename_suffix)

    def get_logdir(self) -> str:
        return self.event_writer.get_logdir()

    def add_event(self, event, step=None, walltime=None) -> None:
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self.event_writer.add_event(event)

    def add_summary(self, summary, global_step=None, walltime=None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self.add_event(Event(summary=summary), global_step, walltime)

    def flush(self) -> None:
        self.event_writer.flush()

    def close(self) -> None:
        self.event_writer.close()

    def reopen(self) -> None:
        self.event_writer.reopen()


class SummaryWriter:
    """Write TensorBoard event files into ``log_dir`` (default
    ``runs/<Mon>DD_HH-MM-SS_<hostname><comment>``), as PyTorch's SummaryWriter does.

    Values are flowgrad Tensors, NumPy arrays or Python numbers. ``purge_step`` tells
    TensorBoard to drop the events at and after that step left by a crashed run. Use it as a
    context manager, or call ``close()``.
    """

    def __init__(self, log_dir=None, comment: str = "", purge_step: int | None = None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = "") -> None:
        self._s = _summary()
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", stamp + "_" + socket.gethostname() + comment)
        self.log_dir = log_dir
        self.purge_step, self.max_queue, self.flush_secs = purge_step, max_queue, flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()
        self.default_bins = self._s.default_bins()

    def _get_file_writer(self) -> FileWriter:
        """The main FileWriter, opened again after ``close()``."""
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs,
                                          self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                from tensorboard.compat.proto.event_pb2 import Event, SessionLog

                step, self.purge_step = self.purge_step, None
                self.file_writer.add_event(Event(step=step, file_version="brain.Event:2"))
                self.file_writer.add_event(Event(step=step, session_log=SessionLog(
                    status=SessionLog.START)))
        return self.file_writer

    def get_logdir(self) -> str:
        return self.log_dir

    # --- what is written ------------------------------------------------------------------------

    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        """One value (a number, or a one-element Tensor/array) at ``global_step``."""
        summary = self._s.scalar(tag, scalar_value, new_style, double_precision)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None,
                    walltime=None) -> None:
        """Several curves on one chart: each key is a run in the sub-directory
        ``<log_dir>/<main_tag with / as _>_<key>``, all tagged ``main_tag``."""
        walltime = time.time() if walltime is None else walltime
        root = self._get_file_writer().get_logdir()
        for tag, value in tag_scalar_dict.items():
            sub = root + "/" + main_tag.replace("/", "_") + "_" + tag
            writer = self.all_writers.get(sub)
            if writer is None:
                writer = self.all_writers[sub] = FileWriter(sub, self.max_queue, self.flush_secs,
                                                            self.filename_suffix)
            writer.add_summary(self._s.scalar(main_tag, value), global_step, walltime)

    def add_histogram(self, tag: str, values, global_step=None, bins="tensorflow",
                      walltime=None, max_bins=None) -> None:
        """A histogram of ``values``; ``bins`` is TensorFlow's default edges ("tensorflow") or
        anything ``np.histogram`` takes ("auto", an int, edges)."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        summary = self._s.histogram(tag, values, bins, max_bins=max_bins)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_histogram_raw(self, tag: str, min, max, num, sum, sum_squares, bucket_limits,
                          bucket_counts, global_step=None, walltime=None) -> None:
        """A histogram already bucketed (``bucket_limits`` are the right edges)."""
        if len(bucket_limits) != len(bucket_counts):
            raise ValueError(f"add_histogram_raw: {len(bucket_limits)} bucket_limits but "
                             f"{len(bucket_counts)} bucket_counts; they should match")
        summary = self._s.histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits,
                                        bucket_counts)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_image(self, tag: str, img_tensor, global_step=None, walltime=None,
                  dataformats: str = "CHW") -> None:
        """One image (uint8 in 0..255, else floats in 0..1), laid out as ``dataformats``."""
        summary = self._s.image(tag, img_tensor, dataformats=dataformats)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_images(self, tag: str, img_tensor, global_step=None, walltime=None,
                   dataformats: str = "NCHW") -> None:
        """A batch of images, tiled 8 to a row into one image."""
        summary = self._s.image(tag, img_tensor, dataformats=dataformats)
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_figure(self, tag: str, figure, global_step=None, close: bool = True,
                   walltime=None) -> None:
        """A matplotlib Figure (or a list of them) rendered on a private Agg canvas; with
        ``close``, a pyplot figure is closed afterwards."""
        images = self._s.figure_to_image(figure, close)
        self.add_image(tag, images, global_step, walltime,
                       dataformats="NCHW" if isinstance(figure, list) else "CHW")

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        """Text (Markdown), shown by TensorBoard's text plugin under ``<tag>/text_summary``."""
        self._get_file_writer().add_summary(self._s.text(tag, text_string), global_step,
                                            walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None,
                    run_name: str | None = None, global_step=None) -> None:
        """Hyperparameters and their metrics for TensorBoard's HParams tab, written (as PyTorch
        does) into the sub-run ``<log_dir>/<run_name>`` (default: the current time)."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("add_hparams: hparam_dict and metric_dict should be dictionaries")
        summaries = self._s.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        run_name = run_name or str(time.time())
        with SummaryWriter(log_dir=os.path.join(self._get_file_writer().get_logdir(),
                                                run_name)) as run:
            for summary in summaries:
                run.file_writer.add_summary(summary, global_step)
            for k, v in metric_dict.items():
                run.add_scalar(k, v, global_step)

    # --- lifetime -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every pending event to disk."""
        for writer in (self.all_writers or {}).values():
            writer.flush()

    def close(self) -> None:
        """Flush and close every event file (a second close does nothing; a later add_* opens
        a new file)."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.close()
