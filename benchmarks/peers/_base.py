"""What every peer adapter provides: a `Peer` that prepares `Runner`s from op lists."""

from __future__ import annotations

import importlib.metadata

import numpy as np


class Runner:
    """A prepared simulation: ``run()`` applies the ops once to the held state, and blocks.

    ``result()`` is the held state in qsim's wire order (wire 0 = MSB), shape ``(2**n,)``.
    ``compile_s`` is the jit compile time for compiled peers, else None.
    """

    compile_s: float | None = None

    def run(self) -> None:
        raise NotImplementedError

    def result(self) -> np.ndarray:
        raise NotImplementedError


class Peer:
    """A peer simulator.

    Attributes:
      name: short name used in tables and ``--peers``.
      dist: distribution name (for the version).
      dtypes: state dtypes it supports.
      gate_batch: when timing one gate, the op is repeated this many times per run and a
        run of no ops is subtracted (for peers with a fixed per-run overhead).
      threads: threads it is given.
    """

    name = ""
    dist = ""
    dtypes: tuple[str, ...] = ("complex64", "complex128")
    gate_batch = 1

    def __init__(self, threads: int):
        self.threads = threads

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.dist)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    def describe(self) -> str:
        """How it is run (shown in the report)."""
        return self.name

    def prepare(self, ops, n: int, dtype: str, init: np.ndarray, *, fuse: bool | None = None) -> Runner:
        """A `Runner` applying ``ops`` to a copy of ``init`` (``fuse=False`` turns the peer's fusion off)."""
        raise NotImplementedError
