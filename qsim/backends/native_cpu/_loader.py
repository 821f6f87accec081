"""Loading the native CPU kernels (``_qsim_native.so``, C++ through the XLA FFI).

The library is built by ``pip install`` when a C++ compiler is available (see
``CMakeLists.txt``); without it `available` is False, `why_unavailable` says why
in one line, and qsim runs on the pure-JAX kernels. It is loaded lazily, once;
``QSIM_NATIVE_LIBRARY=/path/to/_qsim_native.so`` loads another build,
``QSIM_DISABLE_NATIVE=1`` turns it off. Threads: ``QSIM_NUM_THREADS`` (else
``OMP_NUM_THREADS``, else the CPUs this process may use).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import pathlib
import sys

import jax

_LIB_STEM = "_qsim_native"
_HANDLERS = ("program", "program_vjp", "dense_vjp", "diagonal_vjp")


def _candidate_paths():
    """Where the library may be: next to this file, in the package's search path
    (scikit-build-core's editable installs put it in site-packages), or where
    the import system finds ``qsim._qsim_native``."""
    here = pathlib.Path(__file__).resolve().parents[2]   # the qsim package
    dirs = [here]
    pkg = sys.modules.get("qsim")
    dirs += [pathlib.Path(p) for p in getattr(pkg, "__path__", ())]
    for d in dirs:
        for suffix in (".so", ".dylib", ".dll", ".pyd"):
            yield d / (_LIB_STEM + suffix)
    try:
        spec = importlib.util.find_spec(f"qsim.{_LIB_STEM}")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        yield pathlib.Path(spec.origin)


def _find_library():
    override = os.environ.get("QSIM_NATIVE_LIBRARY")
    if override:
        return pathlib.Path(override)
    return next((p for p in _candidate_paths() if p.is_file()), None)


@functools.lru_cache(maxsize=None)
def _load():
    """Load and register the library once: returns (library or None, reason)."""
    if os.environ.get("QSIM_DISABLE_NATIVE", "") not in ("", "0"):
        return None, "disabled by QSIM_DISABLE_NATIVE"
    path = _find_library()
    if path is None:
        return None, ("_qsim_native.so was not built (no C++ compiler or jaxlib headers at "
                      "install time?); reinstall with `pip install -e .` to build it")
    try:
        lib = ctypes.CDLL(str(path))
        lib.qsim_native_info.restype = ctypes.c_char_p
        for name in _HANDLERS:
            symbol = getattr(lib, f"qsim_native_{name}")
            jax.ffi.register_ffi_target(f"qsim_native_{name}", jax.ffi.pycapsule(symbol),
                                        platform="cpu")
    except (OSError, AttributeError) as err:
        return None, f"could not load {path}: {err}"
    return lib, ""


def available() -> bool:
    """Whether the native kernels are built and loaded."""
    return _load()[0] is not None


def why_unavailable() -> str:
    """One line saying why the native kernels are unavailable ("" when they are)."""
    return _load()[1]


def info() -> str:
    """What the kernels run on, e.g. ``"isa=avx2+fma threads=2"`` ("" when unavailable)."""
    lib = _load()[0]
    return lib.qsim_native_info().decode() if lib is not None else ""
