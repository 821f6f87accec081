"""Dynamic circuits: mid-circuit measurement, reset and classical control, against independent references.

References: a numpy enumeration of every measurement branch with projectors on dense states
(`dynamic_reference.branches`), Qiskit's DensityMatrix with measurement written as a Kraus
channel into a classical-bit qubit, and Qiskit Aer (statevector method) for outcome
distributions. Sampled distributions are compared with chi-square tests at significance
``ALPHA`` (fixed seeds, so each comparison is deterministic); the total-variation distance is
also bounded by ``tvd_bound(shots, outcomes)``, its expected size for that many shots times 5.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dynamic_reference import (aer_counts, apply_spec, averaged_probs, averaged_rho, branches, chi2_goodness,
                               chi2_two_sample, clbit_distribution, counts_of, qiskit_circuit, random_spec, tvd)
from reference import TOL, gate, operator, pauli_sum_dense

import qsim
from qsim import _deferred, _dynamic, _dynscan
from qsim.backends import native_cpu

BACKENDS = ["xla"] + (["native"] if native_cpu.available() else [])
C128 = jnp.complex128
ALPHA = 1e-3
CORPUS = Path(__file__).parent / "data" / "qasmbench"
HAVE_AER = __import__("importlib.util").util.find_spec("qiskit_aer") is not None
needs_aer = pytest.mark.skipif(not HAVE_AER, reason="needs qiskit-aer")


def tvd_bound(shots, outcomes):
    """5x the expected TVD of an empirical distribution of ``shots`` samples over ``outcomes`` values."""
    return 5 * 0.5 * math.sqrt(outcomes / shots)


def dynamic_spec(seed, n=3, n_clbits=3, length=14):
    rng = np.random.default_rng(seed)
    while True:
        spec = random_spec(rng, n, n_clbits, length)
        if apply_spec(qsim.Circuit(n), spec).is_dynamic:
            return spec


def random_observable(rng, n, terms=4):
    words = [tuple((w, "XYZ"[rng.integers(3)]) for w in sorted(rng.choice(n, rng.integers(1, n + 1), replace=False)))
             for _ in range(terms)]
    coeffs = rng.normal(size=terms)
    obs = sum((float(c) * _word(w) for w, c in zip(words, coeffs)), qsim.I(0) * 0.0)
    return obs, words, coeffs


def _word(w):
    out = None
    for q, p in w:
        term = getattr(qsim, p)(int(q))
        out = term if out is None else out @ term
    return out


# --- exact results: deferred measurement ------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_exact_results_match_branch_enumeration(seed, backend):
    n, n_clbits = 3, 3
    spec = dynamic_spec(seed)
    c = apply_spec(qsim.Circuit(n, dtype=C128, backend=backend), spec)
    brs = branches(spec, n, n_clbits)
    np.testing.assert_allclose(np.asarray(c.probs()), averaged_probs(brs), atol=TOL[np.complex128])
    np.testing.assert_allclose(np.asarray(c.probs(wires=(2, 0))),
                               averaged_probs(brs).reshape(2, 2, 2).sum(1).T.reshape(-1), atol=TOL[np.complex128])
    obs, words, coeffs = random_observable(np.random.default_rng(seed), n)
    rho = averaged_rho(brs)
    want = np.trace(rho @ pauli_sum_dense(n, words, coeffs)).real
    assert abs(float(c.expectation(obs)) - want) < TOL[np.complex128]


def _qiskit_density_reference(spec, n, n_clbits):
    """Qiskit DensityMatrix on n system + n_clbits classical-bit qubits: a measurement is the Kraus
    channel {|b><b| (x) |b><c'|} writing bit b over the classical qubit, a reset the channel
    {|0><0|, |0><1|}, a condition a gate controlled on the classical qubits. Returns the system's
    reduced density matrix in wire order (wire 0 = most significant)."""
    from qiskit.circuit.library import UnitaryGate
    from qiskit.quantum_info import DensityMatrix, Kraus, Operator, partial_trace
    total = n + n_clbits
    rho = DensityMatrix.from_label("0" * total)
    q = lambda w: w                            # system wire w -> Qiskit qubit w
    cq = lambda c: n + c                       # classical bit c -> Qiskit qubit n + c

    def unitary(u, wires):                     # our matrix (wires[0] = MSB) on Qiskit qubits
        return Operator(UnitaryGate(u)), [q(w) for w in reversed(wires)]

    for entry in spec:
        kind = entry[0]
        if kind == "gate":
            _, name, wires, params = entry
            op, qargs = unitary(gate(name, *params), wires)
            rho = rho.evolve(op, qargs)
        elif kind == "measure":
            _, w, c = entry
            ops = []
            for b in (0, 1):
                for old in (0, 1):
                    k = np.zeros((4, 4))
                    k[2 * b + b, 2 * b + old] = 1        # (|b><b| on w) (x) (|b><old| on c); w = MSB here
                    ops.append(k)
            rho = rho.evolve(Kraus(ops), [cq(c), q(w)])
        elif kind == "reset":
            rho = rho.evolve(Kraus([np.array([[1, 0], [0, 0]]), np.array([[0, 1], [0, 0]])]), [q(entry[1])])
        else:
            _, clbits, value, body = entry
            for _, name, wires, params in body:
                u = gate(name, *params)
                g = UnitaryGate(u).control(len(clbits), ctrl_state=value)
                qargs = [cq(b) for b in clbits] + [q(w) for w in reversed(wires)]
                rho = rho.evolve(Operator(g), qargs)
    red = partial_trace(rho, list(range(n, total)))
    perm = np.arange(1 << n).reshape((2,) * n).transpose(tuple(range(n))[::-1]).reshape(-1)
    return np.asarray(red.data)[np.ix_(perm, perm)]


@pytest.mark.parametrize("seed", range(3))
def test_deferred_expectation_matches_qiskit_density_matrix(seed):
    pytest.importorskip("qiskit")
    n, n_clbits = 3, 3
    spec = dynamic_spec(seed + 10)
    rho = _qiskit_density_reference(spec, n, n_clbits)
    obs, words, coeffs = random_observable(np.random.default_rng(seed), n, terms=5)
    c = apply_spec(qsim.Circuit(n), spec)                      # complex64: 1e-5
    want = np.trace(rho @ pauli_sum_dense(n, words, coeffs)).real
    assert abs(float(c.expectation(obs)) - want) < TOL[np.complex64]
    np.testing.assert_allclose(np.asarray(c.probs()), np.diag(rho).real, atol=TOL[np.complex64])


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_concrete_dynamic_program_is_lowered_exactly(backend):
    """Over 48 deferred gates with numeric angles: fused and lowered on the host (controlled
    diagonals and dense blocks under three classical controls)."""
    spec = [("gate", "h", (w,), ()) for w in range(4)] + [("measure", w, w) for w in range(3)]
    for i in range(30):
        body = [("gate", "phase", (3,), (0.1 * i,)), ("gate", "rzz", (2, 3), (0.05 * i,)), ("gate", "s", (3,), ()),
                ("gate", "rx", (3,), (0.02 * i,))]
        spec.append(("cond", (0, 1, 2), i % 8, body))
        spec.append(("gate", "h", (3,), ()))
    c = apply_spec(qsim.Circuit(4, dtype=C128, backend=backend), spec)
    np.testing.assert_allclose(np.asarray(c.probs()), averaged_probs(branches(spec, 4, 3)), atol=TOL[np.complex128])


def test_deferred_plan_uses_wires_only_where_needed():
    def plan(c):
        return _deferred.plan(tuple(c._program), c.n_qubits, c.n_clbits, c._init is None)
    c = qsim.Circuit(2).h(0).measure(0).cond([0], 1, lambda c: c.x(1))
    p = plan(c)
    assert p.n_wires == 2 and p.clbit_wires == (0,) and p.dephased == frozenset({0})   # wire 0 holds its bit
    p = plan(qsim.Circuit(2).h(0).measure(0).h(0))
    assert p.n_wires == 3 and p.clbit_wires == (2,)                                     # copied before H
    p = plan(qsim.Circuit(2).reset(0).h(0).measure(0).reset(0).h(0))
    assert p.n_wires == 3 and p.system == (2, 1) and p.clbit_wires == (0,)              # first reset: no-op
    p = plan(qsim.Circuit(2).cond([1], 1, lambda c: c.x(0)))
    assert p.program == ()                                                              # bit 1 is never 1


def test_dephased_wire_has_no_coherence():
    c = qsim.Circuit(2).h(0).measure(0).cz(0, 1)              # only diagonal after: no copy, wire 0 dephased
    assert abs(float(c.expectation(qsim.X(0)))) < TOL[np.complex64]
    assert abs(float(c.expectation(qsim.Z(0))) - 0.0) < TOL[np.complex64]
    c = qsim.Circuit(1).h(0).measure(0).h(0)                   # copied, then H: X is 0, Z is 0 too
    np.testing.assert_allclose(c.probs(), [0.5, 0.5], atol=TOL[np.complex64])


# --- sampling --------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(3))
def test_run_matches_exact_branch_probabilities(seed, backend):
    n, shots = 3, 4000
    spec = dynamic_spec(seed + 20)
    c = apply_spec(qsim.Circuit(n, backend=backend), spec)
    n_clbits = c.n_clbits                       # one more than the largest classical bit used
    dist = clbit_distribution(branches(spec, n, n_clbits))
    bits = np.asarray(c.run(jax.random.key(seed), shots))
    assert bits.shape == (shots, n_clbits) and bits.dtype == np.int32
    counts = counts_of(bits)
    assert chi2_goodness(counts, dist, shots) > ALPHA
    assert tvd(counts, dist) < tvd_bound(shots, len(dist))
    text = c.counts(jax.random.key(seed), shots)
    assert {tuple(int(ch) for ch in k): v for k, v in text.items()} == counts       # classical bit 0 first


@needs_aer
@pytest.mark.parametrize("seed", range(3))
def test_run_matches_aer_on_random_dynamic_circuits(seed):
    n, shots = 3, 4000
    spec = dynamic_spec(seed + 30)
    c = apply_spec(qsim.Circuit(n), spec)
    ours = counts_of(c.run(jax.random.key(seed), shots))
    theirs = aer_counts(qiskit_circuit(spec, n, c.n_clbits), shots, seed)
    assert chi2_two_sample(ours, theirs) > ALPHA
    assert tvd(ours, theirs) < 2 * tvd_bound(shots, max(len(ours), len(theirs)))


QASMBENCH = ["small/bb84_n8", "small/inverseqft_n4", "small/ipea_n2", "small/qec_sm_n5", "small/shor_n5",
             "medium/cc_n12", "medium/seca_n11"]


@needs_aer
@pytest.mark.parametrize("name", QASMBENCH + [pytest.param("medium/square_root_n18", marks=pytest.mark.slow)])
def test_qasmbench_dynamic_programs_match_aer(name):
    from qiskit import qasm2
    text = (CORPUS / f"{name}.qasm").read_text()
    shots = 60 if "square_root" in name else 2000            # Aer takes about 1 s per shot there
    circuit = qsim.from_qasm(text)
    ours = counts_of(circuit.run(jax.random.key(1), shots))
    qc = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    theirs = aer_counts(qc, shots, seed=7)
    assert chi2_two_sample(ours, theirs) > ALPHA, (ours, theirs)


def test_qasm_classical_bits_are_its_registers():
    """Registers concatenated in declaration order; every declared bit is a column, as in Qiskit's counts."""
    text = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[3];\ncreg d[2];\nx q[1];\n'
            'measure q[1] -> d[1];\nif (d == 2) x q[0];\nmeasure q[0] -> c[0];')
    c = qsim.from_qasm(text)
    assert c.n_clbits == 5
    assert c.counts(jax.random.key(0), 10) == {"10001": 10}          # c[0] = bit 0, d[1] = bit 4
    if HAVE_AER:
        from qiskit import qasm2
        assert aer_counts(qasm2.loads(text), 10, 0) == {(1, 0, 0, 0, 1): 10}


