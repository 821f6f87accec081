"""Noise: channels, the density-matrix engine, trajectories and noise models, against independent references.

References: closed-form Kraus sets written here (PennyLane's conventions, as the SPEC lists them),
`qiskit.quantum_info.DensityMatrix.evolve`, Qiskit Aer's density-matrix simulator with an
equivalent `qiskit_aer.noise.NoiseModel`, PennyLane's ``default.mixed`` (float64) and float64
finite differences. Qiskit's qubit ``k`` is bit ``k`` of a basis index: qsim's wire ``w`` is
Qiskit's qubit ``n - 1 - w`` (a matrix's qubit list then starts with its least significant wire).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from reference import PAULI, TOL, gate

C128 = jnp.complex128
ONE = {"X": PAULI["X"], "Y": PAULI["Y"], "Z": PAULI["Z"]}


def sq(x):
    return np.sqrt(x)


# --- closed forms (the SPEC's list; two_qubit_depolarizing and thermal relaxation from their definitions)
def closed_form(name, *p):
    eye = np.eye(2)
    if name == "depolarizing":
        return [sq(1 - p[0]) * eye] + [sq(p[0] / 3) * ONE[k] for k in "XYZ"]
    if name == "amplitude_damping":
        return [np.array([[1, 0], [0, sq(1 - p[0])]]), np.array([[0, sq(p[0])], [0, 0]])]
    if name == "phase_damping":
        return [np.array([[1, 0], [0, sq(1 - p[0])]]), np.array([[0, 0], [0, sq(p[0])]])]
    if name == "bit_flip":
        return [sq(1 - p[0]) * eye, sq(p[0]) * PAULI["X"]]
    if name == "phase_flip":
        return [sq(1 - p[0]) * eye, sq(p[0]) * PAULI["Z"]]
    if name == "pauli_channel":
        px, py, pz = p
        return [sq(1 - px - py - pz) * eye, sq(px) * PAULI["X"], sq(py) * PAULI["Y"], sq(pz) * PAULI["Z"]]
    if name == "two_qubit_depolarizing":
        words = [np.kron(PAULI[a], PAULI[b]) for a, b in itertools.product("IXYZ", repeat=2)]
        return [sq(1 - p[0]) * words[0]] + [sq(p[0] / 15) * w for w in words[1:]]
    raise KeyError(name)


def superop(kraus):
    return sum(np.kron(k, k.conj()) for k in kraus)


def thermal_superop(t1, t2, time):
    """``rho_11 -> e^{-t/T1} rho_11`` (into rho_00), ``rho_01 -> e^{-t/T2} rho_01`` (vec basis 00, 01, 10, 11)."""
    g, c = 1 - np.exp(-time / t1), np.exp(-time / t2)
    return np.array([[1, 0, 0, g], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1 - g]])


CHANNELS = [("depolarizing", (0.12,)), ("amplitude_damping", (0.3,)), ("phase_damping", (0.45,)),
            ("bit_flip", (0.2,)), ("phase_flip", (0.35,)), ("pauli_channel", (0.1, 0.05, 0.2)),
            ("two_qubit_depolarizing", (0.3,))]


@pytest.mark.parametrize("name,params", CHANNELS, ids=[c[0] for c in CHANNELS])
def test_kraus_sets_are_the_closed_forms_and_cptp(name, params):
    from qsim import _channels
    ks = np.asarray(_channels.kraus_ops(name, params, C128))
    want = closed_form(name, *params)
    np.testing.assert_allclose(ks, np.stack(want), atol=1e-12)
    d = ks.shape[-1]
    np.testing.assert_allclose(np.einsum("mba,mbc->ac", ks.conj(), ks), np.eye(d), atol=1e-12)
    np.testing.assert_allclose(np.asarray(_channels.superop(name, params, C128)), superop(want), atol=1e-12)


def test_thermal_relaxation_is_qiskit_aers():
    from qiskit_aer.noise import thermal_relaxation_error
    from qiskit.quantum_info import SuperOp
    from qsim import _channels
    for t1, t2, time in [(50.0, 70.0, 10.0), (40.0, 30.0, 25.0), (20.0, 40.0, 5.0)]:
        ks = np.asarray(_channels.kraus_ops("thermal_relaxation", (t1, t2, time), C128))
        np.testing.assert_allclose(np.einsum("mba,mbc->ac", ks.conj(), ks), np.eye(2), atol=1e-12)
        np.testing.assert_allclose(superop(ks), thermal_superop(t1, t2, time), atol=1e-12)
        # Qiskit's SuperOp is column-stacked: vec(rho)[c * 2 + r]; ours is row-stacked
        aer = SuperOp(thermal_relaxation_error(t1, t2, time)).data
        perm = [0, 2, 1, 3]
        np.testing.assert_allclose(aer[np.ix_(perm, perm)], thermal_superop(t1, t2, time), atol=1e-12)


# --- random noisy circuits against qiskit.quantum_info -------------------------------------------
GATES_1 = ["h", "rx", "ry", "rz", "u3", "s", "t"]
GATES_2 = ["cnot", "cz", "crx", "rzz", "swap", "cry"]
NOISE = ["depolarizing", "amplitude_damping", "phase_damping", "bit_flip", "phase_flip", "pauli_channel",
         "two_qubit_depolarizing", "kraus", "thermal_relaxation"]


def random_kraus(rng, k, m=3):
    """A random CPTP set of ``m`` operators on ``k`` wires (the top block of a random isometry)."""
    d = 1 << k
    z = rng.normal(size=(m * d, d)) + 1j * rng.normal(size=(m * d, d))
    q, _ = np.linalg.qr(z)
    return q.reshape(m, d, d)


def random_noisy_ops(rng, n, depth):
    """A list of ``(kind, name, wires, params)``; kind "gate" or "channel"."""
    ops = []
    for _ in range(depth):
        if rng.random() < 0.5:
            name = rng.choice(GATES_1 + GATES_2)
            wires = tuple(int(w) for w in rng.choice(n, 1 if name in GATES_1 else 2, replace=False))
            n_params = {"rx": 1, "ry": 1, "rz": 1, "u3": 3, "crx": 1, "rzz": 1, "cry": 1}.get(name, 0)
            ops.append(("gate", name, wires, tuple(rng.uniform(-3, 3, n_params))))
        else:
            name = rng.choice(NOISE)
            two = name in ("two_qubit_depolarizing",) or (name == "kraus" and rng.random() < 0.5)
            wires = tuple(int(w) for w in rng.choice(n, 2 if two else 1, replace=False))
            if name == "pauli_channel":
                params = tuple(rng.uniform(0, 0.3, 3))
            elif name == "kraus":
                params = (random_kraus(rng, len(wires)),)
            elif name == "thermal_relaxation":
                t1 = rng.uniform(20, 50)
                params = (t1, rng.uniform(10, 2 * t1), rng.uniform(1, 10))
            else:
                params = (rng.uniform(0, 0.5),)
            ops.append(("channel", name, wires, params))
    return ops


def build(n, ops, dtype=C128, backend="auto", params=None, fuse=None):
    c = qsim.Circuit(n, dtype=dtype, backend=backend, max_fused_qubits=fuse)
    for i, (kind, name, wires, p) in enumerate(ops):
        p = p if params is None else params[i]
        if kind == "gate":
            getattr(c, name)(*wires, *p)
        elif name == "kraus":
            c.kraus(p[0], wires)
        else:
            getattr(c, name)(*wires, *p)
    return c


def qiskit_rho(n, ops):
    from qiskit.quantum_info import DensityMatrix, Kraus, Operator
    rho = DensityMatrix.from_label("0" * n)
    for kind, name, wires, p in ops:
        qargs = [n - 1 - w for w in wires][::-1]       # a matrix's qubit list: least significant first
        if kind == "gate":
            rho = rho.evolve(Operator(gate(name, *p)), qargs=qargs)
        elif name == "thermal_relaxation":
            from qiskit_aer.noise import thermal_relaxation_error
            rho = rho.evolve(thermal_relaxation_error(*p).to_quantumchannel(), qargs=qargs)
        else:
            ks = p[0] if name == "kraus" else closed_form(name, *p)
            rho = rho.evolve(Kraus(list(ks)), qargs=qargs)
    return rho.data


@pytest.mark.parametrize("backend", ["auto", "xla"])
@pytest.mark.parametrize("seed", [0, 1])
def test_density_matrix_of_random_noisy_circuits_is_qiskits(seed, backend):
    rng = np.random.default_rng(seed)
    n = 3
    ops = random_noisy_ops(rng, n, 30)
    want = qiskit_rho(n, ops)
    got = build(n, ops, backend=backend).density_matrix()
    np.testing.assert_allclose(np.asarray(got), want, atol=TOL[np.complex128])
    got64 = build(n, ops, jnp.complex64, backend).density_matrix()
    np.testing.assert_allclose(np.asarray(got64), want, atol=TOL[np.complex64])


def test_probs_and_expectations_are_the_trace_formula():
    rng = np.random.default_rng(7)
    n = 4
    ops = random_noisy_ops(rng, n, 24)
    c = build(n, ops)
    rho = qiskit_rho(n, ops)
    np.testing.assert_allclose(np.asarray(c.probs()), np.real(np.diag(rho)), atol=1e-10)
    np.testing.assert_allclose(np.asarray(c.probs(wires=(2, 0))), np.real(np.diag(rho)).reshape(2, 2, 2, 2)
                               .sum(axis=(1, 3)).T.reshape(-1), atol=1e-10)
    terms = [((0, "X"), (1, "Y")), ((2, "Z"),), ((1, "Y"), (3, "Y")), ((0, "Z"), (2, "X"), (3, "Y")), ()]
    H = sum(((k + 1) * 0.25) * qsim.PauliSum((w,), jnp.ones(1)) for k, w in enumerate(terms))
    dense = sum(((k + 1) * 0.25) * _word(n, w) for k, w in enumerate(terms))
    np.testing.assert_allclose(float(c.expectation(H)), np.real(np.trace(dense @ rho)), atol=1e-10)


def _word(n, word):
    mats = [np.eye(2)] * n
    for q, p in word:
        mats[q] = PAULI[p]
    out = mats[0]
    for m in mats[1:]:
        out = np.kron(out, m)
    return out


def test_noiseless_density_matrix_is_the_pure_state():
    c = qsim.Circuit(3, dtype=C128).h(0).cnot(0, 1).ry(2, 0.4).crz(2, 0, 0.9)
    psi = np.asarray(c.state())
    np.testing.assert_allclose(np.asarray(c.density_matrix()), np.outer(psi, psi.conj()), atol=1e-12)
    terminal = qsim.Circuit(2, dtype=C128).h(0).cnot(0, 1).depolarizing(1, 0.1).measure(0).measure(1)
    plain = qsim.Circuit(2, dtype=C128).h(0).cnot(0, 1).depolarizing(1, 0.1)
    np.testing.assert_allclose(np.asarray(terminal.density_matrix()), np.asarray(plain.density_matrix()), atol=1e-12)


def test_initial_state_and_fusion_width():
    rng = np.random.default_rng(9)
    psi = rng.normal(size=4) + 1j * rng.normal(size=4)
    psi /= np.linalg.norm(psi)
    p = 0.3
    c = qsim.Circuit(2, state=psi, dtype=C128).depolarizing(1, p)
    rho = np.outer(psi, psi.conj())
    mixed = np.kron(rho.reshape(2, 2, 2, 2).trace(axis1=1, axis2=3), np.eye(2) / 2)     # Tr_1(rho) (x) I/2
    np.testing.assert_allclose(c.density_matrix(), (1 - 4 * p / 3) * rho + 4 * p / 3 * mixed, atol=1e-12)
    ops = random_noisy_ops(np.random.default_rng(2), 3, 20)
    want = qiskit_rho(3, ops)
    for k in (0, 1, 2, 6):
        np.testing.assert_allclose(build(3, ops, fuse=k).density_matrix(), want, atol=1e-10)


# --- Qiskit Aer with an equivalent noise model ----------------------------------------------------
def test_noise_model_matches_aer_density_matrix_simulator():
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator
    from qiskit_aer import noise as aer_noise

    n, p, gamma, t = 4, 0.03, 0.05, (40.0, 50.0, 4.0)
    rng = np.random.default_rng(3)
    angles = rng.uniform(-3, 3, (3, n, 2))
    c, qc = qsim.Circuit(n, dtype=C128), QuantumCircuit(n)
    q = [n - 1 - w for w in range(n)]
    for layer in angles:
        for w in range(n):
            c.ry(w, layer[w, 0]).rz(w, layer[w, 1])
            qc.ry(layer[w, 0], q[w])
            qc.rz(layer[w, 1], q[w])
        for w in range(n - 1):
            c.cx(w, w + 1)
            qc.cx(q[w], q[w + 1])
        c.h(0)
        qc.h(q[0])
    qc.save_density_matrix()
    nm = (qsim.NoiseModel().after("cx", "depolarizing", p=p).after("all", "amplitude_damping", gamma=gamma)
          .after(["ry", "h"], "thermal_relaxation", t1=t[0], t2=t[1], time=t[2])
          .after("cnot", "two_qubit_depolarizing", p=p))
    dep, amp = aer_noise.depolarizing_error(4 * p / 3, 1), aer_noise.amplitude_damping_error(gamma)
    relax = aer_noise.thermal_relaxation_error(*t)
    anm = aer_noise.NoiseModel()
    anm.add_all_qubit_quantum_error(dep.tensor(dep), ["cx"])
    anm.add_all_qubit_quantum_error(amp, ["ry", "rz", "h"])
    anm.add_all_qubit_quantum_error(amp.tensor(amp), ["cx"])
    anm.add_all_qubit_quantum_error(relax, ["ry", "h"])
    anm.add_all_qubit_quantum_error(aer_noise.depolarizing_error(16 * p / 15, 2), ["cx"])
    sim = AerSimulator(method="density_matrix", noise_model=anm)
    want = np.asarray(sim.run(transpile(qc, sim, optimization_level=0)).result().data()["density_matrix"])
    got = c.with_noise(nm).density_matrix()
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


# --- gradients ------------------------------------------------------------------------------------
H3 = 0.5 * qsim.Z(0) @ qsim.Z(1) + 0.3 * qsim.X(2) - 0.2 * qsim.Y(1) @ qsim.X(0)


def noisy(w, g, backend="auto", dtype=C128):
    c = qsim.Circuit(3, dtype=dtype, backend=backend)
    c.ry(0, w[0]).cnot(0, 1).depolarizing(1, g).rx(2, w[1]).amplitude_damping(2, 2 * g)
    c.crz(0, 2, w[2]).u3(1, w[3], w[4], w[5]).phase_damping(0, g).cry(1, 2, w[6])
    return c.bit_flip(2, g / 2)


W7 = np.array([0.3, -1.1, 0.7, 0.4, 1.9, -0.5, 1.2])


def pennylane_value(w, g):
    pennylane = pytest.importorskip("pennylane")
    dev = pennylane.device("default.mixed", wires=3)

    @pennylane.qnode(dev, interface="jax", diff_method="backprop")
    def f(w, g):
        pennylane.RY(w[0], wires=0)
        pennylane.CNOT(wires=[0, 1])
        pennylane.DepolarizingChannel(g, wires=1)
        pennylane.RX(w[1], wires=2)
        pennylane.AmplitudeDamping(2 * g, wires=2)
        pennylane.CRZ(w[2], wires=[0, 2])
        pennylane.U3(w[3], w[4], w[5], wires=1)
        pennylane.PhaseDamping(g, wires=0)
        pennylane.CRY(w[6], wires=[1, 2])
        pennylane.BitFlip(g / 2, wires=2)
        H = (0.5 * pennylane.PauliZ(0) @ pennylane.PauliZ(1) + 0.3 * pennylane.PauliX(2)
             - 0.2 * pennylane.PauliY(1) @ pennylane.PauliX(0))
        return pennylane.expval(H)
    return f(w, g)


NOISE_LEVELS = (0.0, 0.05, 0.1, 0.2)


@pytest.fixture(scope="module")
def pennylane_reference():
    """PennyLane default.mixed (float64, backprop): value and gradients at each of `NOISE_LEVELS`
    (one jitted, vmapped call: PennyLane's eager backprop takes tens of seconds here)."""
    f = jax.jit(jax.vmap(jax.value_and_grad(pennylane_value, argnums=(0, 1)), in_axes=(None, 0)))
    vals, (gw, gg) = f(jnp.asarray(W7), jnp.asarray(NOISE_LEVELS))
    return {g: (vals[i], gw[i], gg[i]) for i, g in enumerate(NOISE_LEVELS)}


@pytest.mark.parametrize("diff", ["backprop", "parameter-shift"])
def test_gradients_match_pennylane_default_mixed_and_finite_differences(diff, pennylane_reference):
    w, g = jnp.asarray(W7), 0.1

    def f(w, g):
        return noisy(w, g).expectation(H3, diff=diff)
    val, (gw, gg) = jax.value_and_grad(f, argnums=(0, 1))(w, g)
    pl_val, pl_w, pl_g = pennylane_reference[g]
    np.testing.assert_allclose(val, pl_val, atol=1e-10)
    np.testing.assert_allclose(gw, pl_w, atol=1e-9)
    np.testing.assert_allclose(gg, pl_g, atol=1e-9)
    eps = 1e-6
    fd = [(f(w.at[i].add(eps), g) - f(w.at[i].add(-eps), g)) / (2 * eps) for i in range(len(W7))]
    np.testing.assert_allclose(gw, fd, atol=1e-7)
    np.testing.assert_allclose(gg, (f(w, g + eps) - f(w, g - eps)) / (2 * eps), atol=1e-7)


def test_adjoint_on_a_noisy_circuit_names_the_alternatives():
    with pytest.raises(ValueError, match="backprop.*parameter-shift"):
        noisy(W7, 0.1).expectation(H3, diff="adjoint")


# --- traced noise parameters, transforms, backends ------------------------------------------------
@pytest.mark.parametrize("backend", ["auto", "xla"])
def test_traced_noise_under_jit_grad_vmap(backend, pennylane_reference):
    w = jnp.asarray(W7)
    f = jax.jit(lambda g: noisy(w, g, backend).expectation(H3))
    gs = jnp.asarray(NOISE_LEVELS)
    vals, grads = jax.vmap(jax.value_and_grad(f))(gs)
    np.testing.assert_allclose(vals, [pennylane_reference[g][0] for g in NOISE_LEVELS], atol=1e-10)
    np.testing.assert_allclose(grads[1:], [pennylane_reference[g][2] for g in NOISE_LEVELS[1:]], atol=1e-9)
    hess = jax.hessian(lambda w: noisy(w, 0.1, backend).expectation(H3))(w)
    np.testing.assert_allclose(hess, hess.T, atol=1e-9)


def test_learnable_kraus_operators_and_channels_in_a_repeat():
    def layer(c, w):
        c.ry(0, w[0]).cnot(0, 1).depolarizing(1, w[1]).amplitude_damping(0, w[1] / 2)

    ws = jnp.array([[0.3, 0.1], [1.2, 0.05], [-0.4, 0.2]])

    def repeated(ws):
        c = qsim.Circuit(2, dtype=C128)
        c.repeat(layer, ws)
        return c.expectation(qsim.Z(0) + qsim.X(1))

    def unrolled(ws):
        c = qsim.Circuit(2, dtype=C128)
        for w in ws:
            layer(c, w)
        return c.expectation(qsim.Z(0) + qsim.X(1))
    np.testing.assert_allclose(repeated(ws), unrolled(ws), atol=1e-12)
    np.testing.assert_allclose(jax.grad(repeated)(ws), jax.grad(unrolled)(ws), atol=1e-12)

    def kraus(g):          # amplitude damping written as a Kraus set of traced operators
        k = jnp.stack([jnp.array([[1, 0], [0, jnp.sqrt(1 - g)]]), jnp.array([[0, jnp.sqrt(g)], [0, 0]])])
        c = qsim.Circuit(1, dtype=C128).h(0).kraus(k.astype(C128), 0)
        return c.expectation(qsim.X(0) + qsim.Z(0))

    def builtin(g):
        return qsim.Circuit(1, dtype=C128).h(0).amplitude_damping(0, g).expectation(qsim.X(0) + qsim.Z(0))
    np.testing.assert_allclose(jax.grad(kraus)(0.3), jax.grad(builtin)(0.3), atol=1e-12)


def test_checkpointed_backprop_when_saved_states_would_not_fit(monkeypatch):
    from qsim import _density

    def layer(c, w):
        c.ry(0, w[0]).cnot(0, 1).amplitude_damping(1, 0.1).rx(1, w[1]).depolarizing(0, 0.05)

    def f(ws, w):
        c = qsim.Circuit(2, dtype=C128).rz(0, w).h(1).phase_damping(1, 0.2)
        c.repeat(layer, ws)
        return c.ry(1, w).bit_flip(0, 0.1).expectation(qsim.Z(0) + qsim.X(1))
    ws, w = jnp.array([[0.3, 0.1], [1.2, -0.5], [-0.4, 0.2]]), 0.7
    want = jax.grad(f, argnums=(0, 1))(ws, w)
    monkeypatch.setattr(_density, "_MEMORY_SHARE", 1e-12)          # every program is checkpointed
    got = jax.grad(f, argnums=(0, 1))(ws, w)
    np.testing.assert_allclose(got[0], want[0], atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], atol=1e-12)


