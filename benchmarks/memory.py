"""Peak memory: each case runs in a fresh Python process that reports its ``ru_maxrss``.

`run_isolated("module:function", kwargs)` starts ``python -m benchmarks.memory``,
which calls ``function(**kwargs)`` (a dict of JSON-able results), adds the
process's peak resident memory, and prints one tagged JSON line back.

The peak is ``VmHWM`` from ``/proc/self/status`` where there is one: on Linux
``getrusage(RUSAGE_SELF).ru_maxrss`` survives ``fork`` + ``exec``, so a child
started by a 1 GiB parent reports at least 1 GiB whatever it does (measured
here: 311 MiB reported by a child of a 300 MiB parent whose own peak was
9 MiB). ``ru_maxrss`` is kept beside it, and used where ``/proc`` is missing. The
process starts with the parent's environment (threads, XLA flags, affinity),
so a case measured there sees the same machine. `baseline` is the peak of a
process that only imports JAX and qsim: subtract it to see what a case adds.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

TAG = "BENCHMARK-RESULT "
REPO_ROOT = Path(__file__).resolve().parents[1]


def ru_maxrss_mib() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB (KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def peak_rss_mib() -> float:
    """This process's own peak resident memory in MiB (``VmHWM``, else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return ru_maxrss_mib()


def _child_env(extra=None):
    env = dict(os.environ, **(extra or {}))
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_isolated(target: str, kwargs: dict, *, x64: bool = False, timeout: float = 600,
                 env: dict | None = None) -> dict:
    """Run ``target`` (``"package.module:function"``) with ``kwargs`` in a fresh process
    (``env``: extra environment variables for it, e.g. ``XLA_FLAGS``).

    Returns:
      the function's dict plus ``peak_rss_mib``; on failure ``{"error": message}``.
    """
    spec = json.dumps({"target": target, "kwargs": kwargs, "x64": x64})
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.memory"], input=spec, text=True,
                              capture_output=True, timeout=timeout, env=_child_env(env), cwd=str(REPO_ROOT))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(TAG):
            return json.loads(line[len(TAG):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:300]}"}


def idle() -> dict:
    """The baseline case: import JAX and qsim, run one tiny op."""
    import jax.numpy as jnp

    import qsim  # noqa: F401

    jnp.ones(4).block_until_ready()
    return {}


def baseline(x64: bool = False) -> float | None:
    """Peak MiB of a process that only imports JAX and qsim (None if it failed)."""
    return run_isolated("benchmarks.memory:idle", {}, x64=x64).get("peak_rss_mib")


def _child():
    from .machine import apply_dispatch

    spec = json.loads(sys.stdin.read())
    apply_dispatch()   # before anything starts JAX's CPU client
    if spec["x64"]:
        import jax

        jax.config.update("jax_enable_x64", True)
    module, func = spec["target"].split(":")
    result = dict(getattr(importlib.import_module(module), func)(**spec["kwargs"]))
    result["peak_rss_mib"] = peak_rss_mib()
    result["ru_maxrss_mib"] = ru_maxrss_mib()
    print(TAG + json.dumps(result), flush=True)


if __name__ == "__main__":
    _child()
