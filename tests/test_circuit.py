"""`Circuit` end to end: states vs a dense numpy reference built gate by gate, probabilities,
sampling, initial states, JAX transforms, fusion, and PennyLane / Qiskit cross-checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from reference import (REFERENCE_GATES, TOL, controlled, gate, marginal_probs, operator, random_state,
                       random_unitary, state_from_qiskit_order)

NAMED = tuple(sorted(REFERENCE_GATES))   # every table gate and the aliases cx, ccx, u1


# --- random circuits: a spec list applied both to qsim and to the dense reference -----------
def random_spec(rng, n, n_gates):
    """``n_gates`` random ops: named gates of every kind, user unitaries and controlled unitaries."""
    spec = []
    for _ in range(n_gates):
        r = rng.random()
        if r < 0.1:
            k = int(rng.integers(1, min(3, n) + 1))
            spec.append(("unitary", tuple(rng.permutation(n)[:k].tolist()), random_unitary(rng, k)))
        elif r < 0.2 and n >= 2:
            wires = rng.permutation(n)[:int(rng.integers(2, min(4, n) + 1))].tolist()
            n_ctrl = int(rng.integers(1, len(wires)))
            spec.append(("controlled", (tuple(wires[:n_ctrl]), tuple(wires[n_ctrl:])),
                         random_unitary(rng, len(wires) - n_ctrl)))
        else:
            name = NAMED[rng.integers(len(NAMED))]
            n_wires, n_params, _ = REFERENCE_GATES[name]
            if n_wires > n:
                name, n_wires, n_params = "h", 1, 0
            spec.append((name, tuple(rng.permutation(n)[:n_wires].tolist()),
                         tuple(rng.uniform(-2 * np.pi, 2 * np.pi, n_params))))
    return spec


def apply_spec(c, spec, dtype=None):
    for name, wires, p in spec:
        if name == "unitary":
            c.unitary(p if dtype is None else p.astype(dtype), wires)
        elif name == "controlled":
            c.controlled(p if dtype is None else p.astype(dtype), *wires)
        else:
            getattr(c, name)(*wires, *p)
    return c


def reference_state(n, spec, psi=None):
    """The dense reference: each op's closed-form matrix embedded with np.kron, applied in turn."""
    psi = np.eye(1 << n, dtype=complex)[0] if psi is None else np.asarray(psi, complex)
    for name, wires, p in spec:
        if name == "unitary":
            psi = operator(n, p, wires) @ psi
        elif name == "controlled":
            psi = operator(n, controlled(p, len(wires[0])), wires[0] + wires[1]) @ psi
        else:
            psi = operator(n, gate(name, *p), wires) @ psi
    return psi


def every_gate_spec(rng, n):
    """Every named gate (and alias) once, plus two user unitaries and two controlled unitaries, shuffled."""
    spec = [(name, tuple(rng.permutation(n)[:REFERENCE_GATES[name][0]].tolist()),
             tuple(rng.uniform(-2 * np.pi, 2 * np.pi, REFERENCE_GATES[name][1]))) for name in NAMED]
    spec += [("unitary", (3, 1), random_unitary(rng, 2)), ("unitary", (4, 0, 2), random_unitary(rng, 3)),
             ("controlled", ((2,), (0,)), random_unitary(rng, 1)),
             ("controlled", ((4, 1), (3, 0)), random_unitary(rng, 2))]
    return [spec[i] for i in rng.permutation(len(spec))]


@pytest.fixture(scope="module")
def circuit5():
    """Every op kind on 5 qubits: its spec, qsim state (complex128, default fusion), dense reference."""
    spec = every_gate_spec(np.random.default_rng(2024), 5)
    state = np.asarray(apply_spec(qsim.Circuit(5, dtype=jnp.complex128), spec).state())
    return spec, state, reference_state(5, spec)