def assert_samples_match_branches(c, spec, n, shots):
    """``run`` (clbits) and ``sample`` (final wires) of ``c``, built from ``spec``, against the
    distributions of the branch enumeration (chi-square at ALPHA)."""
    brs = branches(spec, n, c.n_clbits)
    counts = counts_of(c.run(jax.random.key(3), shots))
    assert chi2_goodness(counts, clbit_distribution(brs), shots) > ALPHA
    sampled = counts_of(c.sample(jax.random.key(4), shots))
    final = {tuple(int(b) for b in np.binary_repr(i, n)): p for i, p in enumerate(averaged_probs(brs)) if p > 1e-12}
    assert chi2_goodness(sampled, final, shots) > ALPHA
    return brs


def test_trajectories_match_branch_probabilities(monkeypatch):
    """One trajectory per shot (the path taken when the deferred program would not fit or would cost
    more than the shots; forced here on a small circuit)."""
    n, shots = 3, 1000
    c = qsim.Circuit(n, dtype=C128)
    spec = [("gate", "h", (0,), ()), ("gate", "cnot", (0, 1), ()), ("gate", "ry", (2, ), (0.7,))]
    for i in range(3):
        spec += [("reset", 0), ("reset", 1), ("gate", "rx", (0,), (0.3 + 0.1 * i,)), ("gate", "cnot", (0, 2), ()),
                 ("gate", "ry", (1,), (0.5 - 0.2 * i,)), ("gate", "cnot", (1, 2), ()), ("measure", 2, i),
                 ("cond", (i,), 1, [("gate", "h", (1,), ())])]
    apply_spec(c, spec)
    monkeypatch.setattr("qsim._dynamic._fits", lambda d, circ, shots: False)
    brs = assert_samples_match_branches(c, spec, n, shots)
    np.testing.assert_allclose(np.asarray(c.probs()), averaged_probs(brs), atol=TOL[np.complex128])


