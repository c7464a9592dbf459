"""Run a vendored PyTorch script under torch and, with only its imports rewritten, under flowgrad.

How a run is bounded and compared (the script body is never edited):

* Steps: ``Tensor.backward`` is wrapped in both libraries; each call records ``loss.item()``
  and, after ``steps`` recorded losses, the next call raises ``StopRun`` (a BaseException, so
  ``except Exception``/``except KeyboardInterrupt`` in a script do not swallow it). The loss
  after k optimiser steps is ``losses[k]``. Scripts without backward run to their end.
* Weights: ``Module.__call__`` is wrapped; the first time each outermost module is called, the
  torch run records its ``state_dict`` and the flowgrad run loads that into the module in the
  same position (``load_state_dict`` copies into the existing parameters, which the optimiser
  already holds).
* Random factories called from the script itself (``randn``, ``rand``, ``randint``,
  ``randn_like``, ``rand_like``, ``randperm``): torch's results are recorded in order, and the
  flowgrad run calls its own factory (same arguments, so dtype/requires_grad errors still show)
  and then returns torch's values in its place.
* Dropout masks and DataLoader shuffling: ``nn.functional.dropout`` and
  ``RandomSampler.__iter__`` are replaced in both libraries by versions drawing from the same
  seeded NumPy stream. Python's ``random`` is seeded identically before each run.
* Data: fake ``torchvision`` / ``gymnasium`` / ``data`` modules (fixed NumPy data, identical in
  both runs) are put in ``sys.modules``; sibling modules of a script (``model.py``) are
  vendored and import-rewritten like the script.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import sys
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).parent / "scripts"
RANDOM_FACTORIES = ("randn", "rand", "randint", "randn_like", "rand_like", "randperm")


_ABSENT = object()


class StopRun(BaseException):
    """Raised from the backward hook once the step budget is spent."""


# --- import rewriting ---------------------------------------------------------------------------
_IMPORT = re.compile(r"^(\s*)import\s+torch((?:\.\w+)*)(\s+as\s+\w+)?\s*$")
_FROM = re.compile(r"^(\s*)from\s+torch((?:\.\w+)*)\s+import\s")


def rewrite_imports(source: str) -> str:
    """Rewrite the import lines only: torch -> flowgrad, keeping the names the script binds."""
    out = []
    for line in source.splitlines(keepends=True):
        nl = "\n" if line.endswith("\n") else ""
        body = line.rstrip("\n")
        m = _IMPORT.match(body)
        if m:
            indent, sub, alias = m.groups()
            if alias:
                body = f"{indent}import flowgrad{sub}{alias}"
            elif sub:  # `import torch.utils.data` binds the name `torch`
                body = f"{indent}import flowgrad{sub}; import flowgrad as torch"
            else:
                body = f"{indent}import flowgrad as torch"
        else:
            m = _FROM.match(body)
            if m:
                body = _FROM.sub(lambda mm: f"{mm.group(1)}from flowgrad{mm.group(2)} import ",
                                 body, count=1)
        out.append(body + nl)
    return "".join(out)


# --- fake data modules --------------------------------------------------------------------------
def _fake_torchvision(lib, n_train=512, n_test=64):
    rng = np.random.RandomState(0)
    images = {True: rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
              False: rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8)}
    labels = {True: rng.randint(0, 10, n_train), False: rng.randint(0, 10, n_test)}

    class MNIST:
        def __init__(self, root, train=True, download=False, transform=None):
            self.x, self.y, self.transform = images[train], labels[train], transform

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            img = self.x[i]
            if self.transform is not None:
                img = self.transform(img)
            return img, int(self.y[i])

    class ToTensor:
        def __call__(self, img):
            return lib.from_numpy((img.astype(np.float32) / 255.0)[None].copy())

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean[0], std[0]

        def __call__(self, t):
            return (t - self.mean) / self.std

    class Compose:
        def __init__(self, ts):
            self.ts = ts

        def __call__(self, x):
            for t in self.ts:
                x = t(x)
            return x

    tv = types.ModuleType("torchvision")
    tv.datasets = types.SimpleNamespace(MNIST=MNIST)
    tv.transforms = types.SimpleNamespace(ToTensor=ToTensor, Normalize=Normalize, Compose=Compose)
    tv.utils = types.SimpleNamespace(save_image=lambda *a, **k: None)
    return {"torchvision": tv, "torchvision.datasets": tv.datasets,
            "torchvision.transforms": tv.transforms, "torchvision.utils": tv.utils}


def _fake_gymnasium(_lib):
    class Env:
        spec = types.SimpleNamespace(reward_threshold=475.0)

        def reset(self, seed=None):
            self.t, self.rng = 0, np.random.RandomState(0 if seed is None else seed)
            return self.rng.uniform(-0.05, 0.05, 4), {}

        def step(self, action):
            self.t += 1
            return self.rng.uniform(-0.05, 0.05, 4), 1.0, self.t >= 8 + action, False, {}

    gym = types.ModuleType("gymnasium")
    gym.make = lambda name, render_mode=None: Env()
    return {"gymnasium": gym}


def _fake_corpus(lib):
    rng = np.random.RandomState(0)

    class Dictionary:
        def __init__(self):
            self.idx2word = [f"w{i}" for i in range(50)]
            self.word2idx = {w: i for i, w in enumerate(self.idx2word)}

        def __len__(self):
            return len(self.idx2word)

    class Corpus:
        def __init__(self, path):
            self.dictionary = Dictionary()
            self.train = lib.from_numpy(rng.randint(0, 50, 400).astype(np.int64))
            self.valid = lib.from_numpy(rng.randint(0, 50, 101).astype(np.int64))
            self.test = lib.from_numpy(rng.randint(0, 50, 101).astype(np.int64))

    data = types.ModuleType("data")
    data.Corpus, data.Dictionary = Corpus, Dictionary
    return {"data": data}


FAKES = {"torchvision": _fake_torchvision, "gymnasium": _fake_gymnasium, "corpus": _fake_corpus}


@dataclass
class Spec:
    name: str                   # file under scripts/
    argv: list = field(default_factory=list)
    steps: int = 3              # optimiser steps to run (losses recorded: steps + 1)
    compare: bool = True        # whether the losses are comparable to torch's
    fakes: tuple = ()           # keys of FAKES
    siblings: dict = field(default_factory=dict)   # module name -> vendored file
    compare_vars: tuple = ()    # namespace variables to compare at the end (no backward)
    variant: str = ""           # names a second run of the same script (other argv)


@dataclass
class Result:
    losses: list
    weights: list
    draws: list
    namespace: dict
    stdout: str
    error: BaseException | None = None


# --- the hooks ----------------------------------------------------------------------------------
class _Hooks:
    def __init__(self, lib, is_torch, steps, files, ref: Result | None):
        self.lib, self.is_torch, self.steps, self.files, self.ref = lib, is_torch, steps, files, ref
        self.losses, self.weights, self.draws = [], [], []
        self.depth, self.seen, self.in_backward = 0, set(), False
        self.mask_rng = np.random.RandomState(1234)
        self.perm_rng = np.random.RandomState(4321)
        self.saved = []

    def _set(self, obj, name, value):
        self.saved.append((obj, name, vars(obj).get(name, _ABSENT)))
        setattr(obj, name, value)

    def restore(self):
        for obj, name, value in reversed(self.saved):
            if value is _ABSENT:
                delattr(obj, name)
            else:
                setattr(obj, name, value)

    def _from_script(self):
        f = sys._getframe(2)
        return f.f_code.co_filename in self.files

    def install(self):
        lib, hooks = self.lib, self
        Tensor = lib.Tensor
        orig_backward = Tensor.backward

        def backward(self, *args, **kwargs):
            if hooks.in_backward:  # torch re-enters through a TorchFunctionMode
                return orig_backward(self, *args, **kwargs)
            if len(hooks.losses) > hooks.steps:
                raise StopRun
            hooks.losses.append(float(self.detach().sum().item()))
            hooks.in_backward = True
            try:
                return orig_backward(self, *args, **kwargs)
            finally:
                hooks.in_backward = False

        self._set(Tensor, "backward", backward)

        Module = lib.nn.Module
        orig_call = Module.__call__

        def call(mod, *args, **kwargs):
            if hooks.depth == 0 and id(mod) not in hooks.seen:
                hooks.seen.add(id(mod))
                hooks._align_module(mod)
            hooks.depth += 1
            try:
                return orig_call(mod, *args, **kwargs)
            finally:
                hooks.depth -= 1

        self._set(Module, "__call__", call)

        for name in RANDOM_FACTORIES:
            if hasattr(lib, name):
                self._set(lib, name, self._wrap_factory(name, getattr(lib, name)))

        F = lib.nn.functional

        def dropout(input, p=0.5, training=True, inplace=False):
            if not training or p == 0:
                return input
            keep = (hooks.mask_rng.random_sample(tuple(input.shape)) >= p).astype(np.float32)
            return input * lib.from_numpy(keep / (1 - p)).to(input.dtype)

        self._set(F, "dropout", dropout)
        sampler = lib.utils.data.RandomSampler

        def sampler_iter(s):
            return iter(hooks.perm_rng.permutation(len(s.data_source)).tolist())

        self._set(sampler, "__iter__", sampler_iter)

    def _align_module(self, mod):
        if self.is_torch:
            self.weights.append({k: v.detach().numpy().copy()
                                 for k, v in mod.state_dict().items()})
        elif self.ref is not None and len(self.weights) < len(self.ref.weights):
            sd = self.ref.weights[len(self.weights)]
            self.weights.append(sd)
            mod.load_state_dict({k: v.copy() for k, v in sd.items()})

    def _wrap_factory(self, name, orig):
        hooks, lib = self, self.lib

        def factory(*args, **kwargs):
            out = orig(*args, **kwargs)
            if not hooks._from_script():
                return out
            if hooks.is_torch:
                hooks.draws.append((name, out.detach().numpy().copy()))
                return out
            if hooks.ref is None or len(hooks.draws) >= len(hooks.ref.draws):
                return out
            ref_name, arr = hooks.ref.draws[len(hooks.draws)]
            hooks.draws.append((ref_name, arr))
            if ref_name != name or tuple(arr.shape) != tuple(out.shape):
                return out
            t = lib.from_numpy(arr.copy()).to(out.dtype)
            if out.requires_grad:
                t.requires_grad_(True)
            return t

        return factory


def run_script(spec: Spec, lib_name: str, tmp_path, ref: Result | None = None) -> Result:
    """Run scripts/<spec.name>.py under torch ("torch") or flowgrad ("flowgrad")."""
    if lib_name == "torch":
        import torch as lib
    else:
        import flowgrad as lib
    path = SCRIPTS / f"{spec.name}.py"
    source = path.read_text()
    if lib_name != "torch":
        source = rewrite_imports(source)
    files = {str(path)} | {str(SCRIPTS / f) for f in spec.siblings.values()}

    modules = {}
    for key in spec.fakes:
        modules.update(FAKES[key](lib))
    for mod_name, file in spec.siblings.items():
        sib_path = SCRIPTS / file
        sib_src = sib_path.read_text()
        if lib_name != "torch":
            sib_src = rewrite_imports(sib_src)
        module = types.ModuleType(mod_name)
        module.__file__ = str(sib_path)
        modules[mod_name] = (module, compile(sib_src, str(sib_path), "exec"))

    hooks = _Hooks(lib, lib_name == "torch", spec.steps, files, ref)
    ns = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
    stdout = io.StringIO()
    saved_modules = {k: sys.modules.get(k) for k in modules}
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    error = None
    random.seed(0)
    np.random.seed(0)
    lib.manual_seed(0)
    try:
        hooks.install()
        for mod_name, value in modules.items():
            if isinstance(value, tuple):
                module, code = value
                sys.modules[mod_name] = module
                exec(code, module.__dict__)
            else:
                sys.modules[mod_name] = value
        sys.argv = [str(path), *spec.argv]
        os.chdir(tmp_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = compile(source, str(path), "exec")
            with contextlib.redirect_stdout(stdout):
                exec(code, ns)
    except StopRun:
        pass
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        error = e
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        hooks.restore()
        if lib_name == "torch":
            lib.set_default_device(None)  # a script may have set it (a global mode)
        for k, v in saved_modules.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return Result(hooks.losses, hooks.weights, hooks.draws, ns, stdout.getvalue(), error)


def first_error(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:200]