def test_jitted_noisy_expectation_compiles_once():
    traces = []

    def f(w):
        traces.append(1)
        return noisy(w, 0.1).expectation(H3)
    jf = jax.jit(f)
    jf(jnp.asarray(W7))
    jf(jnp.asarray(W7) + 1)
    assert len(traces) == 1


# --- trajectories ---------------------------------------------------------------------------------
def within(est, err, exact, k=4.0):
    est, err, exact = map(np.asarray, (est, err, exact))
    assert np.all(np.abs(est - exact) <= k * err + 1e-12), (est, err, exact)


@pytest.mark.parametrize("backend", ["auto", "xla"])
def test_trajectories_converge_to_the_density_matrix(backend):
    key = jax.random.key(11)
    c = noisy(W7, 0.15, backend)
    obs = [H3, qsim.Z(2), qsim.X(0) @ qsim.Y(1)]
    est, err = qsim.expectation_with_error(c, obs, key=key, trajectories=2000)
    within(est, err, c.expectation(obs))
    assert np.all(np.asarray(err) < 0.03)
    plain = c.expectation(obs, method="trajectories", key=key, trajectories=2000)
    np.testing.assert_allclose(plain, est, atol=1e-6)
    p_traj = c.probs(method="trajectories", key=key, trajectories=2000)
    np.testing.assert_allclose(p_traj, c.probs(), atol=0.04)
    one = c.state(method="trajectories", key=key)
    np.testing.assert_allclose(jnp.linalg.norm(one), 1, atol=1e-10)


