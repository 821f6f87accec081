"""Peer simulators, one adapter module each, loaded when installed and checked before timing.

Every adapter turns a `benchmarks.workloads` op list into a `Runner` of its own
library (``run()`` applies the ops to its held state, ``result()`` returns the
state in qsim's wire order), so one suite times every simulator the same way.
A peer is timed on a case only after `verify` has found that it computes the
same state as qsim on a small case of the same kind: a benchmark of a wrong
circuit is worthless. A peer that is not installed becomes a note.
"""

from __future__ import annotations

import importlib

import numpy as np

from ._base import Peer, Runner

# name -> adapter module (each defines ADAPTER, a Peer subclass)
ADAPTERS = {
    "qulacs": "benchmarks.peers._qulacs",
    "lightning": "benchmarks.peers._lightning",
    "aer": "benchmarks.peers._aer",
    "tensorcircuit": "benchmarks.peers._tensorcircuit",
    "qujax": "benchmarks.peers._qujax",
}
# max |ours - theirs| allowed per dtype (after a few hundred gates in single precision)
TOLERANCE = {"complex64": 2e-4, "complex128": 1e-9}

__all__ = ["ADAPTERS", "Peer", "PeerMismatch", "Runner", "check_same", "load", "parse_names", "verify"]


class PeerMismatch(AssertionError):
    """A peer's state differs from qsim's on the check case: it is not timed."""


def parse_names(spec: str) -> list[str]:
    """``"all"``, ``"none"`` or a comma list of `ADAPTERS` names -> the names.

    Raises:
      ValueError: for an unknown name.
    """
    spec = (spec or "none").strip().lower()
    if spec == "all":
        return list(ADAPTERS)
    if spec in ("none", ""):
        return []
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s for s in names if s not in ADAPTERS]
    if unknown:
        raise ValueError(f"--peers: unknown peer(s) {unknown}; allowed: all, none or a comma list of "
                         f"{', '.join(ADAPTERS)}")
    return names


def load(names, threads: int) -> tuple[list[Peer], list[str]]:
    """Import the adapters of ``names``; a missing library becomes a note, not a failure.

    Returns:
      ``(peers, notes)``: the adapters ready to use (given ``threads`` threads) and one
      note per peer skipped.
    """
    import jax

    x64 = jax.config.jax_enable_x64
    peers, notes = [], []
    for name in names:
        try:
            module = importlib.import_module(ADAPTERS[name])
        except ImportError as err:
            notes.append(f"{name}: skipped, not installed ({err})")
            continue
        finally:  # importing tensorcircuit turns jax_enable_x64 off
            jax.config.update("jax_enable_x64", x64)
        peers.append(module.ADAPTER(threads))
    return peers, notes


def check_same(ours, theirs, dtype: str, what: str) -> float:
    """Max ``|ours - theirs|`` over the amplitudes; raise if over the dtype's tolerance.

    Raises:
      PeerMismatch: shapes differ, a value is not finite, or the difference is too large.
    """
    a, b = np.asarray(ours).reshape(-1), np.asarray(theirs).reshape(-1)
    if a.shape != b.shape:
        raise PeerMismatch(f"{what}: shapes differ, ours {a.shape} vs theirs {b.shape}")
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    if not np.isfinite(err) or err > TOLERANCE[dtype]:
        raise PeerMismatch(f"{what}: max |ours - theirs| = {err:.3g} > {TOLERANCE[dtype]:g} ({dtype})")
    return err


def verify(peer: Peer, ops, n: int, dtype: str, init, what: str, cache: dict) -> str | None:
    """Run ``ops`` on ``init`` in qsim and in ``peer`` and compare, once per ``what``.

    Returns:
      None when they agree (or the result is cached), else a note saying why the peer is
      not timed on this kind of case (a mismatch or an error of the peer).
    """
    key = (peer.name, what, dtype)
    if key not in cache:
        cache[key] = _compare(peer, ops, n, dtype, init, what)
    return cache[key]


def _compare(peer, ops, n, dtype, init, what):
    from ..ours import QsimRunner

    ours = QsimRunner(ops, n, dtype, init)
    ours.run()
    try:
        theirs = peer.prepare(ops, n, dtype, init)
        theirs.run()
        check_same(ours.result(), theirs.result(), dtype, f"{peer.name} {what}")
    except PeerMismatch as err:
        return f"NOT TIMED, state differs from qsim: {err}"
    except Exception as err:  # a peer's own failure (unsupported gate, dtype...) is a note
        return f"not timed, {type(err).__name__}: {str(err)[:200]}"
    return None
