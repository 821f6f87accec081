"""What the results were measured on: the machine, the threads, the software, the kernels in use.

`pin_threads` must run before JAX (or a peer) is imported: thread pools size
themselves when they start. It sets ``OMP_NUM_THREADS`` (Qulacs, lightning),
the BLAS variables and ``QSIM_NUM_THREADS`` (qsim's native kernels), restricts
the process (and the processes it starts) to that many CPUs, which sizes XLA's
CPU thread pool, and with one thread adds XLA's
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``.

`apply_dispatch` (``--sync-dispatch``) makes JAX run CPU computations inline in
the calling thread instead of handing each call to XLA's pool: it must run
before JAX's CPU client starts, in this process and in every case process
(`benchmarks.memory` calls it too; the choice travels in `SYNC_DISPATCH_VAR`).
"""

from __future__ import annotations

import datetime
import os
import platform
import socket
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "QSIM_NUM_THREADS")
ONE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
SYNC_DISPATCH_VAR = "QSIM_BENCH_SYNC_DISPATCH"


def available_cpus() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pin_threads(threads: int | None) -> dict:
    """Give every library ``threads`` threads (default: all available CPUs); returns what was set.

    Raises:
      ValueError: ``threads`` below 1.
    """
    cpus = available_cpus()
    threads = len(cpus) if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    if threads < len(cpus) and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus[:threads])
    if threads == 1 and ONE_THREAD_XLA not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD_XLA).strip()
    late = "jax" in sys.modules
    return {"threads": threads, "cpus_available": len(cpus), "cpus_pinned": len(available_cpus()),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "jax_imported_before_pinning": late}


def apply_dispatch() -> dict:
    """Turn off JAX's asynchronous CPU dispatch where `SYNC_DISPATCH_VAR` is ``1`` (every library
    in the process runs its calls inline); returns ``{"cpu_async_dispatch": bool, "dispatch_note"}``.

    The setting is read once, when JAX's CPU client starts: where it had already started
    (a caller that ran JAX before), the returned record says that the request came too late.
    """
    import jax

    if os.environ.get(SYNC_DISPATCH_VAR) != "1":
        return {"cpu_async_dispatch": True, "dispatch_note": ""}
    try:
        from jax._src import xla_bridge

        late = bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):   # a JAX without it: assume the client has not started
        late = False
    if late:
        return {"cpu_async_dispatch": True,
                "dispatch_note": "JAX's CPU client had started before --sync-dispatch: dispatch stays asynchronous"}
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    return {"cpu_async_dispatch": False, "dispatch_note": ""}


def dispatch_record() -> dict:
    """``{"cpu_async_dispatch": bool}`` as this process's JAX reads it (after one computation)."""
    import jax
    import jax.numpy as jnp

    jnp.ones(4).block_until_ready()
    return {"cpu_async_dispatch": bool(jax.config.read("jax_cpu_enable_async_dispatch"))}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    except (ValueError, OSError, AttributeError):
        return None


def fmt_load(load) -> str:
    """A load average triple as ``"3.36, 2.84, 2.71"``; ``"-"`` where the platform has none."""
    return "-" if not load else ", ".join(f"{x:.2f}" for x in load)


def describe(threads_info: dict, peers, bandwidth) -> dict:
    """The JSON ``meta`` record: host, CPU, threads, software versions, device, qsim kernels, peers."""
    import jax
    import jaxlib

    import qsim

    return {
        "hostname": socket.gethostname(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "threads": threads_info,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "jax_backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "qsim_version": getattr(qsim, "__version__", "unknown"),
        "qsim_native_status": qsim.native_status(),
        "bandwidth": bandwidth.as_dict() if bandwidth is not None else None,
        "peers": {p.name: {"version": p.version(), "how": p.describe()} for p in peers},
    }