def test_trajectory_gradients_are_unbiased():
    """The mean of the per-key gradient estimates is within 4 standard errors of the exact gradient,
    for gate angles and for noise parameters, Pauli mixtures and amplitude damping alike."""
    w, g = jnp.asarray(W7), 0.15
    exact_w, exact_g = jax.grad(lambda w, g: noisy(w, g).expectation(H3), argnums=(0, 1))(w, g)

    def estimate(key):
        return jax.grad(lambda w, g: noisy(w, g).expectation(H3, method="trajectories", key=key,
                                                             trajectories=400), argnums=(0, 1))(w, g)
    gw, gg = jax.vmap(estimate)(jax.random.split(jax.random.key(5), 10))
    within(gw.mean(0), gw.std(0, ddof=1) / np.sqrt(10), exact_w)
    within(gg.mean(0), gg.std(0, ddof=1) / np.sqrt(10), exact_g)
    shift = jax.grad(lambda w: noisy(w, g).expectation(H3, diff="parameter-shift", method="trajectories",
                                                      key=jax.random.key(2), trajectories=1000))(w)
    np.testing.assert_allclose(shift, exact_w, atol=0.06)      # 4 standard errors of 1000 trajectories


def test_trajectories_vmap_over_keys_and_reproducible():
    c = noisy(W7, 0.2)
    f = jax.jit(lambda k: c.expectation(H3, method="trajectories", key=k, trajectories=50))
    keys = jax.random.split(jax.random.key(0), 3)
    batch = jax.vmap(f)(keys)
    np.testing.assert_allclose(batch, [f(k) for k in keys], atol=1e-10)
    assert len(set(np.round(np.asarray(batch), 12))) == 3
    np.testing.assert_allclose(f(keys[0]), f(keys[0]), atol=0)