def test_wide_deferred_programs_sample_by_trajectories():
    """14 resets of entangled wires: the deferred program needs 17 wires, 2^14 times the work of one
    trajectory, so 1000 shots are trajectories (2^16 shots would not be); exact results use it."""
    c = qsim.Circuit(3).h(0)
    for i in range(7):
        c.cnot(0, 1).reset(1).rx(1, 0.3).cnot(1, 2).reset(2 if i % 2 else 0)
    c.measure(0, 0)
    d = _dynamic.defer(c)
    assert d.plan.n_wires == 17 and not _dynamic._fits(d, c, 1000) and _dynamic._fits(d, c, 1 << 16)
    assert c.run(jax.random.key(0), 10).shape == (10, 1)
    assert float(jnp.sum(c.probs())) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_with_key_is_one_branch(backend):
    n = 2
    spec = [("gate", "ry", (0,), (1.1,)), ("gate", "cnot", (0, 1), ()), ("measure", 0, 0),
            ("cond", (0,), 1, [("gate", "rx", (1,), (0.4,))]), ("reset", 0), ("gate", "h", (0,), ())]
    c = apply_spec(qsim.Circuit(n, dtype=C128, backend=backend), spec)
    states = np.asarray(jax.vmap(lambda k: c.state(key=k))(jax.random.split(jax.random.key(0), 400)))
    brs = branches(spec, n, 1)
    overlaps = np.abs(np.stack([s for _, _, s in brs]).conj() @ states.T) ** 2        # (branches, keys)
    assert np.all(np.max(overlaps, axis=0) > 1 - 1e-9)                               # each is a branch state
    freq = np.mean(np.argmax(overlaps, axis=0) == 0)
    p0 = brs[0][0]
    assert abs(freq - p0) < 4 * math.sqrt(p0 * (1 - p0) / 400)
    np.testing.assert_allclose(np.asarray(c.state(key=jax.random.key(5))),
                               np.asarray(jax.jit(lambda k: c.state(key=k))(jax.random.key(5))), atol=1e-12)


