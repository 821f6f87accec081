"""Sharded circuits against single-device runs, in a process that sees 8 CPU devices.

`tests/test_sharding.py` runs ``python tests/sharding_checks.py`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the pytest process itself
has one device) and checks the JSON line this prints: ``{check: value}``, where a
value is a max abs error, a pair of counts that must be equal, or an error message.
One process runs every check so that JAX starts once.
"""

from __future__ import annotations

import itertools
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import qsim  # noqa: E402
from qsim import _layout, _sharding  # noqa: E402

N = 6
MATRICES = {  # the user-matrix kinds: unitary on k wires, diagonal, controlled (1 or 2 controls)
    "unitary1": lambda rng: _unitary(1, rng), "unitary2": lambda rng: _unitary(2, rng),
    "unitary3": lambda rng: _unitary(3, rng), "diagonal2": lambda rng: np.diag(np.exp(1j * rng.uniform(0, 6, 4))),
    "controlled1": lambda rng: _unitary(1, rng), "controlled2": lambda rng: _unitary(1, rng),
    "controlled_diagonal": lambda rng: np.diag(np.exp(1j * rng.uniform(0, 6, 2))),
}
H = (qsim.Z(0) @ qsim.X(1) + 0.5 * qsim.Y(2) @ qsim.Y(0) + 0.3 * qsim.X(5) - 0.4 * qsim.Z(4) @ qsim.Z(1)
     + 0.2 * qsim.X(0) @ qsim.Y(3) @ qsim.Z(2) + 0.1)


def mesh_of(d):
    return Mesh(np.array(jax.devices()[:d]), ("devices",))


def _unitary(k, rng):
    z = rng.standard_normal((1 << k, 1 << k)) + 1j * rng.standard_normal((1 << k, 1 << k))
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))


def _kinds():
    """(name, n_wires, n_angles) of every gate of the table and of the user-matrix kinds."""
    wires = {"unitary1": 1, "unitary2": 2, "unitary3": 3, "diagonal2": 2, "controlled1": 2, "controlled2": 3,
             "controlled_diagonal": 2}
    return [(name, g.n_wires, g.n_params) for name, g in qsim.GATES.items()] + [(k, w, 0) for k, w in wires.items()]


def _apply(c, name, wires, angles, matrix):
    if name.startswith("unitary") or name == "diagonal2":
        return c.unitary(matrix, wires)
    if name.startswith("controlled"):
        k = 2 if name == "controlled2" else 1
        return c.controlled(matrix, wires[:k], wires[k:])
    return getattr(c, name)(*wires, *angles)


def placements(g, rng, every=True, parametrised_only=False):
    """A recipe with every gate kind on every placement of its wires (or, without ``every``, on
    one random placement each): each wire global or local in the layout the gate meets (the
    planner then swaps global targets in, slices diagonals and global controls by the device bits)."""
    recipe, n_angles = [], 0
    for name, k, n_par in _kinds():
        if parametrised_only and not n_par:
            continue
        patterns = [p for p in itertools.product((True, False), repeat=k) if sum(p) <= g and k - sum(p) <= N - g]
        if not every:
            patterns = [patterns[rng.integers(len(patterns))]]
        for pattern in patterns:
            c = build(qsim.Circuit(N), recipe, np.zeros(n_angles))
            pos = _layout.plan(c.program[0], N, g).final
            glob = [w for w in range(N) if pos[w] < g]
            local = [w for w in range(N) if pos[w] >= g]
            rng.shuffle(glob)
            rng.shuffle(local)
            wires = tuple(glob.pop() if p else local.pop() for p in pattern)
            matrix = MATRICES[name](rng) if name in MATRICES else None
            recipe.append((name, wires, n_par, matrix, pattern))
            n_angles += n_par
    return recipe, n_angles


def _random_state(rng):
    psi = rng.standard_normal(1 << N) + 1j * rng.standard_normal(1 << N)
    return jnp.asarray(psi / np.linalg.norm(psi), jnp.complex64)


def build(c, recipe, theta):
    i = 0
    for name, wires, n_par, matrix, _ in recipe:
        _apply(c, name, wires, [theta[i + j] for j in range(n_par)], matrix)
        i += n_par
    return c


def hea_layer(c, w):
    for q in range(N):
        c.ry(q, w[q, 0]).rz(q, w[q, 1])
    for q in range(N - 1):
        c.cnot(q, q + 1)


def err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def n_all_to_all(f, *args):
    return jax.jit(f).lower(*args).as_text().count("stablehlo.all_to_all")