# --- states vs the dense reference ---------------------------------------------------------
@pytest.mark.slow   # ~20 s: the eager fusion and lowering of 300 concrete ops dominates (see report)
def test_long_random_circuit_complex128_end_to_end():
    """300 ops of every kind on 6 qubits (long enough for the lowered scan path) at 1e-10, norm kept."""
    rng = np.random.default_rng(300)
    spec = random_spec(rng, 6, 300)
    got = apply_spec(qsim.Circuit(6, dtype=jnp.complex128), spec).state()
    assert got.dtype == jnp.complex128 and got.shape == (64,)
    ref = reference_state(6, spec)
    np.testing.assert_allclose(got, ref, atol=TOL[np.complex128])
    assert abs(np.linalg.norm(np.asarray(got)) - 1) < TOL[np.complex128]


@pytest.mark.slow
def test_long_circuit_traced_parameters():
    """A 60-op circuit built inside jit (traced angles: fused and lowered inside the program)."""
    rng = np.random.default_rng(60)
    spec = random_spec(rng, 4, 60)

    def run(flat):
        it = iter(flat)
        traced = [(name, w, p if name in ("unitary", "controlled") else tuple(next(it) for _ in p))
                  for name, w, p in spec]
        return apply_spec(qsim.Circuit(4, dtype=jnp.complex128), traced).state()

    flat = jnp.asarray([x for name, _, p in spec if name not in ("unitary", "controlled") for x in p])
    np.testing.assert_allclose(jax.jit(run)(flat), reference_state(4, spec), atol=TOL[np.complex128])


def test_random_circuit_matches_reference(circuit5):
    spec, state, ref = circuit5
    np.testing.assert_allclose(state, ref, atol=TOL[np.complex128])
    assert abs(np.linalg.norm(state) - 1) < TOL[np.complex128]


def test_fusion_off_gives_identical_state(circuit5):
    spec, state, _ = circuit5
    got = apply_spec(qsim.Circuit(5, dtype=jnp.complex128, max_fused_qubits=0), spec).state()
    np.testing.assert_allclose(got, state, atol=TOL[np.complex128])


def test_empty_circuit_is_zero_state():
    for n in (1, 3):
        psi = qsim.Circuit(n).state()
        assert psi.dtype == jnp.complex64
        np.testing.assert_array_equal(psi, np.eye(1 << n)[0])


# --- probabilities -------------------------------------------------------------------------
@pytest.mark.parametrize("wires", [None, (2,), (0,), (3, 0), (0, 3), (1, 3, 0), (3, 2, 1, 0), (0, 1, 2, 3)])
def test_probs_and_marginals(rng, wires):
    n = 4
    psi = random_state(rng, n)
    c = qsim.Circuit(n, state=psi, dtype=jnp.complex128).ry(1, 0.3).cnot(1, 2)
    full = reference_state(n, [("ry", (1,), (0.3,)), ("cnot", (1, 2), ())], psi)
    p = c.probs() if wires is None else c.probs(wires=wires)
    ref = np.abs(full) ** 2 if wires is None else marginal_probs(full, n, wires)
    assert p.dtype == jnp.float64 and p.shape == ref.shape
    np.testing.assert_allclose(p, ref, atol=TOL[np.complex128])


def test_probs_complex64_dtype_and_int_wire():
    c = qsim.Circuit(2).h(0)
    p = c.probs(wires=1)
    assert p.dtype == jnp.float32
    np.testing.assert_allclose(p, [1, 0], atol=TOL[np.complex64])
    np.testing.assert_allclose(c.probs(wires=[0]), [0.5, 0.5], atol=TOL[np.complex64])


# --- sampling ------------------------------------------------------------------------------
def _frequency_check(bits, p):
    shots, m = bits.shape
    idx = bits @ (1 << np.arange(m - 1, -1, -1))          # bit columns are wires, first = MSB
    freq = np.bincount(idx, minlength=1 << m) / shots
    sigma = np.sqrt(p * (1 - p) / shots)
    assert np.all(np.abs(freq - p) <= 5 * sigma + 1e-12), (freq, p)


