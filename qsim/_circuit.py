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
from ._ir import ChannelOp, CondOp, DYNAMIC_OPS, GateOp, MeasureOp, RepeatOp, ResetOp
from ._validate import (check_dtype, check_key, check_matrix, check_memory, check_n_qubits, check_param,
                        check_shots, check_state, check_wires, is_concrete)

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
      mesh: a one-axis `jax.sharding.Mesh` of D = 2**g devices: the state is sharded over them
        (the top g wires index the device; see ``qsim._sharding``); every result equals the
        single-device one and the memory guard counts memory per device.

    Example:
      >>> c = Circuit(2).h(0).cnot(0, 1)
      >>> c.probs()   # [0.5, 0, 0, 0.5]
    """

    def __init__(self, n_qubits, state=None, *, normalize=False, dtype=None, max_fused_qubits=None,
                 backend="auto", mesh=None):
        self.n_qubits = n = check_n_qubits(n_qubits)
        from . import _sharding
        self.mesh = _sharding.check_mesh(mesh, n, "Circuit")
        self.backend = backends.resolve(backend, "Circuit")
        if dtype is None and state is not None and jnp.iscomplexobj(state):
            dtype = jnp.asarray(state).dtype
        self.dtype = check_dtype(dtype)
        self.real_dtype = jnp.finfo(self.dtype).dtype
        self.max_fused_qubits = _check_fusion(max_fused_qubits)
        if self.mesh is None:
            check_memory(n, self.dtype, 2, "Circuit")
        else:
            _sharding.check_memory(n, self.dtype, 2, "Circuit", self.mesh)
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
        self._program.append(op)
        self._params.append(params)
        self._lowered = None     # the lowered program kept by `_simulate._prepared` is stale now
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

    # -- dynamic circuits: measurement, reset, classical control ----------
    def measure(self, wire, clbit=None):
        """Measure ``wire`` in the computational basis into classical bit ``clbit`` (default: ``wire``).

        The state collapses. A circuit whose measurements are all terminal (nothing acts on a
        measured wire afterwards) is not dynamic: `state()` is then the state before measurement.
        """
        (wire,) = check_wires((wire,), self.n_qubits, "Circuit.measure")
        clbit = wire if clbit is None else _check_clbit(clbit, "Circuit.measure", "clbit")
        self.measurements[wire] = clbit
        return self._record(MeasureOp(wire, clbit), (), "Circuit.measure")

    def reset(self, wire):
        """Reset ``wire`` to ``|0>`` (measure it, flip it on outcome 1; the outcome is not kept)."""
        (wire,) = check_wires((wire,), self.n_qubits, "Circuit.reset")
        return self._record(ResetOp(wire), (), "Circuit.reset")

    def cond(self, clbits, value, fn):
        """Apply the gates that ``fn(c)`` adds to ``c`` only when the classical bits hold ``value``.

        ``value`` is compared with ``sum_i bit(clbits[i]) * 2**i`` (the first listed bit is the
        least significant, as OpenQASM's ``if(creg==k)``).
        """
        where = "Circuit.cond"
        clbits = tuple(_check_clbit(b, where, "clbits") for b in np.atleast_1d(clbits).tolist())
        if not clbits or len(set(clbits)) != len(clbits):
            raise ValueError(f"{where}: clbits must be a non-empty list of distinct classical bit indices, "
                             f"got {clbits}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 1 << len(clbits):
            raise ValueError(f"{where}: value must be an int in 0..{(1 << len(clbits)) - 1} for {len(clbits)} "
                             f"classical bit(s), got {value!r}")
        if not callable(fn):
            raise TypeError(f"{where}: fn must be a function fn(c) that adds gates to c, got {type(fn).__name__}")
        sub = self._sub()
        result = fn(sub)
        if result is not None and result is not sub:
            raise TypeError(f"{where}: fn(c) must add gates to c and return None or c, got {type(result).__name__}")
        bad = [type(op).__name__ for op in sub._program if not isinstance(op, GateOp)]
        if bad:
            raise ValueError(f"{where}: only gates may be classically controlled, got {bad[0]}")
        return self._record(CondOp(clbits, int(value), tuple(sub._program)), tuple(sub._params), where)

    @property
    def n_clbits(self):
        """One more than the largest classical bit a measurement or condition uses (0 if none); a
        circuit read from OpenQASM has at least the bits its ``creg``s declare (as Qiskit counts them)."""
        bits = [op.clbit for op in self._program if isinstance(op, MeasureOp)]
        bits += [b for op in self._program if isinstance(op, CondOp) for b in op.clbits]
        declared = sum(getattr(self, "_cregs", {}).values())
        return max(max(bits) + 1 if bits else 0, declared)

    @property
    def is_dynamic(self):
        """True when the circuit resets, conditions on bits, or acts on a wire after measuring it."""
        kept = getattr(self, "_dynamic_kept", None)   # (ops seen, answer): reads of a long circuit
        if kept is not None and kept[0] == len(self._program):
            return kept[1]
        answer = _is_dynamic(self._program)
        self._dynamic_kept = (len(self._program), answer)
        return answer

    @property
    def is_noisy(self):
        """True when the circuit holds a noise channel (or a noise model's readout error)."""
        return getattr(self, "readout_error", None) is not None or any(
            isinstance(op, ChannelOp) or (isinstance(op, RepeatOp) and any(isinstance(b, ChannelOp) for b in op.body))
            for op in self._program)

    # -- noise channels (Kraus conventions of PennyLane's channels) ---------
    def _channel(self, name, wires, params):
        from . import _channels
        wires = check_wires(wires, self.n_qubits, f"Circuit.{name}")
        op, params = _channels.validate(name, wires, params, self.real_dtype, self.dtype)
        return self._record(op, params, f"Circuit.{name}")

    def depolarizing(self, wire, p):
        """Kraus ``sqrt(1-p) I, sqrt(p/3) X, sqrt(p/3) Y, sqrt(p/3) Z``."""
        return self._channel("depolarizing", (wire,), (p,))

    def amplitude_damping(self, wire, gamma):
        """Kraus ``[[1,0],[0,sqrt(1-g)]], [[0,sqrt(g)],[0,0]]``."""
        return self._channel("amplitude_damping", (wire,), (gamma,))

    def phase_damping(self, wire, gamma):
        """Kraus ``[[1,0],[0,sqrt(1-g)]], [[0,0],[0,sqrt(g)]]``."""
        return self._channel("phase_damping", (wire,), (gamma,))

    def bit_flip(self, wire, p):
        """Kraus ``sqrt(1-p) I, sqrt(p) X``."""
        return self._channel("bit_flip", (wire,), (p,))

    def phase_flip(self, wire, p):
        """Kraus ``sqrt(1-p) I, sqrt(p) Z``."""
        return self._channel("phase_flip", (wire,), (p,))

    def pauli_channel(self, wire, px, py, pz):
        """Kraus ``sqrt(1-px-py-pz) I, sqrt(px) X, sqrt(py) Y, sqrt(pz) Z``."""
        return self._channel("pauli_channel", (wire,), (px, py, pz))

    def two_qubit_depolarizing(self, wire0, wire1, p):
        """Kraus ``sqrt(1-p) II`` and ``sqrt(p/15) P`` for the 15 other two-qubit Pauli words."""
        return self._channel("two_qubit_depolarizing", (wire0, wire1), (p,))

    def thermal_relaxation(self, wire, t1, t2, time):
        """T1/T2 relaxation for ``time`` (as Qiskit Aer's ``thermal_relaxation_error``; ``t2 <= 2 t1``):
        ``rho_11 -> e^{-time/t1} rho_11``, ``rho_01 -> e^{-time/t2} rho_01``."""
        return self._channel("thermal_relaxation", (wire,), (t1, t2, time))

    def kraus(self, ops, wires):
        """Any CPTP map given by its Kraus operators ``ops`` (shape ``(m, 2**k, 2**k)``) on ``wires``."""
        return self._channel("kraus", tuple(np.atleast_1d(wires).tolist()), (ops,))

    def with_noise(self, model):
        """A new Circuit: ``model``'s channels inserted after every matching gate (see `qsim.NoiseModel`)."""
        from ._noise_model import NoiseModel
        if not isinstance(model, NoiseModel):
            raise TypeError(f"Circuit.with_noise: model must be a qsim.NoiseModel, got {type(model).__name__}")
        return model.apply(self)

    def density_matrix(self, diff="backprop"):
        """The final density matrix, shape ``(2**n, 2**n)`` (exact; noise and measurements as channels)."""
        from . import _density
        return _density.density_matrix(self, _check_diff(diff, "Circuit.density_matrix", allow_shift=False))

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
        sub.mesh = getattr(self, "mesh", None)
        sub.max_fused_qubits, sub.backend = self.max_fused_qubits, self.backend
        return sub

    # -- reading ---------------------------------------------------------
    @property
    def program(self):
        """The recorded (static records, parameters) pair (terminal measurements dropped when not dynamic)."""
        if self.is_dynamic or self.is_noisy:
            return tuple(self._program), tuple(self._params)
        pairs = [(op, p) for op, p in zip(self._program, self._params) if not isinstance(op, MeasureOp)]
        return tuple(op for op, _ in pairs), tuple(p for _, p in pairs)

    @property
    def n_ops(self):
        return len(self._program)

    def state(self, diff="backprop", *, key=None, method=None):
        """The final state, shape ``(2**n,)``, in the circuit's dtype.

        A dynamic circuit (mid-circuit measurement, reset, classical control) or a noisy one
        with ``method="trajectories"`` needs a ``key``: the state is then one trajectory's.
        """
        diff = _check_diff(diff, "Circuit.state", allow_shift=False)
        if self.mesh is not None:
            from . import _sharding
            return _sharding.final_state(self, diff)
        if self.is_noisy:
            from . import _noise
            return _noise.state(self, diff, key=key, method=method)
        if self.is_dynamic:
            from . import _dynamic
            return _dynamic.state(self, diff, key=key)
        return _simulate.final_state(self, diff)

    def probs(self, wires=None, *, shots=None, key=None, method=None, trajectories=None):
        """Probabilities of the basis states, shape ``(2**n,)``; with ``wires`` the marginal in that wire order.

        Exact (outcome-averaged for a dynamic circuit, noise as channels for a noisy one), or with
        ``shots=`` and ``key=`` the empirical frequencies of that many samples.
        """
        if wires is not None:
            wires = check_wires(np.atleast_1d(wires).tolist(), self.n_qubits, "Circuit.probs", distinct=_MARGINAL)
        if self.mesh is not None:
            from . import _sharding
            return _sharding.probs(self, wires, shots=shots)
        if self.is_noisy:
            from . import _noise
            return _noise.probs(self, wires, shots=shots, key=key, method=method, trajectories=trajectories)
        if self.is_dynamic or shots is not None or key is not None:
            from . import _dynamic
            return _dynamic.probs(self, wires, shots=shots, key=key)
        return self._marginal(jnp.abs(self.state()) ** 2, wires)

    def _marginal(self, p, wires):
        """The marginal of the full distribution ``p`` on ``wires`` (checked), in that wire order."""
        if wires is None:
            return p
        t = p.reshape((2,) * self.n_qubits)
        others = tuple(w for w in range(self.n_qubits) if w not in wires)
        t = jnp.sum(t, axis=others)
        order = np.argsort(np.argsort(wires))  # axes left are in sorted-wire order
        return jnp.transpose(t, tuple(int(i) for i in order)).reshape(-1)

    def expectation(self, obs, diff="backprop", *, shots=None, key=None, method=None, trajectories=None):
        """``<psi|H|psi>`` for a `PauliSum` (real scalar), or a list of them (shape ``(k,)``).

        ``H`` must be Hermitian: concrete coefficients that are not real once equal words
        are merged raise ``ValueError``; traced ones are not checked (the result is then
        ``<(H + H^dagger)/2>``, the real part).

        ``diff`` picks the gradient method: ``"backprop"`` (JAX autodiff), ``"adjoint"``
        (memory independent of depth) or ``"parameter-shift"``.

        With ``shots=`` and ``key=``: a finite-shot estimate (each group of qubit-wise commuting
        Pauli words measured in its own basis with ``shots`` shots); differentiate it with
        ``diff="parameter-shift"``. A dynamic circuit's exact value averages over measurement
        outcomes; a noisy one takes ``method="density_matrix"`` (exact, default) or
        ``method="trajectories"`` (with ``key=`` and ``trajectories=``).
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
        diff = _check_diff(diff, "Circuit.expectation")
        if self.mesh is not None:
            from . import _sharding
            vals = _sharding.expectations(self, obs_list, diff, shots=shots)
        elif self.is_noisy:
            from . import _noise
            vals = _noise.expectations(self, obs_list, diff, shots=shots, key=key, method=method,
                                       trajectories=trajectories)
        elif (self.is_dynamic or shots is not None or key is not None
              or _reads_measured_coherence(obs_list, self.measurements)):
            from . import _dynamic   # a measured wire is dephased: X/Y on it read 0, as a channel gives
            vals = _dynamic.expectations(self, obs_list, diff, shots=shots, key=key)
        else:
            vals = _simulate.expectations(self, obs_list, diff)
        return vals[0] if single else vals

    def sample(self, key, shots=1000, wires=None, *, method=None):
        """``shots`` samples of the final wires' bits, int32 array ``(shots, len(wires))`` of 0/1."""
        shots = check_shots(shots, "Circuit.sample")
        check_key(key, "Circuit.sample")
        wires = tuple(range(self.n_qubits)) if wires is None else \
            check_wires(np.atleast_1d(wires).tolist(), self.n_qubits, "Circuit.sample", distinct=_MARGINAL)
        if self.mesh is not None:
            from . import _sharding
            return _sharding.sample(self, key, shots, wires)
        if self.is_noisy:
            from . import _noise
            return _noise.sample(self, key, shots, wires, method=method)
        if self.is_dynamic:
            from . import _dynamic
            return _dynamic.sample(self, key, shots, wires)
        p = self.probs(wires)
        return _simulate.sample_bits(key, p, int(shots), len(wires))

    def run(self, key, shots=1000, *, method=None):
        """The classical bits of each of ``shots`` runs: int32 array ``(shots, n_clbits)``."""
        shots = check_shots(shots, "Circuit.run")
        check_key(key, "Circuit.run")
        if self.is_noisy:
            from . import _noise
            return _noise.run(self, key, shots, method=method)
        from . import _dynamic
        return _dynamic.run(self, key, shots)

    def counts(self, key, shots=1000, *, method=None):
        """``{bitstring: count}`` of `run`; classical bit 0 is the FIRST character (Qiskit prints it last)."""
        bits = np.asarray(self.run(key, shots, method=method))
        if bits.shape[1] == 0:
            return {"": int(bits.shape[0])}
        keys, n = np.unique(bits, axis=0, return_counts=True)
        return {"".join(str(int(b)) for b in row): int(c) for row, c in zip(keys, n)}

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


def _reads_measured_coherence(observables, measured):
    """Whether a word has X or Y on a (terminally) measured wire."""
    return bool(measured) and any(p != "Z" and w in measured for o in observables for word in o.words
                                  for w, p in word)


def _is_dynamic(program):
    measured = set()
    for op in program:
        if isinstance(op, (ResetOp, CondOp)):
            return True
        if isinstance(op, MeasureOp):
            measured.add(op.wire)
        elif measured and (isinstance(op, RepeatOp) or not measured.isdisjoint(op.wires)):
            return True
    return False


def _check_clbit(b, where, name):
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 0:
        raise ValueError(f"{where}: {name} must hold non-negative int classical bit indices, got {b!r}")
    return int(b)


def _check_diff(diff, where, allow_shift=True):
    allowed = _DIFF_METHODS if allow_shift else _DIFF_METHODS[:2]
    if diff not in allowed:
        raise ValueError(f"{where}: diff must be one of {allowed}, got {diff!r}")
    return diff