def check_gates(out, d, rng, every):
    """Every gate kind (on every placement with ``every``): the state, and the all_to_alls
    against the plan."""
    g = d.bit_length() - 1
    mesh = mesh_of(d)
    recipe, n_angles = placements(g, rng, every)
    theta = jnp.asarray(rng.uniform(-np.pi, np.pi, n_angles), jnp.float32)
    psi = _random_state(rng)
    circ = lambda t, m: build(qsim.Circuit(N, psi, mesh=m), recipe, t)  # noqa: E731
    out[f"D={d} gates"] = len(recipe)
    out[f"D={d} kinds"] = len({r[0] for r in recipe})
    out[f"D={d} state"] = err(circ(theta, mesh).state(), circ(theta, None).state())
    plans = []

    def traced(t):  # the plan of the program as traced (traced matrices are never taken as diagonal)
        c = circ(t, mesh)
        plans.append(_sharding.layout_plan(c))
        return c
    count = n_all_to_all(lambda t: traced(t).expectation(H), theta)
    out[f"D={d} all_to_all expectation"] = (count, plans[-1].compiled_swaps)
    undo_swaps = len(_layout.undo(plans[-1].final, N, g)[0])
    out[f"D={d} all_to_all state"] = (n_all_to_all(lambda t: traced(t).state(), theta),
                                      plans[-1].compiled_swaps + undo_swaps)
    out[f"D={d} swaps planned <= naive"] = plans[-1].swaps <= plans[-1].naive


def check_gradients(out, d, rng, methods):
    """Every parametrised gate on a random placement: values and gradients of ``methods``."""
    mesh = mesh_of(d)
    recipe, n_angles = placements(d.bit_length() - 1, rng, every=False, parametrised_only=True)
    theta = jnp.asarray(rng.uniform(-np.pi, np.pi, n_angles), jnp.float32)
    psi = _random_state(rng)
    circ = lambda t, m: build(qsim.Circuit(N, psi, mesh=m), recipe, t)  # noqa: E731
    ref_v, ref_g = jax.jit(jax.value_and_grad(lambda t: circ(t, None).expectation(H)))(theta)
    for diff in methods:
        v, gr = jax.jit(jax.value_and_grad(lambda t: circ(t, mesh).expectation(H, diff=diff)))(theta)
        out[f"D={d} value {diff}"] = err(v, ref_v)
        out[f"D={d} gradient {diff}"] = err(gr, ref_g)
    # a diagonal word beside an X word on a local wire: XLA:CPU's compiler crashed (a CHECK
    # failure, the process gone) on the gradient when the psum was taken of complex values
    obs = qsim.Z(0) + qsim.X(N - 1)
    small = lambda w, m, diff="backprop": (qsim.Circuit(N, mesh=m).rx(0, w[0]).ry(N - 1, w[1])  # noqa: E731
                                           .expectation(obs, diff=diff))
    w = jnp.asarray([0.3, -0.7], jnp.float32)
    ref_v, ref_g = jax.jit(jax.value_and_grad(lambda t: small(t, None)))(w)
    for diff in methods:
        v, gr = jax.jit(jax.value_and_grad(lambda t: small(t, mesh, diff)))(w)
        out[f"D={d} Z+X gradient {diff}"] = max(err(v, ref_v), err(gr, ref_g))


def check_repeat(out, d, rng):
    mesh = mesh_of(d)
    w = jnp.asarray(rng.uniform(-np.pi, np.pi, (6, N, 2)), jnp.float32)
    circ = lambda w, m: qsim.Circuit(N, mesh=m).h(2).repeat(hea_layer, w).rx(0, w[0, 0, 0])  # noqa: E731
    obs = qsim.X(0) @ qsim.X(1) + 0.5 * qsim.Z(2) + 0.3 * qsim.Y(4) @ qsim.Y(5)
    out[f"D={d} repeat state"] = err(circ(w, mesh).state(), circ(w, None).state())
    ref = jax.grad(lambda w: circ(w, None).expectation(obs))(w)
    for diff in ("backprop", "adjoint", "parameter-shift"):
        got = jax.jit(jax.grad(lambda w: circ(w, mesh).expectation(obs, diff=diff)))(w)
        out[f"D={d} repeat gradient {diff}"] = err(got, ref)
    the_plan = _sharding.layout_plan(circ(w, mesh))
    rp = next(i for i in the_plan.items if isinstance(i, _layout.RepeatPlan))
    out[f"D={d} repeat runs as a scan"] = rp.n_periods > 0
    out[f"D={d} repeat all_to_all"] = (n_all_to_all(lambda w: circ(w, mesh).expectation(obs), w),
                                       the_plan.compiled_swaps)