# --- noise models ---------------------------------------------------------------------------------
def channel_list(c):
    from qsim._ir import ChannelOp, GateOp
    return [(op.gate.name if isinstance(op, GateOp) else op.name, op.wires) for op in c._program
            if isinstance(op, (ChannelOp, GateOp))]


def test_noise_model_placement_and_rule_order():
    nm = (qsim.NoiseModel().after("cx", "depolarizing", p=0.01).after("all", "amplitude_damping", gamma=0.02)
          .after("cnot", "two_qubit_depolarizing", p=0.1).after(["h", "rx"], "bit_flip", p=0.1))
    c = qsim.Circuit(3).h(0).cnot(0, 2).rx(1, 0.3).rz(2, 0.1)
    got = channel_list(c.with_noise(nm))
    assert got == [("h", (0,)), ("amplitude_damping", (0,)), ("bit_flip", (0,)),
                   ("cnot", (0, 2)), ("depolarizing", (0,)), ("depolarizing", (2,)), ("amplitude_damping", (0,)),
                   ("amplitude_damping", (2,)), ("two_qubit_depolarizing", (0, 2)),
                   ("rx", (1,)), ("amplitude_damping", (1,)), ("bit_flip", (1,)),
                   ("rz", (2,)), ("amplitude_damping", (2,))]
    assert channel_list(c) == [("h", (0,)), ("cnot", (0, 2)), ("rx", (1,)), ("rz", (2,))]   # unchanged


