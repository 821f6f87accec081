"""Suite ``dynamic``: mid-circuit measurement with classical control, and shot-based gradients.

- ``teleport n=N S=shots``: a teleportation chain on N wires. Wire 0 holds ``RY(theta)|0>``
  entangled with wire N-1 by a CNOT; Bell pairs on (1, 2), (3, 4), ...; then, pair after pair,
  the state is teleported along the chain: CNOT, H, two mid-circuit measurements, and the
  corrections X and Z conditioned on the measured bits; finally H on wire N-2 and both last wires
  measured. All N classical bits of every shot are returned (``c.run(key, S)``). The angle is a
  traced argument of the jitted function (so nothing is folded at compile time). qsim draws all
  shots from ONE N-qubit simulation (deferred measurement: no measured wire is used again, so no
  extra wire); Qiskit Aer (``method="statevector"``, single precision, same threads) and PennyLane
  ``default.qubit`` (``mcm_method="one-shot"``) simulate each shot. Their time is linear in the
  shots, so they run ``min(S, cap)`` shots (``cap``: `AER_MAX_WORK` / `PENNYLANE_MAX_WORK` over
  ``2**N``, at most `PENNYLANE_MAX_SHOTS` for PennyLane) and ``time_at_S_s`` extrapolates to S
  (``extrapolated`` says so); ``vs aer`` compares qsim's time with Aer's at S.
- ``vqe-grad n=8 S=1000``: one value-and-gradient step of a shot-based VQE: L layers of RY, RZ on
  every wire and a CNOT chain, ``H = sum_i Z_i Z_{i+1} + 0.5 sum_i X_i`` (two qubit-wise commuting
  groups, S shots each), the gradient by the parameter-shift rule with every shifted circuit
  sampled with S shots. qsim: ``jax.jit(jax.value_and_grad(f))`` with
  ``expectation(H, shots=S, key=key, diff="parameter-shift")``; Aer: all shifted circuits in one
  ``run`` (each group's basis rotation, S shots each), parities on the host; PennyLane
  ``default.qubit`` with S shots, ``diff_method="parameter-shift"``, ``jax.value_and_grad``.

``--qubits`` sets the chain's n (S = 10^4) and the VQE's n (its first value), ``--depth`` the VQE's L.
Every implementation is checked before it is timed: the teleported bit's frequency within 5
standard errors of ``sin^2(theta/2)``, a gradient within 5 standard deviations of the exact one
(the bound of the shot noise); otherwise the row is marked MISMATCH.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..context import Case, row
from ..timing import block, compile_jit, measure, now
from ..workloads import hea_layer, pennylane_hea

SUITE = "dynamic"
THETA = 0.9
QUICK_TELEPORT, FULL_TELEPORT = ((12, 1000), (20, 10_000)), ((12, 1000), (16, 10_000), (20, 10_000), (22, 10_000))
VQE_QUBITS, VQE_SHOTS, VQE_LAYERS = 8, 1000, 2
AER_MAX_WORK = 1 << 22          # Aer runs min(S, AER_MAX_WORK / 2**n) shots (about 0.6 s per shot at n=20)
PENNYLANE_MAX_WORK = 1 << 22
PENNYLANE_MAX_SHOTS = 200       # about 5 ms per shot at n=12
PENNYLANE_MAX_QUBITS = 16       # the teleportation chain beyond: about 3 s per shot
SLOW_PEER_REPEAT = 1            # timed calls of a peer whose call takes seconds (after one warm-up)


def single_precision():
    import jax

    return jax.enable_x64(False)


# -- the teleportation chain -------------------------------------------------------------------

def teleport_circuit(n, theta):
    import qsim

    c = qsim.Circuit(n)
    c.ry(0, theta).cnot(0, n - 1)
    for k in range((n - 2) // 2):
        c.h(2 * k + 1).cnot(2 * k + 1, 2 * k + 2)
    for k in range((n - 2) // 2):
        src, a, b = 2 * k, 2 * k + 1, 2 * k + 2
        c.cnot(src, a).h(src).measure(src, src).measure(a, a)
        c.cond([a], 1, lambda c, b=b: c.x(b)).cond([src], 1, lambda c, b=b: c.z(b))
    return c.h(n - 2).measure(n - 2, n - 2).measure(n - 1, n - 1)


def _check_teleport(r, bits, n):
    """The last wire's bit is 1 with probability sin^2(theta/2); wire n-2's is a fair coin."""
    bits = np.asarray(bits)
    p = math.sin(THETA / 2) ** 2
    se = lambda q: math.sqrt(q * (1 - q) / len(bits))  # noqa: E731
    err = max(abs(bits[:, n - 1].mean() - p) / se(p), abs(bits[:, n - 2].mean() - 0.5) / se(0.5))
    r["error_se"] = float(err)
    if err > 5:
        r.update(mismatch=True, note=f"MISMATCH: outcome frequencies {err:.1f} standard errors from exact")


def _teleport_fn(cfg, n, shots, peers):
    def run():
        import jax

        with single_precision():
            fn = lambda theta, key: teleport_circuit(n, theta).run(key, shots)  # noqa: E731
            args = (jax.numpy.float32(THETA), jax.random.key(0))
            compiled, times = compile_jit(fn, *args)
            bits = block(compiled(*args))
            fields = dict(n=n, shots=shots, dtype="complex64", mid_circuit_measurements=n - 2)
            r = row(SUITE, f"teleport n={n} S={shots}", "qsim", compile_s=times["compile_s"], **fields,
                    **measure(lambda: block(compiled(*args)), cfg.repeat))
            r["per_shot_s"] = r["time_s"] / shots
            _check_teleport(r, bits, n)
            rows = [r]
            if "aer" in peers:
                rows.append(_aer_teleport(cfg, n, shots, r["time_s"]))
            if "pennylane" in peers and n <= PENNYLANE_MAX_QUBITS:
                rows.append(_pennylane_teleport(cfg, n, shots, r["time_s"]))
            elif "pennylane" in peers:
                cfg.note(f"dynamic: PennyLane's teleportation chain timed up to n={PENNYLANE_MAX_QUBITS} "
                         "(about 3 s per shot at n=20)")
        return rows
    return run


def _extrapolated(r, timed_shots, shots, ours):
    """Per-shot time and the time at ``shots`` (linear in the shots: each shot is a simulation)."""
    r["timed_shots"] = timed_shots
    r["per_shot_s"] = r["time_s"] / timed_shots
    r["time_at_S_s"] = r["per_shot_s"] * shots
    r["extrapolated"] = timed_shots < shots
    r["qsim_vs_peer"] = ours / r["time_at_S_s"]
    if r["extrapolated"]:
        r["note"] = (f"{timed_shots} of {shots} shots timed; {r['time_at_S_s']:.3g} s at S (linear in the "
                     f"shots), qsim {r['qsim_vs_peer']:.2g}x")
    return r


def _aer_teleport(cfg, n, shots, ours):
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator

    qc = QuantumCircuit(n, n)
    qc.ry(THETA, 0)
    qc.cx(0, n - 1)
    for k in range((n - 2) // 2):
        qc.h(2 * k + 1)
        qc.cx(2 * k + 1, 2 * k + 2)
    for k in range((n - 2) // 2):
        src, a, b = 2 * k, 2 * k + 1, 2 * k + 2
        qc.cx(src, a)
        qc.h(src)
        qc.measure(src, src)
        qc.measure(a, a)
        with qc.if_test((qc.clbits[a], 1)):
            qc.x(b)
        with qc.if_test((qc.clbits[src], 1)):
            qc.z(b)
    qc.h(n - 2)
    qc.measure(n - 2, n - 2)
    qc.measure(n - 1, n - 1)
    sim = AerSimulator(method="statevector", precision="single", max_parallel_threads=cfg.threads)
    timed = max(1, min(shots, AER_MAX_WORK >> n))
    t0 = now()
    tqc = transpile(qc, sim)
    run = lambda: sim.run(tqc, shots=timed, seed_simulator=1).result()  # noqa: E731
    counts = run().get_counts()
    first = now() - t0
    bits = np.array([[int(b) for b in key[::-1]] for key, c in counts.items() for _ in range(c)])
    r = row(SUITE, f"teleport n={n} S={shots}", "aer statevector", compile_s=first, n=n, shots=shots,
            dtype="complex64", **measure(run, cfg.repeat))
    if timed >= 100:
        _check_teleport(r, bits, n)
    return _extrapolated(r, timed, shots, ours)


def _pennylane_teleport(cfg, n, shots, ours):
    import pennylane

    timed = max(1, min(shots, PENNYLANE_MAX_SHOTS, PENNYLANE_MAX_WORK >> n))
    dev = pennylane.device("default.qubit", wires=n, seed=1)

    @pennylane.set_shots(timed)
    @pennylane.qnode(dev, mcm_method="one-shot")
    def node(theta):
        pennylane.RY(theta, wires=0)
        pennylane.CNOT(wires=[0, n - 1])
        for k in range((n - 2) // 2):
            pennylane.Hadamard(2 * k + 1)
            pennylane.CNOT(wires=[2 * k + 1, 2 * k + 2])
        for k in range((n - 2) // 2):
            src, a, b = 2 * k, 2 * k + 1, 2 * k + 2
            pennylane.CNOT(wires=[src, a])
            pennylane.Hadamard(src)
            m_src, m_a = pennylane.measure(src), pennylane.measure(a)
            pennylane.cond(m_a, pennylane.PauliX)(b)
            pennylane.cond(m_src, pennylane.PauliZ)(b)
        pennylane.Hadamard(n - 2)
        return pennylane.sample(wires=list(range(n - 2, n)))

    t0 = now()
    out = np.asarray(node(THETA))
    first = now() - t0
    r = row(SUITE, f"teleport n={n} S={shots}", "pennylane default.qubit", compile_s=first, n=n, shots=shots,
            dtype="complex128", **measure(lambda: node(THETA), min(cfg.repeat, SLOW_PEER_REPEAT)))
    if timed >= 100:
        full = np.zeros((len(out), n), int)
        full[:, n - 2:] = out.reshape(len(out), 2)
        _check_teleport(r, full, n)
    return _extrapolated(r, timed, shots, ours)


# -- the shot-based VQE gradient ---------------------------------------------------------------

def _vqe_terms(n):
    """``[(word, coefficient)]``: Z_i Z_{i+1} (one group) and 0.5 X_i (the other)."""
    return [(((i, "Z"), (i + 1, "Z")), 1.0) for i in range(n - 1)] + [(((i, "X"),), 0.5) for i in range(n)]


def _vqe_weights(n, layers):
    return np.random.default_rng(11).uniform(0, 2 * np.pi, (layers, n, 2)).astype(np.float32)


def vqe_model(n, shots):
    import qsim

    terms = _vqe_terms(n)
    obs = qsim.PauliSum(tuple(w for w, _ in terms), np.array([c for _, c in terms], np.float32))

    def f(w, key):
        c = qsim.Circuit(n)
        c.repeat(hea_layer, w)
        if shots is None:
            return c.expectation(obs, diff="adjoint")
        return c.expectation(obs, shots=shots, key=key, diff="parameter-shift")
    return f


def _grad_bound(n, shots):
    """5 standard deviations of one parameter-shift component: 0.5^2 (Var E+ + Var E-), Var E <= sum over
    groups of (sum |c|)^2 / S."""
    var_e = ((n - 1) * 1.0) ** 2 / shots + (n * 0.5) ** 2 / shots
    return 5 * math.sqrt(0.5 * var_e)


def _check_grad(r, grad, exact, n, shots):
    err = float(np.max(np.abs(np.ravel(grad) - np.ravel(exact))))
    r["max_abs_error"] = err
    bound = _grad_bound(n, shots)
    if not err <= bound:
        r.update(mismatch=True, note=f"MISMATCH: gradient {err:.3g} from exact (5 sd of the shot noise: {bound:.3g})")


def _vqe_fn(cfg, n, shots, layers, peers):
    def run():
        import jax

        with single_precision():
            w = jax.numpy.asarray(_vqe_weights(n, layers))
            exact = np.asarray(jax.grad(vqe_model(n, None))(w, None))
            args = (w, jax.random.key(0))
            compiled, times = compile_jit(jax.value_and_grad(vqe_model(n, shots)), *args)
            _, grad = block(compiled(*args))
            fields = dict(n=n, shots=shots, depth=layers, params=2 * n * layers, dtype="complex64")
            name = f"vqe-grad n={n} S={shots}"
            r = row(SUITE, name, "qsim", compile_s=times["compile_s"], **fields,
                    **measure(lambda: block(compiled(*args)), cfg.repeat))
            _check_grad(r, grad, exact, n, shots)
            rows = [r]
            if "aer" in peers:
                rows.append(_aer_vqe(cfg, name, n, shots, layers, exact, r["time_s"]))
            if "pennylane" in peers:
                rows.append(_pennylane_vqe(cfg, name, n, shots, layers, exact, r["time_s"]))
        return rows
    return run


def _aer_vqe(cfg, name, n, shots, layers, exact, ours):
    """All 2P shifted circuits (plus the unshifted one) in each group's basis, one ``run``."""
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator

    w = _vqe_weights(n, layers).astype(np.float64)
    sim = AerSimulator(method="statevector", precision="single", max_parallel_threads=cfg.threads)

    def circuit(ws, basis):
        qc = QuantumCircuit(n, n)
        for layer in ws:
            for q in range(n):
                qc.ry(layer[q, 0], q)
                qc.rz(layer[q, 1], q)
            for q in range(n - 1):
                qc.cx(q, q + 1)
        if basis == "X":
            qc.h(range(n))
        qc.measure(range(n), range(n))
        return qc

    shifted = [w]
    for i in range(w.size):
        for s in (np.pi / 2, -np.pi / 2):
            v = w.copy().reshape(-1)
            v[i] += s
            shifted.append(v.reshape(w.shape))

    def step():
        circs = [circuit(ws, basis) for ws in shifted for basis in ("Z", "X")]
        result = sim.run(transpile(circs, sim, optimization_level=0), shots=shots, seed_simulator=3).result()
        values = []
        for j in range(len(shifted)):
            zz = _parities(result.get_counts(2 * j), n, [(i, i + 1) for i in range(n - 1)])
            xx = _parities(result.get_counts(2 * j + 1), n, [(i,) for i in range(n)])
            values.append(zz.sum() + 0.5 * xx.sum())
        values = np.array(values)
        return values[0], 0.5 * (values[1::2] - values[2::2]).reshape(w.shape)

    t0 = now()
    _, grad = step()
    first = now() - t0
    r = row(SUITE, name, "aer statevector", compile_s=first, n=n, shots=shots, depth=layers,
            params=2 * n * layers, dtype="complex64", **measure(step, cfg.repeat))
    _check_grad(r, grad, exact, n, shots)
    r["qsim_vs_peer"] = ours / r["time_s"]
    return r


