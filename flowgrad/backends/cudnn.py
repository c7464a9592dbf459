"""``fg.backends.cudnn``: settable flags with PyTorch's defaults; flowgrad does not use cuDNN, so
``is_available()`` is False and ``version()`` None (as PyTorch's CPU build)."""

benchmark = False
deterministic = False
enabled = True
allow_tf32 = True


def is_available() -> bool:
    return False


def version():
    return None
