"""Checkpoints that resume a run exactly: model, optimizer, scheduler, history and every random
stream (flowgrad's generators and the data loaders' samplers), written atomically.

A checkpoint is one ``.safetensors`` (or ``.npz``) file written by flowgrad.serialization.save,
so loading it never runs code, and a crash while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from ..serialization import SerializationError, load, save

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]

FORMAT = "flowgrad-checkpoint"


# --- random streams -----------------------------------------------------------------------------

def _array_module(name: str):
    if name == "numpy":
        return np
    if name == "cupy" and backend.cupy is not None:
        return backend.cupy
    return None


def _generator_state(gen):
    """The state of a NumPy Generator/RandomState, a CuPy Generator (its cuRAND states, copied
    from the device), or any object with get_state(); None when it cannot be read."""
    bitgen = getattr(gen, "bit_generator", None)
    if bitgen is not None:
        state = getattr(bitgen, "state", None)
        if isinstance(state, dict):  # NumPy
            return {"bit_generator": state}
        raw = getattr(bitgen, "_state", None)  # CuPy keeps no readable state, only this buffer
        if raw is not None and hasattr(raw, "shape"):
            return {"device_state": backend.to_numpy(raw).copy(),
                    "bit_generator_type": type(bitgen).__name__}
        return None
    if hasattr(gen, "get_state"):
        return {"get_state": gen.get_state()}
    return None


def _set_generator_state(gen, state) -> None:
    if "bit_generator" in state:
        gen.bit_generator.state = state["bit_generator"]
    elif "device_state" in state:
        raw, saved = gen.bit_generator._state, state["device_state"]
        kind = type(gen.bit_generator).__name__
        if raw.shape != saved.shape or kind != state.get("bit_generator_type", kind):
            warnings.warn(f"set_rng_state: the saved {state.get('bit_generator_type')} GPU stream "
                          f"({saved.size} bytes) does not fit this device's {kind} "
                          f"({raw.size} bytes, another GPU model?); its draws will differ",
                          stacklevel=3)
            return
        raw[...] = backend.get_array_module(raw).asarray(saved)
    else:
        gen.set_state(state["get_state"])


def _loader_state(loader) -> dict:
    """What decides a loader's next shuffles: its state_dict, else its sampler's, else the
    generators it holds (a loader that draws from flowgrad's stream needs none of these)."""
    if loader is None:
        return {}
    sampler = getattr(loader, "sampler", None)
    for name, owner in (("loader", loader), ("sampler", sampler)):
        if callable(getattr(owner, "state_dict", None)):
            return {name: owner.state_dict()}
    state = {}
    for name, owner in (("loader", loader), ("sampler", sampler)):
        gen = getattr(owner, "generator", None)
        gen_state = None if gen is None else _generator_state(gen)
        if gen_state is not None:
            state[f"{name}_generator"] = gen_state
    return state


def _set_loader_state(loader, state: dict) -> None:
    if loader is None or not state:
        return
    sampler = getattr(loader, "sampler", None)
    for name, owner in (("loader", loader), ("sampler", sampler)):
        if name in state:
            owner.load_state_dict(state[name])
        if f"{name}_generator" in state:
            _set_generator_state(owner.generator, state[f"{name}_generator"])


def rng_state(*loaders) -> dict:
    """Every random stream a run draws from: flowgrad's per-array-module generators (dropout,
    init, rand) and each loader's shuffling state (lecture: "Debugging", seeds and determinism)."""
    streams = {}
    for xp, gen in backend.streams().items():
        streams[xp.__name__] = _generator_state(gen)
    return {"seed": backend.initial_seed(), "streams": streams,
            "loaders": [_loader_state(loader) for loader in loaders]}


def set_rng_state(state: dict, *loaders) -> None:
    """Put every random stream back where rng_state found it (generators are updated in place,
    so objects that hold one keep drawing from the restored stream)."""
    seed = state.get("seed")
    backend.set_initial_seed(seed)
    saved = state.get("streams", {})
    for xp in list(backend.streams()):  # streams created after the save: back to their seeded start
        if xp.__name__ not in saved:
            if seed is None:
                del backend.streams()[xp]
            else:
                fresh = xp.random.default_rng(seed)
                _set_generator_state(backend.streams()[xp], _generator_state(fresh))
    for name, gen_state in saved.items():
        xp = _array_module(name)
        if xp is None or gen_state is None:
            warnings.warn(f"set_rng_state: can't restore the {name} random stream here; runs "
                          f"that draw from it will not repeat exactly", stacklevel=2)
            continue
        _set_generator_state(backend.rng(xp), gen_state)
    for loader, loader_state in zip(loaders, state.get("loaders", [])):
        _set_loader_state(loader, loader_state)


# --- checkpoints --------------------------------------------------------------------------------

def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=None, history=None,
                    rng_states=None, extra=None) -> None:
    """Write model, optimizer, scheduler, epoch, history and RNG states to ``path`` atomically
    (``rng_states`` defaults to flowgrad's streams; pass ``rng_state(loader)`` to add loaders)."""
    ckpt = {"format": FORMAT, "epoch": epoch}
    if model is not None:
        ckpt["model"] = model.state_dict()
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        ckpt["scheduler"] = scheduler.state_dict()
    if history is not None:
        ckpt["history"] = history.state_dict()
    ckpt["rng"] = rng_state() if rng_states is None else rng_states
    ckpt["extra"] = {} if extra is None else extra
    save(ckpt, path)


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, history=None, loaders=(),
                    map_location=None, restore_rng: bool = True, strict: bool = True) -> dict:
    """Restore what save_checkpoint wrote into the given objects (and the RNG streams, with the
    loaders' shuffling); returns the checkpoint dict (epoch, extra, ...)."""
    ckpt = load(path, map_location=map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        keys = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise SerializationError(f"load_checkpoint {str(path)!r}: not a checkpoint written by "
                                 f"save_checkpoint (it holds {keys}); load a bare state_dict "
                                 f"with flowgrad.serialization.load")
    for name, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler),
                      ("history", history)):
        if obj is None:
            continue
        if name not in ckpt:
            raise SerializationError(f"load_checkpoint {str(path)!r}: the checkpoint has no "
                                     f"{name} state to restore (it was saved without one)")
        if name == "model" and not strict:
            obj.load_state_dict(ckpt[name], strict=False)
        else:
            obj.load_state_dict(ckpt[name])
    if restore_rng and "rng" in ckpt:
        set_rng_state(ckpt["rng"], *loaders)
    return ckpt