def test_sample_shape_dtype_frequencies_and_marginals(rng, key):
    n, shots = 4, 10000
    c = qsim.Circuit(n).unitary(random_unitary(rng, 3).astype(np.complex64), (2, 0, 1)).x(3)
    bits = np.asarray(c.sample(key, shots=shots))
    assert bits.shape == (shots, n) and np.issubdtype(bits.dtype, np.integer)
    assert set(np.unique(bits)) <= {0, 1}
    _frequency_check(bits, np.asarray(c.probs(), np.float64))
    np.testing.assert_array_equal(bits[:, 3], 1)                                # x(3) on |0>: always 1
    np.testing.assert_array_equal(bits, c.sample(key, shots=shots))             # same key, same bits
    assert not np.array_equal(bits, c.sample(jax.random.key(1), shots=shots))
    marg = np.asarray(c.sample(key, shots=shots, wires=(2, 1)))
    assert marg.shape == (shots, 2)
    _frequency_check(marg, np.asarray(c.probs(wires=(2, 1)), np.float64))


# --- initial states ------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["constructor", "prepare"])
def test_initial_state(rng, how):
    n = 3
    psi = random_state(rng, n)
    c = qsim.Circuit(n, state=psi, dtype=jnp.complex128) if how == "constructor" else \
        qsim.Circuit(n, dtype=jnp.complex128).prepare(psi)
    c.h(2).cnot(2, 0).rz(1, 0.7)
    spec = [("h", (2,), ()), ("cnot", (2, 0), ()), ("rz", (1,), (0.7,))]
    np.testing.assert_allclose(c.state(), reference_state(n, spec, psi), atol=TOL[np.complex128])


def test_initial_state_dtype_follows_state():
    psi = np.array([0, 1, 0, 0])
    assert qsim.Circuit(2, state=psi.astype(np.complex64)).state().dtype == jnp.complex64
    assert qsim.Circuit(2, state=psi.astype(np.complex128)).state().dtype == jnp.complex128
    assert qsim.Circuit(2, state=psi.astype(np.complex128), dtype=jnp.complex64).state().dtype == jnp.complex64
    np.testing.assert_array_equal(qsim.Circuit(2, state=psi).state(), psi)    # real input: default complex64


# --- JAX transforms ------------------------------------------------------------------------
OBS = 0.6 * qsim.Z(0) @ qsim.Z(1) - 0.4 * qsim.X(2) + 0.3 * qsim.Y(1) + 0.1


def model(w, x, dtype=jnp.complex128):
    """A 3-qubit circuit from weights w (6,) and inputs x (3,), with shared and derived angles."""
    c = qsim.Circuit(3, dtype=dtype)
    for q in range(3):
        c.ry(q, x[q])
    c.rx(0, w[0]).crz(0, 1, w[1]).u3(2, w[2], w[3], w[4]).rzz(1, 2, w[5] * x[0]).cnot(2, 0).ry(1, w[0])
    return c


def reference_model(w, x):
    w, x = np.asarray(w, float), np.asarray(x, float)
    spec = [("ry", (q,), (x[q],)) for q in range(3)]
    spec += [("rx", (0,), (w[0],)), ("crz", (0, 1), (w[1],)), ("u3", (2,), tuple(w[2:5])),
             ("rzz", (1, 2), (w[5] * x[0],)), ("cnot", (2, 0), ()), ("ry", (1,), (w[0],))]
    return reference_state(3, spec)


def obs_dense():
    from reference import pauli_sum_dense
    return pauli_sum_dense(3, OBS.words, OBS.coeffs)


def energy(w, x):
    return model(w, x).expectation(OBS)


ENERGY = jax.jit(energy)
GRAD = jax.jit(jax.grad(energy, (0, 1)))


def central_fd(f, v, eps=1e-6):
    v = np.asarray(v, np.float64)
    out = []
    for i in range(v.size):
        e = np.zeros_like(v)
        e[i] = eps
        out.append((f(v + e) - f(v - e)) / (2 * eps))
    return np.stack(out, axis=-1)


@pytest.fixture(scope="module")
def wx():
    rng = np.random.default_rng(5)
    return rng.uniform(-np.pi, np.pi, 6), rng.uniform(-1, 1, 3)


def test_expectation_state_probs_eager_and_jit(wx):
    w, x = wx
    psi = reference_model(w, x)
    ref = np.real(psi.conj() @ obs_dense() @ psi)
    e = energy(w, x)
    assert e.shape == () and e.dtype == jnp.float64
    np.testing.assert_allclose(e, ref, atol=TOL[np.complex128])
    e, state, probs = jax.jit(lambda w, x: (energy(w, x), model(w, x).state(), model(w, x).probs()))(w, x)
    np.testing.assert_allclose(e, ref, atol=TOL[np.complex128])
    np.testing.assert_allclose(state, psi, atol=TOL[np.complex128])
    np.testing.assert_allclose(probs, np.abs(psi) ** 2, atol=TOL[np.complex128])