# --- gradients -----------------------------------------------------------------------------
def _teleport_spec(t):
    return [("gate", "ry", (0,), (t[0],)), ("gate", "h", (1,), ()), ("gate", "cnot", (1, 2), ()),
            ("gate", "cnot", (0, 1), ()), ("gate", "h", (0,), ()), ("measure", 0, 0), ("measure", 1, 1),
            ("cond", (1,), 1, [("gate", "x", (2,), ())]), ("cond", (0,), 1, [("gate", "z", (2,), ())]),
            ("cond", (0, 1), 3, [("gate", "crx", (0, 2), (t[1],)), ("gate", "u3", (2,), (t[2], t[0], -t[1]))]),
            ("reset", 0), ("gate", "rzz", (0, 2), (t[1],)), ("gate", "h", (0,), ())]


H_TELE = 0.7 * qsim.Z(2) + 0.4 * qsim.X(2) - 0.2 * qsim.Y(2) @ qsim.X(0)


def _reference_value(t):
    spec = _teleport_spec(t)
    words = [((2, "Z"),), ((2, "X"),), ((0, "X"), (2, "Y"))]
    return np.trace(averaged_rho(branches(spec, 3, 2)) @ pauli_sum_dense(3, words, [0.7, 0.4, -0.2])).real


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("diff", ["backprop", "adjoint", "parameter-shift"])
def test_gradients_of_exact_expectation(diff, backend):
    """Parameters inside conditioned gates (controlled rotations after deferral: the four-term rule)."""
    t0 = np.array([0.4, -0.9, 1.3])

    def f(t):
        return apply_spec(qsim.Circuit(3, dtype=C128, backend=backend), _teleport_spec(t)).expectation(H_TELE,
                                                                                                      diff=diff)
    assert abs(float(f(t0)) - _reference_value(t0)) < TOL[np.complex128]
    fd = np.array([(_reference_value(t0 + e) - _reference_value(t0 - e)) / 2e-6 for e in np.eye(3) * 1e-6])
    np.testing.assert_allclose(np.asarray(jax.grad(f)(jnp.asarray(t0))), fd, atol=1e-7)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(f))(jnp.asarray(t0))), fd, atol=1e-7)