def check_readout(out, d, rng):
    mesh = mesh_of(d)
    w = jnp.asarray(rng.uniform(-np.pi, np.pi, (3, N, 2)), jnp.float32)
    circ = lambda m: qsim.Circuit(N, mesh=m).h(0).repeat(hea_layer, w).cswap(1, 0, 4)  # noqa: E731
    sh, one = circ(mesh), circ(None)
    out[f"D={d} probs"] = err(sh.probs(), one.probs())
    for wires in ((4, 0, 2), (1,), (5, 3), tuple(range(N))[::-1]):
        out[f"D={d} marginal {wires}"] = err(sh.probs(wires), one.probs(wires))
    key = jax.random.key(5)
    for wires in (None, (3, 0)):
        a, b = np.asarray(sh.sample(key, 4000, wires)), np.asarray(one.sample(key, 4000, wires))
        out[f"D={d} sample {wires} same bits"] = float(np.mean(np.all(a == b, axis=1)))
    bits = np.asarray(sh.sample(key, 20000))
    freq = np.bincount(bits @ (1 << np.arange(N - 1, -1, -1)), minlength=1 << N) / bits.shape[0]
    out[f"D={d} sample frequencies"] = err(freq, one.probs())
    thetas = jnp.asarray(rng.uniform(-1, 1, (3, 2)), jnp.float32)
    f = lambda t, m: qsim.Circuit(N, mesh=m).rx(0, t[0]).cnot(0, 4).ry(1, t[1]).cz(1, 0).expectation(H)  # noqa: E731
    out[f"D={d} vmap"] = err(jax.vmap(lambda t: f(t, mesh))(thetas), jax.vmap(lambda t: f(t, None))(thetas))


def raises(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the type and message are what is checked
        return f"{type(e).__name__}: {e}"
    return "no error"


def check_errors(out):
    devs = np.array(jax.devices())
    out["error two axes"] = raises(lambda: qsim.Circuit(6, mesh=Mesh(devs.reshape(2, 4), ("a", "b"))))
    out["error six devices"] = raises(lambda: qsim.Circuit(6, mesh=Mesh(devs[:6], ("a",))))
    out["error too many devices"] = raises(lambda: qsim.Circuit(3, mesh=mesh_of(8)))
    out["error not a mesh"] = raises(lambda: qsim.Circuit(3, mesh=jax.devices()))
    out["error targets"] = raises(lambda: qsim.Circuit(4, mesh=mesh_of(8)).swap(0, 1).state())
    out["error measure"] = raises(lambda: qsim.Circuit(4, mesh=mesh_of(2)).h(0).measure(0).h(0).state())
    out["error shots"] = raises(lambda: qsim.Circuit(4, mesh=mesh_of(2)).h(0).expectation(qsim.Z(0), shots=10,
                                                                                          key=jax.random.key(0)))
    gib = 1 << 30
    real_device, real_host = _sharding.device_bytes, qsim._validate.available_bytes
    _sharding.device_bytes = lambda mesh: (80 * gib, "fake 80 GiB per device")
    qsim._validate.available_bytes = lambda: (80 * gib, "fake 80 GiB host")
    try:
        out["memory 34 qubits on 8 devices"] = raises(lambda: qsim.Circuit(34, mesh=mesh_of(8)))
        out["memory 34 qubits on 1 device"] = raises(lambda: qsim.Circuit(34))
        out["memory 37 qubits on 8 devices"] = raises(lambda: qsim.Circuit(37, mesh=mesh_of(8)))
    finally:
        _sharding.device_bytes, qsim._validate.available_bytes = real_device, real_host


def main():
    out = {"native": qsim.backends.resolve("auto") == qsim.backends.NATIVE}
    rng = np.random.default_rng(13)
    methods = {2: ("backprop", "parameter-shift"), 4: ("backprop", "adjoint"),   # every method at D=8 and
               8: ("backprop", "adjoint", "parameter-shift")}                   # in repeat (compile time)
    for d in (2, 4, 8):
        check_gates(out, d, rng, every=d == 8)       # D=8 has every placement of up to 3 wires
        check_gradients(out, d, rng, methods[d])
    check_repeat(out, 8, rng)
    check_readout(out, 8, rng)
    check_errors(out)
    print("SHARDING-CHECKS " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