def test_jit_traces_once(wx):
    w, x = wx
    traces = []

    def f(w, x):
        traces.append(1)
        return energy(w, x)

    fj = jax.jit(f)
    for k in range(3):
        jax.block_until_ready(fj(w + k, x))
    assert len(traces) == 1


def test_vmap_over_parameters_and_inputs(wx, rng):
    w, x = wx
    ws = rng.uniform(-np.pi, np.pi, (4, 6))
    xs = rng.uniform(-1, 1, (4, 3))
    got_w, got_x, got_s = jax.jit(lambda w, x, ws, xs: (
        jax.vmap(energy, in_axes=(0, None))(ws, x),
        jax.vmap(energy, in_axes=(None, 0))(w, xs),
        jax.vmap(lambda w, x: model(w, x).state())(ws, xs)))(w, x, ws, xs)
    assert got_w.shape == (4,) and got_x.shape == (4,) and got_s.shape == (4, 8)
    for i in range(4):
        np.testing.assert_allclose(got_w[i], ENERGY(ws[i], x), atol=TOL[np.complex128])
        np.testing.assert_allclose(got_x[i], ENERGY(w, xs[i]), atol=TOL[np.complex128])
        np.testing.assert_allclose(got_s[i], reference_model(ws[i], xs[i]), atol=TOL[np.complex128])


def test_vmap_over_initial_states(rng):
    batch = np.stack([random_state(rng, 3) for _ in range(4)])
    f = jax.vmap(lambda psi: qsim.Circuit(3, state=psi).h(1).cswap(1, 0, 2).t(0).state())
    got = f(jnp.asarray(batch))
    spec = [("h", (1,), ()), ("cswap", (1, 0, 2), ()), ("t", (0,), ())]
    for i in range(4):
        np.testing.assert_allclose(got[i], reference_state(3, spec, batch[i]), atol=TOL[np.complex128])


def test_grad_vs_finite_differences(wx):
    """d<H>/dw and d<H>/dx against central differences, float64, step 1e-6."""
    w, x = wx
    gw, gx = GRAD(w, x)
    np.testing.assert_allclose(gw, central_fd(lambda v: float(ENERGY(v, x)), w), atol=1e-7)
    np.testing.assert_allclose(gx, central_fd(lambda v: float(ENERGY(w, v)), x), atol=1e-7)


def test_grad_of_state_and_probs(wx):
    w, x = wx

    def f(w):
        psi = model(w, x).state()
        return jnp.real(psi[5]) + jnp.imag(psi[2]) + model(w, x).probs(wires=(2, 0))[1]

    fj = jax.jit(f)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(jnp.asarray(w)), central_fd(lambda v: float(fj(v)), w),
                               atol=1e-7)


def test_transform_compositions(wx, rng):
    """jit(vmap(value_and_grad)) over inputs agrees with the plain value and gradient per input."""
    w, x = jnp.asarray(wx[0]), wx[1]
    xs = jnp.asarray(rng.uniform(-1, 1, (3, 3)))
    v, g = jax.jit(jax.vmap(jax.value_and_grad(energy), in_axes=(None, 0)))(w, xs)
    assert v.shape == (3,) and g.shape == (3, 6)
    for i in range(3):
        np.testing.assert_allclose(g[i], GRAD(w, xs[i])[0], atol=1e-10)
        np.testing.assert_allclose(v[i], ENERGY(w, xs[i]), atol=1e-10)


def test_complex64_model_close_to_complex128(wx):
    w, x = wx
    a = model(w, x, jnp.complex64).expectation(OBS)
    assert a.dtype == jnp.float32
    np.testing.assert_allclose(a, ENERGY(w, x), atol=TOL[np.complex64])