def test_noise_model_on_qasm_and_inside_repeat_layers():
    text = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\n'
            'u1(0.3) q[1];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[1];\n')
    nm = qsim.NoiseModel().after("cx", "depolarizing", p=0.1).after("u1", "phase_flip", p=0.2)
    c = qsim.from_qasm(text).with_noise(nm)
    assert [name for name, _ in channel_list(c)] == ["h", "cnot", "depolarizing", "depolarizing", "phase",
                                                      "phase_flip"]
    ref = qsim.Circuit(2).h(0).cnot(0, 1).depolarizing(0, 0.1).depolarizing(1, 0.1).phase(1, 0.3).phase_flip(1, 0.2)
    np.testing.assert_allclose(c.density_matrix(), ref.density_matrix(), atol=1e-6)

    def layer(c, w):
        c.ry(0, w[0]).ry(1, w[1]).cnot(0, 1)
    ws = jnp.array([[0.2, 0.7], [1.1, -0.3]])
    model = qsim.NoiseModel().after("all", "depolarizing", p=0.05)

    def repeated(ws):
        c = qsim.Circuit(2, dtype=C128)
        c.repeat(layer, ws)
        return c.with_noise(model).expectation(qsim.Z(1))

    def unrolled(ws):
        c = qsim.Circuit(2, dtype=C128)
        for w in ws:
            layer(c, w)
        return c.with_noise(model).expectation(qsim.Z(1))
    np.testing.assert_allclose(repeated(ws), unrolled(ws), atol=1e-12)
    np.testing.assert_allclose(jax.grad(repeated)(ws), jax.grad(unrolled)(ws), atol=1e-12)
    est, err = qsim.expectation_with_error(_repeat_circuit(layer, ws, model), qsim.Z(1), key=jax.random.key(1),
                                           trajectories=2000)
    within(est, err, repeated(ws))