def test_vmap_over_parameters_and_probs_jacobian():
    def f(t):
        return apply_spec(qsim.Circuit(3), _teleport_spec(t)).expectation(H_TELE)
    ts = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(np.asarray(jax.vmap(f)(jnp.asarray(ts, jnp.float32))),
                               [_reference_value(t) for t in ts], atol=TOL[np.complex64])
    jac = jax.jacrev(lambda t: apply_spec(qsim.Circuit(3), _teleport_spec(t)).probs())(jnp.ones(3))
    assert jac.shape == (8, 3) and np.all(np.isfinite(np.asarray(jac)))


# --- jit / vmap / keys ----------------------------------------------------------------------
def test_jitted_sampler_compiles_once_and_vmaps_over_keys():
    traces = []

    def sampler(t, key):
        traces.append(1)
        return apply_spec(qsim.Circuit(3), _teleport_spec(t)).run(key, 50)
    f = jax.jit(sampler)
    t = jnp.array([0.1, 0.2, 0.3])
    a = f(t, jax.random.key(0))
    b = f(t + 1, jax.random.key(1))
    assert len(traces) == 1 and a.shape == b.shape == (50, 2)
    np.testing.assert_array_equal(np.asarray(f(t, jax.random.key(0))), np.asarray(a))        # reproducible
    keys = jax.random.split(jax.random.key(2), 4)
    batched = jax.vmap(lambda k: sampler(t, k))(keys)
    assert batched.shape == (4, 50, 2)
    np.testing.assert_array_equal(np.asarray(batched[1]), np.asarray(f(t, keys[1])))


def test_raw_and_typed_keys_agree():
    c = apply_spec(qsim.Circuit(3), _teleport_spec([0.3, 0.2, 0.1]))
    np.testing.assert_array_equal(np.asarray(c.run(jax.random.PRNGKey(3), 20)),
                                  np.asarray(c.run(jax.random.key(3), 20)))


