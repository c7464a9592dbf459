"""Whether operations record the flow graph: no_grad, enable_grad, set_grad_enabled.

Each is a context manager and, called on a function, a decorator (as in PyTorch).
"""

from __future__ import annotations

import functools
import threading


class _GradState(threading.local):
    enabled = True  # every thread starts with recording on


_state = _GradState()


def is_grad_enabled() -> bool:
    return _state.enabled


class set_grad_enabled:
    """Turn graph recording on or off, for a ``with`` block or a decorated function.

    Example:
        >>> with fg.set_grad_enabled(False):
        ...     y = x * 2          # not recorded
    """

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _state.enabled = self.mode  # like torch, calling it as a function takes effect at once

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        _state.enabled = self.prev

    def __call__(self, fn):
        mode = self.mode
        _state.enabled = self.prev  # used as a decorator: undo the eager switch

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper


class no_grad(set_grad_enabled):
    """Context manager / decorator in which operations record nothing (evaluation, updates)."""

    def __init__(self) -> None:
        self.mode = False
        self.prev = is_grad_enabled()

    def __enter__(self):
        self.prev = is_grad_enabled()
        _state.enabled = False
        return self

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _state.enabled = False
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper


class enable_grad(no_grad):
    """Context manager / decorator that turns recording back on inside a no_grad region."""

    def __enter__(self):
        self.prev = is_grad_enabled()
        _state.enabled = True
        return self

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _state.enabled = True
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper


class inference_mode(no_grad):
    """Alias of no_grad (flowgrad has no separate inference tensors)."""
