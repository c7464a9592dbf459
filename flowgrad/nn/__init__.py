"""Neural-network building blocks. ``flowgrad.nn.functional`` holds the stateless ops."""

from . import functional  # noqa: F401