def _parities(counts, n, words):
    """Mean parity of each word (qubit tuples) from Qiskit counts (qubit 0 last in a key)."""
    keys = list(counts)
    bits = np.array([[int(k[n - 1 - q]) for q in range(n)] for k in keys])
    weights = np.array([counts[k] for k in keys], float)
    return np.array([np.sum(weights * (1 - 2 * (bits[:, list(wd)].sum(1) % 2))) / weights.sum() for wd in words])


def _pennylane_vqe(cfg, name, n, shots, layers, exact, ours):
    import jax
    import pennylane

    terms = _vqe_terms(n)
    obs = [pennylane.PauliZ(i) @ pennylane.PauliZ(i + 1) for i in range(n - 1)] + [pennylane.PauliX(i)
                                                                                    for i in range(n)]
    ham = pennylane.Hamiltonian([c for _, c in terms], obs)
    dev = pennylane.device("default.qubit", wires=n, seed=jax.random.PRNGKey(5))

    @pennylane.set_shots(shots)
    @pennylane.qnode(dev, interface="jax", diff_method="parameter-shift")
    def node(w):
        pennylane_hea(w, n, layers)
        return pennylane.expval(ham)

    w = jax.numpy.asarray(_vqe_weights(n, layers))
    step = jax.value_and_grad(node)
    with warnings.catch_warnings():              # its complex128 is truncated (x64 is off in this thread)
        warnings.simplefilter("ignore", UserWarning)
        t0 = now()
        _, grad = block(step(w))
        first = now() - t0
        timing = measure(lambda: block(step(w)), min(cfg.repeat, SLOW_PEER_REPEAT))
    r = row(SUITE, name, "pennylane default.qubit", compile_s=first, n=n, shots=shots, depth=layers,
            params=2 * n * layers, dtype="complex64", **timing)
    _check_grad(r, np.asarray(grad), exact, n, shots)
    r["qsim_vs_peer"] = ours / r["time_s"]
    return r


# -- the grid ------------------------------------------------------------------------------------

def cases(cfg) -> list[Case]:
    peers = cfg.aer_and_pennylane()
    grid = FULL_TELEPORT if cfg.full else QUICK_TELEPORT
    if cfg.qubits:
        grid = tuple((n, 10_000) for n in cfg.qubits)
    out = [Case(SUITE, f"teleport n={n} S={s}", _teleport_fn(cfg, n, s, peers)) for n, s in grid]
    n = cfg.qubits[0] if cfg.qubits else VQE_QUBITS
    layers = cfg.depth_grid((VQE_LAYERS,), (VQE_LAYERS,))[0]
    out.append(Case(SUITE, f"vqe-grad n={n} S={VQE_SHOTS}", _vqe_fn(cfg, n, VQE_SHOTS, layers, peers)))
    return out
