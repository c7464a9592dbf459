"""A failing rank must not leave the others waiting: an uncaught exception on any rank prints
that rank's traceback and aborts the whole MPI job (MPI_Abort), so that ``mpirun`` returns in
seconds with the failing rank's message. A rank that dies outright (a signal, ``os._exit``) is
handled by the launcher, which ends the job when a process exits abnormally."""

from __future__ import annotations

import sys
import traceback

_previous_hook = None


def _abort_hook(kind, value, tb) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(f"flowgrad.distributed: rank {comm.Get_rank()} of {comm.Get_size()} raised "
                     f"an uncaught exception; aborting every rank (MPI_Abort)\n{text}")
    sys.stderr.flush()
    sys.stdout.flush()
    comm.Abort(1)


def install_abort_on_error() -> None:
    """Replace ``sys.excepthook`` by one that aborts the MPI job (idempotent)."""
    global _previous_hook
    if sys.excepthook is not _abort_hook:
        _previous_hook = sys.excepthook
        sys.excepthook = _abort_hook


def uninstall_abort_on_error() -> None:
    global _previous_hook
    if sys.excepthook is _abort_hook:
        sys.excepthook = _previous_hook or sys.__excepthook__
        _previous_hook = None
