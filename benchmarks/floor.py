"""The memory-bandwidth floor: what one pass over the state costs on this machine.

A gate that touches the whole state must read and write it once, so it cannot
beat ``floor(n) = 2 * 2**n * itemsize / bandwidth``. The bandwidth is measured
here, in the same run, as the best of a few streaming kernels on arrays far
larger than the caches, run with as many threads as the simulators get:
numpy ``copyto`` and an in-place numpy scale (split over the threads), and a
jitted, donated JAX ``x * 1.0001`` (XLA's own threads); on an accelerator, the JAX kernel alone (its memory's
bandwidth). Below about 21 qubits
(complex64) the state fits in the last-level cache and gates may beat the floor.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .timing import now

DEFAULT_MIB = 512
REPEATS = 4


@dataclass
class Bandwidth:
    """Measured streaming bandwidth (bytes per second) and how it was measured."""

    bytes_per_s: float
    kernels: dict = field(default_factory=dict)   # kernel name -> best bytes/s
    mib: int = DEFAULT_MIB
    threads: int = 1
    seconds: float = 0.0                          # time the measurement took

    def floor_s(self, n: int, itemsize: int) -> float:
        """Seconds for one read and one write of a ``2**n``-amplitude state of ``itemsize`` bytes."""
        return floor_seconds(n, itemsize, self.bytes_per_s)

    def as_dict(self) -> dict:
        return {"bytes_per_s": self.bytes_per_s, "gb_per_s": self.bytes_per_s / 1e9,
                "kernels_gb_per_s": {k: v / 1e9 for k, v in self.kernels.items()},
                "array_mib": self.mib, "threads": self.threads, "seconds": self.seconds}


def floor_seconds(n: int, itemsize: int, bytes_per_s: float) -> float:
    """``2 * 2**n * itemsize / bytes_per_s``: one read and one write of the state.

    Raises:
      ValueError: for a non-positive bandwidth or a negative ``n``.
    """
    if bytes_per_s <= 0 or n < 0:
        raise ValueError(f"floor_seconds: need n >= 0 and bandwidth > 0, got n={n}, bandwidth={bytes_per_s}")
    return 2.0 * (1 << n) * itemsize / bytes_per_s


def _chunks(size, threads):
    step = -(-size // threads)
    return [slice(i, min(i + step, size)) for i in range(0, size, step)]


def _threaded(pool, chunks, fn):
    list(pool.map(fn, chunks))


def _best_rate(run, nbytes, repeats):
    """Best bytes/s of ``run()`` (moves ``nbytes``), after one warm-up call."""
    run()
    best = min(_timed(run) for _ in range(repeats))
    return nbytes / best


def _timed(run):
    t0 = now()
    run()
    return now() - t0


def _numpy_kernels(mib, threads, repeats):
    size = mib * (1 << 20) // 4
    src = np.ones(size, np.float32)
    dst = np.zeros(size, np.float32)
    chunks = _chunks(size, threads)
    with ThreadPoolExecutor(threads) as pool:
        copy = lambda: _threaded(pool, chunks, lambda s: np.copyto(dst[s], src[s]))
        scale = lambda: _threaded(pool, chunks, lambda s: np.multiply(src[s], 1.0001, out=src[s]))
        return {"numpy copyto": _best_rate(copy, 2 * src.nbytes, repeats),
                "numpy scale in place": _best_rate(scale, 2 * src.nbytes, repeats)}


def _jax_kernel(mib, repeats):
    import jax
    import jax.numpy as jnp

    size = mib * (1 << 20) // 4
    scale = jax.jit(lambda x: x * 1.0001, donate_argnums=0)
    state = {"x": jnp.ones(size, jnp.float32)}

    def run():
        state["x"] = scale(state["x"]).block_until_ready()

    return {"jax donated scale": _best_rate(run, 2 * 4 * size, repeats)}


def measure_bandwidth(mib: int = DEFAULT_MIB, threads: int = 1, repeats: int = REPEATS,
                      use_jax: bool = True) -> Bandwidth:
    """Best streaming bandwidth over the kernels, on float32 arrays of ``mib`` MiB.

    Args:
      mib: array size in MiB (far larger than the last-level cache for a true figure).
      threads: threads for the numpy kernels (JAX uses its own pool).
      repeats: timed passes per kernel (the best is kept).
      use_jax: also time the jitted, donated JAX kernel.

    Returns:
      a `Bandwidth`; ``.bytes_per_s`` is the best kernel's rate.
    """
    import jax

    t0 = now()
    on_cpu = jax.default_backend() == "cpu"   # on an accelerator the state lives in its memory
    kernels = _numpy_kernels(mib, max(threads, 1), repeats) if on_cpu or not use_jax else {}
    if use_jax:
        kernels.update(_jax_kernel(mib, repeats))
    best = max(kernels.values())
    return Bandwidth(best, kernels, mib, threads, now() - t0)