def _repeat_circuit(layer, ws, model):
    c = qsim.Circuit(2, dtype=C128)
    c.repeat(layer, ws)
    return c.with_noise(model)


# --- dynamic circuits with noise, sampling, readout -----------------------------------------------
def teleport(noise=0.05):
    c = qsim.Circuit(3, dtype=C128)
    c.ry(0, 0.7).h(1).cnot(1, 2).depolarizing(2, noise).cnot(0, 1).h(0).measure(0, 0).measure(1, 1)
    c.cond([1], 1, lambda c: c.x(2)).cond([0], 1, lambda c: c.z(2))
    return c.amplitude_damping(2, 0.1)


def test_dynamic_noisy_circuit_density_matrix_and_trajectories_agree():
    c = teleport()
    obs = [qsim.Z(2), qsim.X(2)]
    exact = c.expectation(obs)
    # teleported ry(0.7)|0> through depolarizing then amplitude damping: closed form
    p, g = 0.05, 0.1
    z0, x0 = np.cos(0.7), np.sin(0.7)
    shrink = 1 - 4 * p / 3
    np.testing.assert_allclose(exact, [g + (1 - g) * shrink * z0, np.sqrt(1 - g) * shrink * x0], atol=1e-10)
    est, err = qsim.expectation_with_error(c, obs, key=jax.random.key(4), trajectories=3000)
    within(est, err, exact)
    rho = np.asarray(c.density_matrix())
    assert rho.shape == (8, 8) and abs(np.trace(rho) - 1) < 1e-10
    counts = c.counts(jax.random.key(0), 2000)
    assert set(counts) <= {"00", "01", "10", "11"} and all(abs(v / 2000 - 0.25) < 0.05 for v in counts.values())


