"""Suite ``noise``: a noisy hardware-efficient circuit, exact (density matrix) and by trajectories.

The circuit: L layers of RY(w[l, q, 0]), RZ(w[l, q, 1]) on every wire, then CNOT (0, 1), (1, 2), ...;
the noise model ``qsim.NoiseModel().after("all", "depolarizing", p=P)`` (a depolarizing channel on
every wire of every gate); the output ``sum_q <Z_q>``. ``value`` rows time ``jax.jit(f)``, ``grad``
rows ``jax.jit(jax.value_and_grad(f))``, the weights a traced argument; complex64 (``jax_enable_x64``
off in the case's thread).

- ``dm``: qsim's density-matrix engine beside Qiskit Aer's ``AerSimulator(method="density_matrix")``
  (``save_expectation_value``, single precision, the equivalent noise model:
  ``depolarizing_error(4P/3, 1)`` on ry/rz and its tensor square on cx) and PennyLane
  ``default.mixed`` (``jax.jit``, backprop; value and grad, up to `PENNYLANE_MAX_QUBITS`).
- ``traj``: ``trajectories=T`` Born-rule trajectories, beside Aer's ``method="statevector"``
  with ``shots=T`` (Aer draws the noise per shot: its trajectories); ``per_trajectory_s`` is the
  time over T (it falls as T grows while a batch amortises the fixed cost). Gradients are timed
  while ``T * 2**n <= GRAD_MAX_WORK``, Aer while ``T * 2**n <= AER_MAX_WORK`` (its time is linear
  in T: compare ``per_trajectory_s`` beyond).

A peer is checked before timing: its exact value within `TOLERANCE` of qsim's, its trajectory
estimate within 5 combined standard errors of qsim's; otherwise the row is marked MISMATCH.
Grid: quick ``dm`` n = 6, 8 and ``traj`` n = 10 with T = 10, 100; ``--full`` ``dm`` n = 8, 10, 12
and ``traj`` n = 16, 20 with T = 10, 100, 1000 (``--qubits`` sets both grids' n, ``--depth`` L).
"""

from __future__ import annotations

import math

import numpy as np

from ..context import Case, row
from ..timing import block, compile_jit, measure, now
from ..workloads import rng_for

SUITE = "noise"
P = 0.01
LAYERS = 4
QUICK_DM, FULL_DM = (6, 8), (8, 10, 12)
QUICK_TRAJ, FULL_TRAJ = (10,), (16, 20)
QUICK_T, FULL_T = (10, 100), (10, 100, 1000)
PENNYLANE_MAX_QUBITS = 8
GRAD_MAX_WORK = 1 << 26   # trajectory gradients timed while T * 2**n <= this (n=16, T=1000: minutes otherwise)
AER_MAX_WORK = 1 << 27    # Aer's trajectories (shots) timed while T * 2**n <= this; its time is linear in T
TOLERANCE = 2e-3          # |ours - theirs| on sum_q <Z_q>, float32


def _layer(c, w):
    for q in range(c.n_qubits):
        c.ry(q, w[q, 0]).rz(q, w[q, 1])
    for q in range(c.n_qubits - 1):
        c.cnot(q, q + 1)


def model(n, method="density_matrix", trajectories=None):
    """``f(w, key) -> sum_q <Z_q>`` of the noisy circuit (w ``(L, n, 2)``)."""
    import qsim

    noise = qsim.NoiseModel().after("all", "depolarizing", p=P)
    obs = qsim.PauliSum.from_string(" + ".join(f"Z{q}" for q in range(n)))

    def f(w, key):
        c = qsim.Circuit(n)
        c.repeat(_layer, w)
        extra = dict(key=key, trajectories=trajectories) if method == "trajectories" else {}
        return c.with_noise(noise).expectation(obs, method=method, **extra)
    return f


def weights(n, layers):
    import jax.numpy as jnp

    return jnp.asarray(rng_for("noise", n, layers).uniform(0, 2 * np.pi, (layers, n, 2)), jnp.float32)


