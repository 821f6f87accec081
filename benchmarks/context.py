"""What a suite is handed (`Config`) and what it hands back (`Case`s that return result rows).

A suite module exposes ``cases(cfg) -> list[Case]``: one case per grid point,
named by it (``"h n=22 mid c64"``), each a zero-argument function returning
rows (dicts) for qsim and for every peer measured on that point. The CLI runs
the cases under one progress bar; `report` turns the rows into the table,
JSON and plots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

SHORT_DTYPE = {"complex64": "c64", "complex128": "c128"}
PURE_JAX = "qsim pure-JAX"   # impl name of qsim's rows on the XLA kernels beside the native ones


@dataclass
class Case:
    """One grid point of a suite: ``run()`` measures it and returns its rows."""

    suite: str
    name: str
    run: Callable[[], list]


@dataclass
class Config:
    """The run's settings, shared by every suite.

    ``qubits``/``depths``/``dtypes``/``batches`` are the user's overrides (None: each suite's
    own grid, quick or ``full``); ``peers`` are loaded adapters (``train_peers``: names of
    peers that only the train suite runs); ``bandwidth`` is the
    floor's `Bandwidth`; ``checks`` caches peer verifications; ``notes`` collects
    what was skipped and why.
    """

    qubits: list | None = None
    depths: list | None = None
    dtypes: list | None = None
    repeat: int = 3
    full: bool = False
    peers: list = field(default_factory=list)
    bandwidth: object = None
    threads: int = 1
    qasm_dir: Path | None = None
    isolate_memory: bool = True
    native: bool = False        # qsim's native CPU kernels are in use (adds pure-JAX rows)
    batches: list | None = None  # the user's batch sizes (train suite; None: its own grid)
    train_peers: list = field(default_factory=list)   # peers only the train suite runs (pennylane)
    notes: list = field(default_factory=list)
    checks: dict = field(default_factory=dict)

    def grid(self, quick, full):
        """The qubit grid: the override, else ``full`` or ``quick``."""
        return list(self.qubits) if self.qubits else list(full if self.full else quick)

    def depth_grid(self, quick, full):
        """The depth (layer) grid: the override, else ``full`` or ``quick``."""
        return list(self.depths) if self.depths else list(full if self.full else quick)

    def dtype_list(self, default=("complex64",)):
        """The dtypes: the override, else ``default``."""
        return list(self.dtypes) if self.dtypes else list(default)

    def aer_and_pennylane(self) -> list[str]:
        """The requested peers among Qiskit Aer and PennyLane default.qubit (the peers of the
        suites that sample shots or noise)."""
        out = [p.name for p in self.peers if p.name == "aer"]
        if "pennylane" in self.train_peers:
            out.append("pennylane")
        return out

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def floor_s(self, n: int, dtype: str, passes: int = 1) -> float | None:
        """``passes`` reads and writes of an ``n``-qubit state at the measured bandwidth."""
        if self.bandwidth is None:
            return None
        return passes * self.bandwidth.floor_s(n, np.dtype(dtype).itemsize)


def row(suite: str, case: str, impl: str, **fields) -> dict:
    """One result row; ``fields`` are the grid point and the measurements."""
    out = {"suite": suite, "case": case, "impl": impl}
    out.update(fields)
    return out


def with_floor(r: dict, floor_s: float | None) -> dict:
    """Add ``floor_s`` and ``x_floor`` (median time / floor) to a row that has ``time_s``."""
    if floor_s and r.get("time_s") is not None:
        r["floor_s"] = floor_s
        r["x_floor"] = r["time_s"] / floor_s
    return r


def peer_dtype(peer, dtype: str) -> str:
    """``dtype`` if the peer has it, else its own (Qulacs: complex128)."""
    return dtype if dtype in peer.dtypes else peer.dtypes[-1]
