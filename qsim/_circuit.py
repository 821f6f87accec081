"""`Circuit`: a thin builder that records and checks gates, and runs the pure core.

The circuit records a *program* (static op records, see `_ir`) and a matching
list of parameter tuples (possibly traced). Reading the results (`state`,
`probs`, `expectation`, `sample`) runs the program through a jitted pure
function cached on the static records, so eager use does not retrace and a
function that builds a Circuit from traced parameters works under `jax.jit`,
`jax.grad` and `jax.vmap`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import _simulate
from ._gates import ALIASES, GATES, GateDef, user_matrix
from ._observables import PauliSum, check_hermitian
from . import backends
from ._ir import GateOp, RepeatOp
from ._validate import (check_dtype, check_key, check_matrix, check_memory, check_n_qubits, check_param,
                        check_state, check_wires, is_concrete)

_DIFF_METHODS = ("backprop", "adjoint", "parameter-shift")
_MARGINAL = "(each wire at most once)"


def _param_name(i, count):
    return "parameter" if count == 1 else f"parameter {i + 1} of {count}"


def _user_gate(name, n_controls, k, diagonal):
    structure = "diagonal" if diagonal else "dense"
    return GateDef(name=name, n_wires=n_controls + k, n_params=1, structure=structure,
                   n_controls=n_controls, matrix=user_matrix, perm=None, shift=None)


class Circuit:
    """An n-qubit statevector circuit starting in ``|0...0>`` (or ``state``).

    Args:
      n_qubits: number of wires; wire 0 is the most significant bit of a basis index.
      state: optional initial state, shape ``(2**n_qubits,)``, of norm 1 (checked when concrete:
        a ``ValueError`` names the norm found; a traced state is not checked).
      normalize: divide ``state`` by its norm first (as PennyLane's ``StatePrep(normalize=True)``).
      dtype: ``jnp.complex64`` (default) or ``jnp.complex128`` (needs ``jax_enable_x64``).
      max_fused_qubits: gates are fused into dense blocks of up to this many wires
        before running (0 or 1: no fusion; None: the default for the backend).
      backend: ``"auto"`` (native CPU kernels on CPU when built, XLA elsewhere), ``"xla"``
        (pure JAX) or ``"native"``.

    Example:
      >>> c = Circuit(2).h(0).cnot(0, 1)
      >>> c.probs()   # [0.5, 0, 0, 0.5]
    """

    def __init__(self, n_qubits, state=None, *, normalize=False, dtype=None, max_fused_qubits=None,
                 backend="auto"):
        self.n_qubits = n = check_n_qubits(n_qubits)
        self.backend = backends.resolve(backend, "Circuit")
        if dtype is None and state is not None and jnp.iscomplexobj(state):
            dtype = jnp.asarray(state).dtype
        self.dtype = check_dtype(dtype)
        self.real_dtype = jnp.finfo(self.dtype).dtype
        self.max_fused_qubits = _check_fusion(max_fused_qubits)
        check_memory(n, self.dtype, 2, "Circuit")
        self._init = None if state is None else check_state(state, n, "Circuit", self.dtype, normalize)
        self._program: list = []
        self._params: list = []
        self.measurements: dict[int, object] = {}

    # -- recording -------------------------------------------------------
    def _gate(self, name, wires, params=()):
        g = GATES[ALIASES.get(name, name)]
        where = f"Circuit.{name}"
        wires = check_wires(wires, self.n_qubits, where, g.n_wires)
        params = tuple(check_param(p, where, self.real_dtype, _param_name(i, len(params)))
                       for i, p in enumerate(params))
        return self._record(GateOp(g, wires), params, where)

    def _record(self, op, params, where):
        touched = set(op.wires) if isinstance(op, GateOp) else set(range(self.n_qubits))
        measured = touched & set(self.measurements)
        if measured:
            raise ValueError(f"{where}: wire {min(measured)} was already measured; mid-circuit measurement "
                             "is not supported (measure at the end of the circuit)")
        self._program.append(op)
        self._params.append(params)
        return self

    def i(self, wire): return self._gate("i", (wire,))
    def x(self, wire): return self._gate("x", (wire,))
    def y(self, wire): return self._gate("y", (wire,))
    def z(self, wire): return self._gate("z", (wire,))
    def h(self, wire): return self._gate("h", (wire,))
    def s(self, wire): return self._gate("s", (wire,))
    def sdg(self, wire): return self._gate("sdg", (wire,))
    def t(self, wire): return self._gate("t", (wire,))
    def tdg(self, wire): return self._gate("tdg", (wire,))
    def sx(self, wire): return self._gate("sx", (wire,))
    def rx(self, wire, theta): return self._gate("rx", (wire,), (theta,))
    def ry(self, wire, theta): return self._gate("ry", (wire,), (theta,))
    def rz(self, wire, theta): return self._gate("rz", (wire,), (theta,))
    def phase(self, wire, lam): return self._gate("phase", (wire,), (lam,))
    def u1(self, wire, lam): return self._gate("u1", (wire,), (lam,))
    def u2(self, wire, phi, lam): return self._gate("u2", (wire,), (phi, lam))
    def u3(self, wire, theta, phi, lam): return self._gate("u3", (wire,), (theta, phi, lam))
    def cnot(self, control, target): return self._gate("cnot", (control, target))
    def cx(self, control, target): return self._gate("cx", (control, target))
    def cy(self, control, target): return self._gate("cy", (control, target))
    def cz(self, control, target): return self._gate("cz", (control, target))
    def swap(self, wire0, wire1): return self._gate("swap", (wire0, wire1))
    def iswap(self, wire0, wire1): return self._gate("iswap", (wire0, wire1))
    def crx(self, control, target, theta): return self._gate("crx", (control, target), (theta,))
    def cry(self, control, target, theta): return self._gate("cry", (control, target), (theta,))
    def crz(self, control, target, theta): return self._gate("crz", (control, target), (theta,))
    def cphase(self, control, target, lam): return self._gate("cphase", (control, target), (lam,))
    def rxx(self, wire0, wire1, theta): return self._gate("rxx", (wire0, wire1), (theta,))
    def ryy(self, wire0, wire1, theta): return self._gate("ryy", (wire0, wire1), (theta,))
    def rzz(self, wire0, wire1, theta): return self._gate("rzz", (wire0, wire1), (theta,))
    def toffoli(self, control0, control1, target): return self._gate("toffoli", (control0, control1, target))
    def ccx(self, control0, control1, target): return self._gate("ccx", (control0, control1, target))
    def cswap(self, control, wire0, wire1): return self._gate("cswap", (control, wire0, wire1))

    def unitary(self, U, wires):
        """Apply any k-qubit unitary ``U`` of shape ``(2**k, 2**k)``; ``wires[0]`` is U's most significant bit."""
        wires = check_wires(np.atleast_1d(wires).tolist(), self.n_qubits, "Circuit.unitary")
        return self._matrix_gate("unitary", U, (), wires)

    def controlled(self, U, controls, targets):
        """Apply ``U`` on ``targets`` where every wire in ``controls`` is 1 (only that slice is touched)."""
        controls = tuple(np.atleast_1d(controls).tolist())
        targets = tuple(np.atleast_1d(targets).tolist())
        check_wires(controls + targets, self.n_qubits, "Circuit.controlled")
        return self._matrix_gate("controlled", U, controls, targets)

    def _matrix_gate(self, name, U, controls, targets):
        where = f"Circuit.{name}"
        u = check_matrix(U, len(targets), where, self.dtype)
        if is_concrete(u) and np.count_nonzero(np.asarray(u) - np.diag(np.diag(np.asarray(u)))) == 0:
            d = jnp.diag(u)
            if controls:  # controlled diagonal = diagonal on all wires
                d = jnp.concatenate([jnp.ones(((1 << len(controls)) - 1) << len(targets), u.dtype), d])
            return self._record(GateOp(_user_gate(name, 0, len(controls) + len(targets), True),
                                       controls + targets), (d,), where)
        return self._record(GateOp(_user_gate(name, len(controls), len(targets), False), controls + targets),
                            (u,), where)

    def prepare(self, state, *, normalize=False):
        """Start from ``state`` (shape ``(2**n,)``) instead of ``|0...0>``; only before any gate.

        A concrete ``state`` must have norm 1 (else a ``ValueError``), or pass ``normalize=True``
        to divide it by its norm; a traced state is normalised only when asked, never checked.
        """
        if self._program:
            raise ValueError("Circuit.prepare: the initial state can only be set before any gate is added")
        self._init = check_state(state, self.n_qubits, "Circuit.prepare", self.dtype, normalize)
        return self

    def measure(self, wire, clbit=None):
        """Record a terminal measurement of ``wire`` (into classical bit ``clbit``); no gate may follow on it."""
        (wire,) = check_wires((wire,), self.n_qubits, "Circuit.measure")
        self.measurements[wire] = wire if clbit is None else clbit
        return self

    def repeat(self, layer, params):
        """Apply ``layer(circuit, p)`` once per leading slice ``p`` of ``params``, as one `lax.scan`.

        The layer is traced once, so compile time does not grow with the number of
        layers. ``params`` is any pytree whose leaves share the leading axis L.
        """
        leaves = jax.tree.leaves(params)
        if not leaves:
            raise ValueError("Circuit.repeat: params must have at least one array leaf with a leading layer axis")
        sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in leaves}
        if len(sizes) != 1 or None in sizes:
            raise ValueError("Circuit.repeat: every leaf of params needs the same leading (layer) axis, got shapes "
                             f"{[jnp.shape(x) for x in leaves]}")
        (n_layers,) = sizes
        params = jax.tree.map(lambda x: jnp.asarray(x), params)
        op, consts = _simulate.record_layer(self, layer, params, n_layers)
        return self._record(op, (params, consts), "Circuit.repeat")

    def _sub(self):
        """An empty circuit with the same width and dtype (used to record one layer)."""
        sub = Circuit.__new__(Circuit)
        sub.n_qubits, sub.dtype, sub.real_dtype = self.n_qubits, self.dtype, self.real_dtype
        sub._init, sub._program, sub._params, sub.measurements = None, [], [], {}
        sub.max_fused_qubits, sub.backend = self.max_fused_qubits, self.backend
        return sub

    # -- reading ---------------------------------------------------------
    @property
    def program(self):
        """The recorded (static records, parameters) pair."""
        return tuple(self._program), tuple(self._params)

    @property
    def n_ops(self):
        return len(self._program)

    def state(self, diff="backprop"):
        """The final state, shape ``(2**n,)``, in the circuit's dtype."""
        return _simulate.final_state(self, _check_diff(diff, "Circuit.state", allow_shift=False))

    def probs(self, wires=None):
        """Probabilities of the basis states, shape ``(2**n,)``; with ``wires`` the marginal in that wire order."""
        p = jnp.abs(self.state()) ** 2
        if wires is None:
            return p
        wires = check_wires(np.atleast_1d(wires).tolist(), self.n_qubits, "Circuit.probs", distinct=_MARGINAL)
        t = p.reshape((2,) * self.n_qubits)
        others = tuple(w for w in range(self.n_qubits) if w not in wires)
        t = jnp.sum(t, axis=others)
        order = np.argsort(np.argsort(wires))  # axes left are in sorted-wire order
        return jnp.transpose(t, tuple(int(i) for i in order)).reshape(-1)

    def expectation(self, obs, diff="backprop"):
        """``<psi|H|psi>`` for a `PauliSum` (real scalar), or a list of them (shape ``(k,)``).

        ``H`` must be Hermitian: concrete coefficients that are not real once equal words
        are merged raise ``ValueError``; traced ones are not checked (the result is then
        ``<(H + H^dagger)/2>``, the real part).

        ``diff`` picks the gradient method: ``"backprop"`` (JAX autodiff), ``"adjoint"``
        (memory independent of depth) or ``"parameter-shift"``.
        """
        single = isinstance(obs, PauliSum)
        obs_list = [obs] if single else list(obs) if isinstance(obs, (list, tuple)) else None
        if not obs_list or not all(isinstance(o, PauliSum) for o in obs_list):
            raise TypeError("Circuit.expectation: obs must be a PauliSum (e.g. qsim.Z(0)) or a non-empty list "
                            f"of them, got {type(obs).__name__}")
        for k, o in enumerate(obs_list):
            check_hermitian(o, "Circuit.expectation", "obs" if single else f"obs[{k}]")
            if o.wires and o.wires[-1] >= self.n_qubits:
                raise ValueError(f"Circuit.expectation: observable acts on wire {o.wires[-1]}, out of range "
                                 f"for a {self.n_qubits}-qubit circuit (allowed 0..{self.n_qubits - 1})")
        vals = _simulate.expectations(self, obs_list, _check_diff(diff, "Circuit.expectation"))
        return vals[0] if single else vals

    def sample(self, key, shots=1000, wires=None):
        """``shots`` samples of the measured bits, int32 array ``(shots, len(wires))`` of 0/1."""
        if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)):
            raise TypeError(f"Circuit.sample: shots must be a positive int, got {shots!r} of type "
                            f"{type(shots).__name__}")
        if shots < 1:
            raise ValueError(f"Circuit.sample: shots must be a positive int, got {shots!r}")
        check_key(key, "Circuit.sample")
        wires = tuple(range(self.n_qubits)) if wires is None else \
            check_wires(np.atleast_1d(wires).tolist(), self.n_qubits, "Circuit.sample", distinct=_MARGINAL)
        p = self.probs(wires)
        return _simulate.sample_bits(key, p, int(shots), len(wires))

    def to_qasm(self) -> str:
        """OpenQASM 2 text of the circuit (qelib1 gates; user unitaries of 1-2 qubits decomposed).

        Raises:
          ValueError: if the circuit starts from a custom state (QASM has no way to say so) or
            holds a gate it cannot express.
        """
        if self._init is not None:
            raise ValueError("Circuit.to_qasm: the circuit starts from a custom state, which OpenQASM 2 "
                             "cannot express; build it from |0...0> to export it")
        from . import _export
        return _export.to_qasm(self)

    def draw(self, output="text", *, decimals=2, max_length=100):
        """A text diagram (``str``) or, with ``output="mpl"``, a matplotlib Figure."""
        from . import _export
        return _export.draw(self, output, decimals=decimals, max_length=max_length)

    def __repr__(self):
        return f"Circuit(n_qubits={self.n_qubits}, ops={len(self._program)}, dtype={self.dtype.name})"


def _check_fusion(k):
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"Circuit: max_fused_qubits must be an int in 0..6 or None, got {k!r} "
                        f"of type {type(k).__name__}")
    if not 0 <= k <= 6:
        raise ValueError(f"Circuit: max_fused_qubits must be an int in 0..6 or None, got {k!r}")
    return int(k)


def _check_diff(diff, where, allow_shift=True):
    allowed = _DIFF_METHODS if allow_shift else _DIFF_METHODS[:2]
    if diff not in allowed:
        raise ValueError(f"{where}: diff must be one of {allowed}, got {diff!r}")
    return diff
