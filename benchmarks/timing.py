"""Honest timings: warm up first, compile apart, block inside the timed region, median of repeats.

Every timed callable must block until its result is ready (JAX callables call
``block_until_ready()`` themselves). Results are plain dicts so they go
straight into the JSON report.
"""

from __future__ import annotations

import statistics
import time

# calls faster than this are repeated more often (up to MAX_CALLS) for a stable median
FAST_CALL_S = 0.01
FAST_BUDGET_S = 0.2
MAX_CALLS = 200


def now() -> float:
    """A monotonic clock in seconds."""
    return time.perf_counter()


def n_calls(first_s: float, repeat: int) -> int:
    """How many timed calls: ``repeat``, more for fast calls (within ``FAST_BUDGET_S``)."""
    if first_s >= FAST_CALL_S:
        return repeat
    extra = int(FAST_BUDGET_S / max(first_s, 1e-6))
    return max(repeat, min(MAX_CALLS, extra))


def measure(fn, repeat: int = 5, warmup: int = 1) -> dict:
    """Time ``fn()`` (which blocks): ``warmup`` untimed calls, then the median, min and max of the rest.

    Returns:
      ``{"time_s": median, "time_min_s": min, "time_max_s": max, "calls": count}``.
    """
    first = None
    for _ in range(max(warmup, 1)):
        t0 = now()
        fn()
        first = now() - t0
    times = []
    for _ in range(n_calls(first, max(repeat, 1))):
        t0 = now()
        fn()
        times.append(now() - t0)
    return summary(times)


def summary(times) -> dict:
    """Median, min and max of a list of seconds."""
    return {"time_s": statistics.median(times), "time_min_s": min(times),
            "time_max_s": max(times), "calls": len(times)}


def compile_jit(fn, *args, donate: bool = False):
    """``jax.jit(fn).lower(*args).compile()``, timed apart.

    Returns:
      ``(compiled, {"lower_s": tracing and lowering, "compile_s": lowering plus XLA compile})``.
    """
    import jax

    jitted = jax.jit(fn, donate_argnums=(0,) if donate else ())
    t0 = now()
    lowered = jitted.lower(*args)
    t1 = now()
    compiled = lowered.compile()
    t2 = now()
    return compiled, {"lower_s": t1 - t0, "compile_s": t2 - t0}


def block(x):
    """``block_until_ready`` on every array leaf of ``x``; returns ``x``."""
    import jax

    return jax.block_until_ready(x)