def single_precision():
    import jax

    return jax.enable_x64(False)


# -- the grid -------------------------------------------------------------------------------------

def cases(cfg) -> list[Case]:
    layers = cfg.depth_grid((LAYERS,), (LAYERS,))[0]
    explicit = bool(cfg.qubits)
    dm = cfg.grid(QUICK_DM, FULL_DM)
    traj = list(cfg.qubits) if explicit else list(FULL_TRAJ if cfg.full else QUICK_TRAJ)
    counts = (10,) if explicit else (FULL_T if cfg.full else QUICK_T)
    peers = cfg.aer_and_pennylane()
    out = [Case(SUITE, f"dm n={n} L={layers}", _dm_fn(cfg, n, layers, peers)) for n in dm]
    out += [Case(SUITE, f"traj n={n} L={layers} T={t}", _traj_fn(cfg, n, layers, t, peers))
            for n in traj for t in counts]
    return out


# -- qsim ------------------------------------------------------------------------------------------

def _time_jitted(cfg, fn, args):
    compiled, times = compile_jit(fn, *args)
    value = block(compiled(*args))
    return value, {"compile_s": times["compile_s"], **measure(lambda: block(compiled(*args)), cfg.repeat)}


def _qsim_rows(cfg, name, n, layers, method, trajectories=None):
    import jax

    f = model(n, method, trajectories)
    w, key = weights(n, layers), jax.random.key(0)
    fields = dict(n=n, depth=layers, method=method, dtype="complex64", noise_p=P)
    if trajectories:
        fields["trajectories"] = trajectories
    value, timing = _time_jitted(cfg, f, (w, key))
    rows = [row(SUITE, f"{name} value", "qsim", mode="value", **fields, **timing, value=float(value))]
    if trajectories and trajectories << n > GRAD_MAX_WORK:
        cfg.note(f"noise: trajectory gradients timed while T * 2**n <= 2**{GRAD_MAX_WORK.bit_length() - 1}")
    else:
        _, gtiming = _time_jitted(cfg, jax.value_and_grad(f), (w, key))
        rows.append(row(SUITE, f"{name} grad", "qsim", mode="grad", **fields, **gtiming))
    if trajectories:
        for r in rows:
            r["per_trajectory_s"] = r["time_s"] / trajectories
    return float(value), rows


def _dm_fn(cfg, n, layers, peers):
    def run():
        with single_precision():
            value, rows = _qsim_rows(cfg, f"dm n={n} L={layers}", n, layers, "density_matrix")
            if "aer" in peers:
                rows.append(_aer_row(cfg, f"dm n={n} L={layers} value", n, layers, "density_matrix", None, value))
            if "pennylane" in peers and n <= PENNYLANE_MAX_QUBITS:
                rows += _pennylane_rows(cfg, f"dm n={n} L={layers}", n, layers, value)
            elif "pennylane" in peers:
                cfg.note(f"noise: PennyLane default.mixed timed up to n={PENNYLANE_MAX_QUBITS} (its jit compile "
                         "grows with the number of channels)")
        return rows
    return run


def _traj_fn(cfg, n, layers, trajectories, peers):
    def run():
        import jax

        import qsim

        with single_precision():
            name = f"traj n={n} L={layers} T={trajectories}"
            value, rows = _qsim_rows(cfg, name, n, layers, "trajectories", trajectories)
            if "aer" in peers and trajectories << n > AER_MAX_WORK:
                cfg.note(f"noise: Aer's trajectories (shots) timed while T * 2**n <= 2**{AER_MAX_WORK.bit_length() - 1} "
                         "(its time is linear in T: compare per_trajectory_s)")
            elif "aer" in peers:
                c = qsim.Circuit(n)
                c.repeat(_layer, weights(n, layers))
                noisy = c.with_noise(qsim.NoiseModel().after("all", "depolarizing", p=P))
                obs = qsim.PauliSum.from_string(" + ".join(f"Z{q}" for q in range(n)))
                _, err = qsim.expectation_with_error(noisy, obs, key=jax.random.key(0), trajectories=trajectories)
                rows.append(_aer_row(cfg, f"{name} value", n, layers, "statevector", trajectories, value,
                                     float(err)))
        return rows
    return run