def test_sampling_run_and_readout_error():
    key = jax.random.key(2)
    c = qsim.Circuit(2, dtype=C128).x(0).bit_flip(0, 0.2).measure(0, 0).measure(1, 1)
    for method in ("density_matrix", "trajectories"):
        bits = np.asarray(c.run(key, 4000, method=method))
        assert bits.shape == (4000, 2) and abs(bits[:, 0].mean() - 0.8) < 0.03 and bits[:, 1].sum() == 0
        samples = np.asarray(c.sample(key, 4000, method=method))
        assert abs(samples[:, 0].mean() - 0.8) < 0.03
    noisy_readout = c.with_noise(qsim.NoiseModel().readout(0.1, 0.25))
    bits = np.asarray(noisy_readout.run(key, 8000))
    assert abs(bits[:, 0].mean() - (0.8 * 0.75 + 0.2 * 0.1)) < 0.02 and abs(bits[:, 1].mean() - 0.1) < 0.02
    np.testing.assert_allclose(noisy_readout.probs(), c.probs(), atol=1e-12)       # exact: the state itself
    freq = noisy_readout.probs(shots=8000, key=key)
    read0 = 0.2 * 0.9 + 0.8 * 0.25                                   # wire 0 reads 0
    np.testing.assert_allclose(freq, [read0 * 0.9, read0 * 0.1, (1 - read0) * 0.9, (1 - read0) * 0.1], atol=0.02)