# --- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("call, exc, match", [
    (lambda c: c.state(), ValueError, r"Circuit.state: a dynamic circuit's state depends on its measurement "
                                      r"outcomes: pass key=jax.random.key\(seed\)"),
    (lambda c: c.probs(key=jax.random.key(0)), ValueError, r"Circuit.probs: key= is used with shots="),
    (lambda c: c.expectation(qsim.Z(0), key=jax.random.key(0)), ValueError,
     r"Circuit.expectation: key= is used with shots="),
    (lambda c: c.expectation(qsim.Z(0), shots=10), ValueError,
     r"Circuit.expectation: expectation\(shots=...\) needs a random key"),
    (lambda c: c.probs(shots=10), ValueError, r"Circuit.probs: probs\(shots=...\) needs a random key"),
    (lambda c: c.run(jax.random.key(0), shots=0), ValueError, r"Circuit.run: shots must be a positive int, got 0"),
    (lambda c: c.run(jax.random.key(0), shots=2.5), TypeError, r"Circuit.run: shots must be a positive int"),
    (lambda c: c.run(0, shots=2), TypeError, r"Circuit.run: key must be a JAX random key"),
    (lambda c: c.state(key=3), TypeError, r"Circuit.state: key must be a JAX random key"),
    (lambda c: c.measure(0, clbit=-1), ValueError, r"Circuit.measure: clbit must hold non-negative int"),
    (lambda c: c.cond([], 0, lambda c: c.x(0)), ValueError, r"Circuit.cond: clbits must be a non-empty list"),
    (lambda c: c.cond([0, 0], 0, lambda c: c.x(0)), ValueError, r"Circuit.cond: clbits must be a non-empty list"),
    (lambda c: c.cond([0], 2, lambda c: c.x(0)), ValueError, r"Circuit.cond: value must be an int in 0..1"),
    (lambda c: c.cond([0], 1, "x"), TypeError, r"Circuit.cond: fn must be a function"),
    (lambda c: c.cond([0], 1, lambda c: 3), TypeError, r"Circuit.cond: fn\(c\) must add gates to c"),
    (lambda c: c.cond([0], 1, lambda c: c.measure(0)), ValueError,
     r"Circuit.cond: only gates may be classically controlled, got MeasureOp"),
])
def test_errors(call, exc, match):
    c = qsim.Circuit(2).h(0).measure(0).h(0)
    with pytest.raises(exc, match=match):
        call(c)


def test_deferred_too_large_points_to_shots(monkeypatch):
    c = qsim.Circuit(12)
    for i in range(12):
        c.h(i).reset(i).h(i)
    monkeypatch.setattr("qsim._validate.available_bytes", lambda: (1 << 26, "test memory"))
    monkeypatch.setattr("qsim._dynamic.available_bytes", lambda: (1 << 26, "test memory"))
    with pytest.raises(qsim.StateTooLargeError, match=r"deferred measurement, which adds 12 wire\(s\).*"
                                                      r"pass shots=... and key=..."):
        c.expectation(qsim.Z(0))
    est = c.expectation(qsim.Z(0), shots=20, key=jax.random.key(0))       # trajectories of 12 qubits
    assert abs(float(est) - 0.0) <= 1.0
    with pytest.raises(qsim.StateTooLargeError, match=r"batch of"):
        monkeypatch.setattr("qsim._validate.available_bytes", lambda: (1 << 17, "test memory"))
        c.run(jax.random.key(0), 64)


def test_too_many_dynamic_steps_with_traced_parameters_is_a_clear_error():
    """Concrete parameters take the scan path (below); traced ones cannot be lowered on the host."""
    @jax.jit
    def run(theta):
        c = qsim.Circuit(1)
        for _ in range(1001):
            c.rx(0, theta).reset(0)
        return c.h(0).run(jax.random.key(0), 10)

    with pytest.raises(ValueError, match=r"Circuit.run: this circuit interleaves its gates with 1001 runs"):
        run(0.3)