# --- cross-checks with other simulators ----------------------------------------------------
_PL = {"i": "Identity", "x": "PauliX", "y": "PauliY", "z": "PauliZ", "h": "Hadamard", "s": "S", "t": "T",
       "sx": "SX", "rx": "RX", "ry": "RY", "rz": "RZ", "phase": "PhaseShift", "u1": "PhaseShift",
       "u2": "U2", "u3": "U3", "cnot": "CNOT", "cx": "CNOT", "cy": "CY", "cz": "CZ", "swap": "SWAP",
       "iswap": "ISWAP", "crx": "CRX", "cry": "CRY", "crz": "CRZ", "cphase": "ControlledPhaseShift",
       "rxx": "IsingXX", "ryy": "IsingYY", "rzz": "IsingZZ", "toffoli": "Toffoli", "ccx": "Toffoli",
       "cswap": "CSWAP"}


def test_against_pennylane(circuit5):
    pennylane = pytest.importorskip("pennylane")     # never `as qml`: that is our package's name
    spec, state, _ = circuit5
    dev = pennylane.device("default.qubit", wires=5)

    @pennylane.qnode(dev)
    def run():
        for name, wires, p in spec:
            if name == "unitary":
                pennylane.QubitUnitary(p, wires=list(wires))
            elif name == "controlled":
                pennylane.ctrl(pennylane.QubitUnitary(p, wires=list(wires[1])), control=list(wires[0]))
            elif name in ("sdg", "tdg"):
                pennylane.adjoint(getattr(pennylane, name[0].upper()))(wires=list(wires))
            else:
                getattr(pennylane, _PL[name])(*p, wires=list(wires))
        return pennylane.state()

    np.testing.assert_allclose(state, np.asarray(run()), atol=1e-10)


def test_against_qiskit(circuit5):
    pytest.importorskip("qiskit")
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import UnitaryGate
    from qiskit.quantum_info import Statevector
    spec, state, _ = circuit5
    qc = QuantumCircuit(5)
    renamed = {"i": "id", "phase": "p", "u1": "p", "cnot": "cx", "cphase": "cp", "toffoli": "ccx"}
    for name, wires, p in spec:
        if name == "unitary":                   # Qiskit: the first qubit listed is U's least significant bit
            qc.unitary(p, list(wires)[::-1])
        elif name == "controlled":
            qc.append(UnitaryGate(p).control(len(wires[0])), list(wires[0]) + list(wires[1])[::-1])
        elif name == "u3":
            qc.u(*p, *wires)
        elif name == "u2":
            qc.u(np.pi / 2, *p, *wires)
        else:
            getattr(qc, renamed.get(name, name))(*p, *wires)
    ref = state_from_qiskit_order(Statevector(qc).data, 5)
    np.testing.assert_allclose(state, ref, atol=1e-10)


# --- the SPEC quick start ------------------------------------------------------------------
def test_spec_quick_start_ghz_20():
    n = 20
    c = qsim.Circuit(n).h(0)
    for q in range(n - 1):
        c.cnot(q, q + 1)
    p = c.probs()
    assert p.shape == (1 << n,)
    np.testing.assert_allclose([p[0], p[-1]], [0.5, 0.5], atol=TOL[np.complex64])
    assert float(jnp.sum(p[1:-1])) < TOL[np.complex64]
    np.testing.assert_allclose(c.probs(wires=(0,)), [0.5, 0.5], atol=TOL[np.complex64])
    np.testing.assert_allclose(c.probs(wires=(n - 1, 0)), [0.5, 0, 0, 0.5], atol=TOL[np.complex64])


def test_spec_quick_start_example():
    c = qsim.Circuit(3)
    assert c.h(0).cnot(0, 1).rx(2, 0.3) is c
    spec = [("h", (0,), ()), ("cnot", (0, 1), ()), ("rx", (2,), (0.3,))]
    psi = reference_state(3, spec)
    np.testing.assert_allclose(c.state(), psi, atol=TOL[np.complex64])
    np.testing.assert_allclose(c.probs(), np.abs(psi) ** 2, atol=TOL[np.complex64])


def test_terminal_measure_keeps_state_and_records_bits():
    c = qsim.Circuit(2).h(0).cnot(0, 1).measure(0).measure(1, 0)
    assert c.measurements == {0: 0, 1: 0}
    np.testing.assert_allclose(c.state(), np.array([1, 0, 0, 1]) / np.sqrt(2), atol=TOL[np.complex64])