# -- peers -----------------------------------------------------------------------------------------

def _aer_circuit(n, layers, w):
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

    qc, q = QuantumCircuit(n), [n - 1 - w_ for w_ in range(n)]     # qsim wire w is Qiskit qubit n-1-w
    for layer in np.asarray(w, np.float64):
        for wire in range(n):
            qc.ry(layer[wire, 0], q[wire])
            qc.rz(layer[wire, 1], q[wire])
        for wire in range(n - 1):
            qc.cx(q[wire], q[wire + 1])
    obs = SparsePauliOp(["I" * (n - 1 - k) + "Z" + "I" * k for k in range(n)])
    qc.save_expectation_value(obs, range(n))
    return qc


def _aer_row(cfg, case, n, layers, method, shots, ours, our_error=None):
    from qiskit import transpile
    from qiskit_aer import AerSimulator
    from qiskit_aer import noise as aer_noise

    dep = aer_noise.depolarizing_error(4 * P / 3, 1)
    nm = aer_noise.NoiseModel()
    nm.add_all_qubit_quantum_error(dep, ["ry", "rz"])
    nm.add_all_qubit_quantum_error(dep.tensor(dep), ["cx"])
    sim = AerSimulator(method=method, noise_model=nm, precision="single", max_parallel_threads=cfg.threads)
    t0 = now()
    qc = transpile(_aer_circuit(n, layers, weights(n, layers)), sim, optimization_level=0)
    run = lambda: sim.run(qc, shots=shots or 1).result()  # noqa: E731
    theirs = float(np.real(run().data()["expectation_value"]))
    first = now() - t0
    fields = dict(n=n, depth=layers, method=method, dtype="complex64", noise_p=P, mode="value", value=theirs)
    if shots:
        fields["trajectories"] = shots
    r = row(SUITE, case, f"aer {method}", compile_s=first, **fields, **measure(run, cfg.repeat))
    if shots:
        r["per_trajectory_s"] = r["time_s"] / shots
    _check(r, ours, theirs, None if our_error is None else 5 * math.sqrt(2) * our_error)
    return r


def _pennylane_rows(cfg, name, n, layers, ours):
    import jax
    import pennylane

    dev = pennylane.device("default.mixed", wires=n)
    p = P

    @pennylane.qnode(dev, interface="jax", diff_method="backprop")
    def node(w):
        for layer in range(layers):
            for q in range(n):
                pennylane.RY(w[layer, q, 0], wires=q)
                pennylane.DepolarizingChannel(p, wires=q)
                pennylane.RZ(w[layer, q, 1], wires=q)
                pennylane.DepolarizingChannel(p, wires=q)
            for q in range(n - 1):
                pennylane.CNOT(wires=[q, q + 1])
                pennylane.DepolarizingChannel(p, wires=q)
                pennylane.DepolarizingChannel(p, wires=q + 1)
        return pennylane.expval(sum(pennylane.PauliZ(q) for q in range(n)))

    w = weights(n, layers)
    fields = dict(n=n, depth=layers, method="density_matrix", dtype="complex64", noise_p=P)
    rows = []
    for mode, fn in (("value", node), ("grad", jax.value_and_grad(node))):
        out, timing = _time_jitted(cfg, fn, (w,))
        r = row(SUITE, f"{name} {mode}", "pennylane default.mixed", mode=mode, **fields, **timing)
        if mode == "value":
            _check(r, ours, float(out), None)
        rows.append(r)
    return rows


def _check(r, ours, theirs, bound):
    err = abs(ours - theirs)
    limit = TOLERANCE * max(1.0, abs(ours)) if bound is None else bound
    r["abs_error"] = err
    if not err <= limit:
        r.update(mismatch=True, note=f"MISMATCH vs qsim: |{theirs:.5g} - {ours:.5g}| = {err:.2g} > {limit:.2g}")