# --- long dynamic programs: one scan over host-lowered steps ----------------------------------
def _ghz_rounds(rounds, thetas, backend):
    """``rounds`` times: RY(theta) on wire 0, a CNOT ladder, all four wires measured, then X on all
    four when clbit 0 is 1 (back to |0000>). Closed form: the clbits are 0000 or 1111, 1111 with
    probability sin^2(theta_last / 2), and the final state is |0000>."""
    c = qsim.Circuit(4, backend=backend)
    for i in range(rounds):
        c.ry(0, float(thetas[i])).cnot(0, 1).cnot(1, 2).cnot(2, 3)
        for w in range(4):
            c.measure(w, w)
        c.cond([0], 1, lambda s: s.x(0).x(1).x(2).x(3))
        c.reset(i % 4).h(i % 4).cz(i % 4, (i + 1) % 4).h(i % 4)        # identity on |0000>, another run
    return c


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_dynamic_program_runs_as_one_scan(backend):
    """210 rounds (210 runs of mid-circuit records, 1050 measurements/resets, 210 conditions): one
    scan, checked against the closed form."""
    shots, thetas = 1000, np.random.default_rng(0).uniform(0, np.pi, 210)
    c = _ghz_rounds(210, thetas, backend)
    assert _dynamic._dynamic_runs(c._program) == 210 and _dynamic._scannable(c)
    bits = np.asarray(c.run(jax.random.key(0), shots))
    assert bits.shape == (shots, 4) and bits.dtype == np.int32
    p1 = math.sin(thetas[-1] / 2) ** 2
    counts = counts_of(bits)
    assert set(counts) <= {(0, 0, 0, 0), (1, 1, 1, 1)}
    assert chi2_goodness(counts, {(0, 0, 0, 0): 1 - p1, (1, 1, 1, 1): p1}, shots) > ALPHA
    assert counts_of(c.sample(jax.random.key(1), 50, wires=range(4))) == {(0, 0, 0, 0): 50}
    np.testing.assert_allclose(np.abs(np.asarray(c.state(key=jax.random.key(2)))) ** 2, np.eye(16)[0],
                               atol=TOL[np.complex64])


def test_long_dynamic_program_compiles_once():
    """The traced scan does not grow with the program; a new key or shot batch reuses the program."""
    def size(rounds):
        op, arrays = _dynamic._scan_lowered(_ghz_rounds(rounds, np.full(rounds, 0.4), "xla"))[1:]
        jaxpr = jax.make_jaxpr(lambda a, s, k: _dynscan.run(op, a, s, k, qsim.Circuit(4).backend))(
            arrays, jnp.eye(16, dtype=jnp.complex64)[0], jax.random.key(0))
        return len(jaxpr.eqns), len(op.branches)
    assert size(20) == size(400)
    c = _ghz_rounds(300, np.full(300, 0.4), "xla")
    c.run(jax.random.key(0), 8)
    before = _dynamic._scan_trajectory_jit._cache_size()
    c.run(jax.random.key(1), 8)
    assert _dynamic._scan_trajectory_jit._cache_size() == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_scan_path_matches_branch_probabilities(monkeypatch, backend):
    """A small random-angle program with conditions, forced through the scan path (threshold 0,
    no deferred sampling): its clbit and final-wire distributions match the branch enumeration."""
    n, shots = 3, 3000
    c = qsim.Circuit(n, backend=backend, dtype=C128)
    spec = [("gate", "h", (0,), ()), ("gate", "cnot", (0, 1), ()), ("gate", "ry", (2, ), (0.7,))]
    for i in range(3):
        spec += [("reset", 0), ("reset", 1), ("gate", "rx", (0,), (0.3 + 0.1 * i,)), ("gate", "cnot", (0, 2), ()),
                 ("gate", "ry", (1,), (0.5 - 0.2 * i,)), ("gate", "cnot", (1, 2), ()), ("measure", 2, i),
                 ("cond", (i,), 1, [("gate", "h", (1,), ()), ("gate", "swap", (0, 2), ())])]
    apply_spec(c, spec)
    monkeypatch.setattr(_dynamic, "SCAN_DYNAMIC_RUNS", 0)
    monkeypatch.setattr(_dynamic, "_fits", lambda d, circ, shots: False)
    assert _dynamic._scannable(c)
    assert_samples_match_branches(c, spec, n, shots)


# --- export ----------------------------------------------------------------------------------
def test_to_qasm_round_trip_and_draw():
    c = apply_spec(qsim.Circuit(3), _teleport_spec([0.3, 0.2, 0.1]))
    text = c.to_qasm()
    assert "measure q[0] -> c[0];\nmeasure q[1] -> c[1];\nif(c==2) x q[2];\nif(c==3) x q[2];" in text
    assert "reset q[0];" in text
    back = qsim.from_qasm(text)
    np.testing.assert_allclose(np.asarray(back.probs()), np.asarray(c.probs()), atol=TOL[np.complex64])
    c2 = qsim.Circuit(2).h(0).measure(0).cond([0], 1, lambda c: c.x(1)).reset(0)
    assert c2.draw() == "0: ──H─↗c[0]─|0⟩───────┤\n1: ──────────X[c[0]=1]─┤"    # the X after its bit's write
    if HAVE_AER:
        from qiskit import qasm2
        qc = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        assert chi2_two_sample(counts_of(c.run(jax.random.key(0), 2000)), aer_counts(qc, 2000, 3)) > ALPHA