def test_shot_estimates_of_noisy_circuits():
    c = noisy(W7, 0.1)
    exact = c.expectation(H3)
    for method in ("density_matrix", "trajectories"):
        est = c.expectation(H3, shots=4000, key=jax.random.key(8), method=method)
        assert abs(est - exact) < 0.05
    g = jax.grad(lambda w: noisy(w, 0.1).expectation(H3, shots=8000, key=jax.random.key(3),
                                                     diff="parameter-shift"))(jnp.asarray(W7))
    np.testing.assert_allclose(g, jax.grad(lambda w: noisy(w, 0.1).expectation(H3))(jnp.asarray(W7)), atol=0.06)


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("call,match", [
    (lambda: qsim.Circuit(1).depolarizing(0, 1.5), r"Circuit.depolarizing: p must be a probability in \[0, 1\]"),
    (lambda: qsim.Circuit(1).amplitude_damping(0, -0.1), "gamma must be a probability"),
    (lambda: qsim.Circuit(1).bit_flip(0, float("nan")), "p must be a number, got NaN"),
    (lambda: qsim.Circuit(1).pauli_channel(0, 0.5, 0.4, 0.3), "px \\+ py \\+ pz must be <= 1"),
    (lambda: qsim.Circuit(1).kraus(0.9 * np.eye(2)[None], 0), "not a CPTP map"),
    (lambda: qsim.Circuit(2).kraus(np.ones((2, 2, 2)), (0, 1)), r"must have shape \(m, 4, 4\)"),
    (lambda: qsim.Circuit(2).two_qubit_depolarizing(0, 0, 0.1), "distinct"),
    (lambda: qsim.Circuit(1).thermal_relaxation(0, 10.0, 30.0, 1.0), "t2 must be <= 2 \\* t1"),
    (lambda: qsim.Circuit(1).thermal_relaxation(0, -1.0, 1.0, 1.0), "t1 must be > 0"),
    (lambda: qsim.Circuit(1).depolarizing(0, "a"), "p must be a real number"),
    (lambda: qsim.Circuit(1).h(0).depolarizing(0, 0.1).state(), "no single statevector"),
    (lambda: qsim.Circuit(1).depolarizing(0, 0.1).probs(method="exact"), "method must be one of"),
    (lambda: qsim.Circuit(1).depolarizing(0, 0.1).expectation(qsim.Z(0), method="trajectories"),
     "needs a random key"),
    (lambda: qsim.Circuit(1).depolarizing(0, 0.1).expectation(qsim.Z(0), method="trajectories", key=jax.random.key(0),
                                                              trajectories=1), "trajectories must be an int >= 2"),
    (lambda: qsim.NoiseModel().after("hadamard", "depolarizing", p=0.1), "unknown gate 'hadamard'"),
    (lambda: qsim.NoiseModel().after("h", "dephasing", p=0.1), "unknown channel 'dephasing'"),
    (lambda: qsim.NoiseModel().after("h", "depolarizing", gamma=0.1), r"takes the parameters \(p=...\)"),
    (lambda: qsim.NoiseModel().after("h", "depolarizing", p=2.0), "p must be a probability"),
    (lambda: qsim.NoiseModel().after("h", "two_qubit_depolarizing", p=0.1).apply(qsim.Circuit(1).h(0)),
     "acts on 2 wires but gate 'h' on 1"),
    (lambda: qsim.NoiseModel().readout(1.2), "p01 must be a probability"),
    (lambda: qsim.Circuit(1).with_noise("depolarizing"), "model must be a qsim.NoiseModel"),
])
def test_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_memory_guard_counts_the_density_matrix():
    c = qsim.Circuit(20).h(0).depolarizing(0, 0.1)          # rho needs 4**20 amplitudes: 8 TiB
    with pytest.raises(qsim.StateTooLargeError, match="40 qubits"):
        c.density_matrix()


# --- qml layers under noise -----------------------------------------------------------------------
def _layer_circuit(c, x, w):
    import qml
    qml.templates.angle_embedding(c, x, rotation="Y")
    qml.templates.basic_entangler(c, w["layers"])


def test_quantum_layers_train_under_noise():
    import optax
    from flax import nnx

    import qml
    nm = qsim.NoiseModel().after("all", "depolarizing", p=0.05)
    obs = [qsim.Z(0), qsim.X(1)]
    x = jnp.asarray(np.random.default_rng(0).uniform(0, np.pi, (4, 2)))
    exact = qml.QuantumLayer(_layer_circuit, 2, {"layers": (2, 2)}, obs, rngs=nnx.Rngs(0), noise=nm, dtype=C128)
    w = {"layers": exact.weights["layers"][...]}
    want = []
    for xb in x:
        c = qsim.Circuit(2, dtype=C128)
        _layer_circuit(c, xb, w)
        want.append(c.with_noise(nm).expectation(obs))
    np.testing.assert_allclose(exact(x), np.stack(want), atol=1e-10)

    sampled = qml.QuantumLayer(_layer_circuit, 2, {"layers": (2, 2)}, obs, rngs=nnx.Rngs(0), noise=nm, dtype=C128,
                               noise_method="trajectories", trajectories=400)
    opt = nnx.Optimizer(sampled, optax.adam(0.01), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x):
        loss, grads = nnx.value_and_grad(lambda m: jnp.sum(m(x)))(model)
        opt.update(model, grads)
        return loss
    first, second = step(sampled, opt, x), step(sampled, opt, x)     # a fresh key each call
    assert np.isfinite(first) and first != second
    np.testing.assert_allclose(sampled(x), exact(x), atol=0.2)

    lin = qml.linen.QuantumLayer(_layer_circuit, 2, {"layers": (2, 2)}, obs, noise=nm, dtype=C128,
                                 noise_method="trajectories", trajectories=400)
    params = {"params": {"layers": w["layers"]}}
    a = lin.apply(params, x, rngs={"noise": jax.random.key(1)})
    b = lin.apply(params, x, rngs={"noise": jax.random.key(2)})
    np.testing.assert_allclose(a, exact(x), atol=0.2)
    assert not np.allclose(a, b)
    with pytest.raises(TypeError, match="noise must be a qsim.NoiseModel"):
        qml.QuantumLayer(_layer_circuit, 2, {"layers": (2, 2)}, obs, rngs=nnx.Rngs(0), noise="depolarizing")
    with pytest.raises(ValueError, match="noise_method must be one of"):
        qml.QuantumLayer(_layer_circuit, 2, {"layers": (2, 2)}, obs, rngs=nnx.Rngs(0), noise=nm, noise_method="mc")