def test_unexportable_condition_is_a_clear_error():
    c = qsim.Circuit(2).h(0).measure(0, 11).cond([0], 1, lambda c: c.x(1)).cond(list(range(12)), 5,
                                                                                   lambda c: c.x(1))
    assert "if(c==2) x q[1];" in qsim.Circuit(2).measure(0, 1).cond([1, 0], 1, lambda c: c.x(1)).to_qasm()
    with pytest.raises(ValueError, match=r"to_qasm: the condition on classical bits \[0\] has no OpenQASM 2 form: "
                                         r"'if' compares a whole register, and these bits are not in one register "
                                         r"of at most 8 more bits"):
        c.to_qasm()


def test_controlled_body_gates_keep_their_matrices():
    """Every table gate under one and two classical controls, deferred, against dense references."""
    rng = np.random.default_rng(5)
    for name in ["h", "sx", "y", "rx", "u3", "u2", "crx", "cry", "crz", "cphase", "rzz", "iswap", "swap", "cz",
                 "toffoli", "s", "t"]:
        g = qsim.GATES[name]
        wires = tuple(range(2, 2 + g.n_wires))
        params = tuple(float(x) for x in rng.uniform(-2, 2, g.n_params))
        for value in (2, 3):           # 2: bit 0 must be 0 (an X before and after)
            c = qsim.Circuit(2 + g.n_wires, dtype=C128).h(0).h(1).measure(0, 0).measure(1, 1)
            for w in wires:
                c.ry(w, 0.7).rz(w, 0.3)
            c.cond([0, 1], value, lambda c: getattr(c, name)(*wires, *params))
            for w in wires:
                c.h(w)
            brs = []
            for b0 in (0, 1):
                for b1 in (0, 1):
                    psi = np.zeros(1 << c.n_qubits, complex)
                    psi[(b0 << (c.n_qubits - 1)) | (b1 << (c.n_qubits - 2))] = 1
                    for w in wires:
                        psi = operator(c.n_qubits, gate("rz", 0.3) @ gate("ry", 0.7), (w,)) @ psi
                    if b0 | (b1 << 1) == value:
                        psi = operator(c.n_qubits, gate(name, *params), wires) @ psi
                    for w in wires:
                        psi = operator(c.n_qubits, gate("h"), (w,)) @ psi
                    brs.append(0.25 * np.abs(psi) ** 2)
            np.testing.assert_allclose(np.asarray(c.probs()), sum(brs), atol=TOL[np.complex128], err_msg=name)


def test_terminal_measurement_dephases_expectations():
    """A terminal measurement is a channel for expectations (X/Y on the measured wire average
    to the dephased value), while state() stays the state before measurement (SPEC)."""
    rng = np.random.default_rng(7)
    angles = rng.uniform(0, 2 * np.pi, (3, 3))
    c = qsim.Circuit(3, dtype=jnp.complex64)
    for q in range(3):
        c.u3(q, *angles[q])
    c.cnot(0, 1).cnot(1, 2).measure(1)
    assert not c.is_dynamic
    psi = np.asarray(c.state(), np.complex128)
    rho = np.outer(psi, psi.conj())
    proj = [np.kron(np.kron(np.eye(2), np.diag([1.0 - b, b])), np.eye(2)) for b in (0, 1)]
    rho = sum(p @ rho @ p for p in proj)                  # the measurement channel on wire 1
    H = 0.7 * qsim.X(0) @ qsim.Y(1) + 0.3 * qsim.X(1) @ qsim.Z(2) - 0.5 * qsim.Z(1) @ qsim.X(2)
    ref = float(np.real(np.trace(rho @ np.asarray(H.matrix(3)))))
    np.testing.assert_allclose(float(c.expectation(H)), ref, atol=1e-5)
    np.testing.assert_allclose(float(c.expectation(qsim.X(0))),
                               float(np.real(np.trace(rho @ np.asarray(qsim.X(0).matrix(3))))), atol=1e-5)
