"""qml.templates: against the same gates written by hand, against PennyLane, compile-once, gradients, errors."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import qsim

from qml import templates as T

TOL = 1e-5                                   # complex64
RNG = np.random.default_rng(1234)
X3 = RNG.uniform(-2, 2, 3).astype(np.float32)
AMP4 = RNG.normal(size=4) + 1j * RNG.normal(size=4)
AMP4 /= np.linalg.norm(AMP4)
W_BASIC = {n: RNG.uniform(0, 2 * np.pi, (2, n)).astype(np.float32) for n in (1, 2, 3)}
W_STRONG = {n: RNG.uniform(0, 2 * np.pi, (3, n, 3)).astype(np.float32) for n in (1, 2, 3)}
W_HE = RNG.uniform(0, 2 * np.pi, (2, 3, 2)).astype(np.float32)
W_REUP = RNG.uniform(0, 2 * np.pi, (2, 2, 3)).astype(np.float32)


def rot(c, w, v):
    c.rz(w, v[0]).ry(w, v[1]).rz(w, v[2])


def neighbours(n):
    return [] if n == 1 else [(0, 1)] if n == 2 else [(i, (i + 1) % n) for i in range(n)]


# Each case: (n_qubits, ours(c), by hand(c), PennyLane ops (a function of the `pennylane` module) or None)
def _strong_hand(n, w, ranges, gate="cnot"):
    def build(c):
        for l in range(w.shape[0]):
            for i in range(n):
                rot(c, i, w[l, i])
            for i in range(n if n > 1 else 0):
                getattr(c, gate)(i, (i + ranges[l]) % n)
    return build


CASES = {
    **{f"angle_{r}": (3, lambda c, r=r: T.angle_embedding(c, X3[:2], rotation=r),
                      lambda c, r=r: [getattr(c, "r" + r.lower())(i, X3[i]) for i in range(2)],
                      lambda pl, r=r: pl.AngleEmbedding(X3[:2], wires=range(3), rotation=r)) for r in "XYZ"},
    "angle_wires": (3, lambda c: T.angle_embedding(c, X3[:2], wires=[2, 0]),
                    lambda c: c.rx(2, X3[0]).rx(0, X3[1]),
                    lambda pl: pl.AngleEmbedding(X3[:2], wires=[2, 0])),
    "amplitude": (2, lambda c: T.amplitude_embedding(c, AMP4),
                  lambda c: c.prepare(AMP4),
                  lambda pl: pl.AmplitudeEmbedding(AMP4, wires=range(2))),
    "amplitude_normalize": (2, lambda c: T.amplitude_embedding(c, 3 * AMP4, normalize=True),
                            lambda c: c.prepare(AMP4),
                            lambda pl: pl.AmplitudeEmbedding(3 * AMP4, wires=range(2), normalize=True)),
    "amplitude_pad": (2, lambda c: T.amplitude_embedding(c, X3, pad_with=0.5),
                      lambda c: c.prepare(np.append(X3, 0.5) / np.linalg.norm(np.append(X3, 0.5))),
                      lambda pl: pl.AmplitudeEmbedding(X3, wires=range(2), pad_with=0.5)),
    "amplitude_wires": (3, lambda c: T.amplitude_embedding(c, AMP4, wires=[2, 0]),   # |a b> on wires 2, 0
                        lambda c: c.prepare(np.array([AMP4[0], AMP4[2], 0, 0, AMP4[1], AMP4[3], 0, 0])),
                        lambda pl: pl.AmplitudeEmbedding(AMP4, wires=[2, 0])),
    "iqp": (3, lambda c: T.iqp_embedding(c, X3, n_repeats=2),
            lambda c: [([c.h(i).rz(i, X3[i]) for i in range(3)],
                        [c.rzz(i, j, X3[i] * X3[j]) for i, j in itertools.combinations(range(3), 2)])
                       for _ in range(2)],
            lambda pl: pl.IQPEmbedding(X3, wires=range(3), n_repeats=2)),
    "iqp_pattern": (3, lambda c: T.iqp_embedding(c, X3, pattern=[(2, 0), (1, 2)]),
                    lambda c: ([c.h(i).rz(i, X3[i]) for i in range(3)],
                               c.rzz(2, 0, X3[2] * X3[0]), c.rzz(1, 2, X3[1] * X3[2])),
                    lambda pl: pl.IQPEmbedding(X3, wires=range(3), pattern=[[2, 0], [1, 2]])),
    **{f"basic_{n}": (3, lambda c, n=n: T.basic_entangler(c, W_BASIC[n], wires=range(n), rotation="Y"),
                      lambda c, n=n: [([c.ry(i, W_BASIC[n][l, i]) for i in range(n)],
                                       [c.cnot(a, b) for a, b in neighbours(n)]) for l in range(2)],
                      lambda pl, n=n: pl.BasicEntanglerLayers(W_BASIC[n], wires=range(n), rotation=pl.RY))
       for n in (1, 2, 3)},
    **{f"strong_{n}": (3, lambda c, n=n: T.strongly_entangling(c, W_STRONG[n], wires=range(n)),
                       _strong_hand(n, W_STRONG[n], [(l % (n - 1)) + 1 if n > 1 else 0 for l in range(3)]),
                       lambda pl, n=n: pl.StronglyEntanglingLayers(W_STRONG[n], wires=range(n)))
       for n in (1, 2, 3)},
    "strong_ranges_cz": (3, lambda c: T.strongly_entangling(c, W_STRONG[3], ranges=[2, 2, 1], imprimitive="cz"),
                         _strong_hand(3, W_STRONG[3], [2, 2, 1], "cz"),
                         lambda pl: pl.StronglyEntanglingLayers(W_STRONG[3], wires=range(3), ranges=[2, 2, 1],
                                                                imprimitive=pl.CZ)),
    "hardware_efficient": (3, lambda c: T.hardware_efficient(c, W_HE),
                           lambda c: [([c.ry(i, W_HE[l, i, 0]).rz(i, W_HE[l, i, 1]) for i in range(3)],
                                       c.cnot(0, 1), c.cnot(1, 2)) for l in range(2)],
                           None),
    "data_reuploading": (2, lambda c: T.data_reuploading(c, X3[:2], W_REUP),
                         lambda c: [([c.rx(i, X3[i]) for i in range(2)], [rot(c, i, W_REUP[l, i]) for i in range(2)],
                                     c.cz(0, 1)) for l in range(2)],
                         None),
}


def _state(n, build):
    c = qsim.Circuit(n)
    build(c)
    return np.asarray(c.state())


@functools.lru_cache(maxsize=None)
def ours(name):
    """The template's state for a case (computed once, shared by the two comparisons)."""
    n, build, _, _ = CASES[name]
    return _state(n, build)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_hand_written_gates(name):
    n, _, hand, _ = CASES[name]
    np.testing.assert_allclose(ours(name), _state(n, hand), atol=TOL)


@pytest.mark.parametrize("name", [k for k, v in CASES.items() if v[3] is not None])
def test_matches_pennylane(name):
    pl = pytest.importorskip("pennylane")
    n, _, _, pl_ops = CASES[name]

    @pl.qnode(pl.device("default.qubit", wires=n))
    def qnode():
        pl_ops(pl)
        return pl.state()

    np.testing.assert_allclose(ours(name), np.asarray(qnode()), atol=TOL)


def test_templates_return_the_circuit():
    c = qsim.Circuit(2)
    assert T.angle_embedding(c, X3[:2]) is c and T.basic_entangler(c, W_BASIC[2]) is c
    assert T.strongly_entangling(c, W_STRONG[2]) is c and T.hardware_efficient(c, W_HE[:, :2]) is c


# -- compile once: the traced program does not grow with the number of layers --------------
def _n_eqns(jaxpr):
    """Equations in a jaxpr, counting those of nested jaxprs (jit, scan, cond, custom_vjp bodies)."""
    total = 0
    for eqn in jaxpr.eqns:
        total += 1
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += _n_eqns(inner)
    return total


DEPTH_CASES = {   # template(c, w) and the weight shape for L layers
    "basic_entangler": (T.basic_entangler, lambda L: (L, 3)),
    "strongly_entangling": (T.strongly_entangling, lambda L: (L, 3, 3)),    # period 2: L = 5, 21 -> rem 1
    "hardware_efficient": (T.hardware_efficient, lambda L: (L, 3, 2)),
    "data_reuploading": (lambda c, w: T.data_reuploading(c, X3, w), lambda L: (L, 3, 3)),
}


@pytest.mark.parametrize("name", list(DEPTH_CASES))
def test_program_size_does_not_grow_with_depth(name):
    template, shape = DEPTH_CASES[name]

    def build(w):
        c = qsim.Circuit(3)
        template(c, w)
        return c

    sizes, n_ops = [], []
    for L in (5, 13, 41, 81):
        w = jnp.ones(shape(L), jnp.float32)
        sizes.append(_n_eqns(jax.make_jaxpr(lambda w: build(w).expectation(qsim.Z(0)))(w).jaxpr))
        n_ops.append(build(w).n_ops)
    # unrolled, 81 layers would trace about 16x the equations of 5. A repeat of up to 16 layers
    # is written out into the native program with ONE coefficient call vmapped over its layers
    # (L = 5, 13), a longer one runs its body in a scan (L = 41, 81: strongly_entangling repeats
    # blocks of 2 layers): either way the same equations whatever L (a couple of slack for how
    # the weights are sliced).
    assert abs(sizes[1] - sizes[0]) <= 4 and abs(sizes[3] - sizes[2]) <= 4, sizes
    assert len(set(n_ops)) == 1 and n_ops[0] <= 2


def test_strongly_entangling_traces_each_layer_kind_once():
    calls = []

    def cz(c, a, b):
        calls.append((a, b))
        c.cz(a, b)

    for L in (3, 11, 31):     # 3 wires: ranges 1, 2, 1, 2, ... (period 2), L % 2 == 1
        calls.clear()
        T.strongly_entangling(qsim.Circuit(3), jnp.ones((L, 3, 3)), imprimitive=cz)
        assert len(calls) == 3 * (2 + 1)   # one 2-layer block, one 1-layer remainder block


# -- gradients through repeat, including closed-over features -----------------------------------
def test_gradients_agree_across_methods():
    def energy(w, x, diff):                   # one wire keeps the three compilations cheap
        c = qsim.Circuit(1)
        T.data_reuploading(c, x, w)           # x is closed over by the repeated layer
        return c.expectation(qsim.Z(0) + 0.3 * qsim.X(0), diff=diff)

    x, w = jnp.asarray(X3[:1]), jnp.asarray(W_REUP[:, :1])
    ref = jax.grad(energy, argnums=(0, 1))(w, x, "backprop")
    for diff in ("adjoint", "parameter-shift"):
        got = jax.grad(energy, argnums=(0, 1))(w, x, diff)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=TOL)


def test_vmap_over_features():
    def state(x):
        return T.angle_embedding(qsim.Circuit(3), x, rotation="Y").state()

    X = jnp.asarray(RNG.uniform(-1, 1, (4, 3)), jnp.float32)
    batched = jax.jit(jax.vmap(state))(X)
    for i in range(4):
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(state(X[i])), atol=TOL)


# -- errors -------------------------------------------------------------------------------------
C3 = qsim.Circuit(3)
ERRORS = [
    (lambda: T.angle_embedding(C3, np.ones(4)), ValueError, r"angle_embedding: features must have length 3 or less"),
    (lambda: T.angle_embedding(C3, np.ones((2, 2))), ValueError, r"angle_embedding: features x must have shape"),
    (lambda: T.angle_embedding(C3, np.ones(2), rotation="W"), ValueError, r"rotation must be one of \('X', 'Y', 'Z'\)"),
    (lambda: T.angle_embedding(C3, np.ones(2, complex)), TypeError, r"features x must be real, got dtype complex"),
    (lambda: T.angle_embedding(C3, np.ones(2), wires=[0, 3]), ValueError, r"wires must be distinct ints in 0..2"),
    (lambda: T.angle_embedding(C3, np.ones(2), wires=[1, 1]), ValueError, r"wires must be distinct ints"),
    (lambda: T.amplitude_embedding(qsim.Circuit(2).h(0), AMP4), ValueError,
     r"amplitude_embedding: must be the first operation"),
    (lambda: T.amplitude_embedding(qsim.Circuit(2), 2 * AMP4), ValueError, r"must have norm 1, got norm 2"),
    (lambda: T.amplitude_embedding(qsim.Circuit(2), AMP4[:3]), ValueError, r"must have length 4 \(2\*\*2 wires\)"),
    (lambda: T.amplitude_embedding(qsim.Circuit(2), np.ones(5), pad_with=0), ValueError,
     r"must have length 4 or less to be padded, got length 5"),
    (lambda: T.iqp_embedding(C3, np.ones(2)), ValueError, r"iqp_embedding: features must have length 3"),
    (lambda: T.iqp_embedding(C3, np.ones(3), pattern=[(0, 5)]), ValueError, r"pattern must be pairs of distinct"),
    (lambda: T.iqp_embedding(C3, np.ones(3), n_repeats=0), ValueError, r"n_repeats must be a positive int"),
    (lambda: T.basic_entangler(C3, np.ones((2, 2))), ValueError,
     r"basic_entangler: weights must have shape \(L, 3\) with n = 3 wires, got shape \(2, 2\)"),
    (lambda: T.basic_entangler(C3, np.ones((0, 3))), ValueError, r"weights need at least one layer"),
    (lambda: T.strongly_entangling(C3, np.ones((2, 3))), ValueError,
     r"strongly_entangling: weights must have shape \(L, 3, 3\)"),
    (lambda: T.strongly_entangling(C3, np.ones((2, 3, 3)), ranges=[1]), ValueError,
     r"ranges must have one entry per layer \(2\), got 1"),
    (lambda: T.strongly_entangling(C3, np.ones((2, 3, 3)), ranges=[1, 3]), ValueError,
     r"ranges must not be zero nor divisible by the number of wires \(3\)"),
    (lambda: T.strongly_entangling(C3, np.ones((2, 3, 3)), imprimitive="swap"), ValueError,
     r"imprimitive must be one of \('cnot', 'cx', 'cy', 'cz'\)"),
    (lambda: T.strongly_entangling(C3, np.ones((2, 3, 3), complex)), TypeError, r"weights must be real angles"),
    (lambda: T.hardware_efficient(C3, np.ones((2, 3, 3))), ValueError,
     r"hardware_efficient: weights must have shape \(L, 3, 2\)"),
    (lambda: T.data_reuploading(C3, np.ones(4), np.ones((1, 3, 3))), ValueError,
     r"data_reuploading: features must have length 3 or less"),
    (lambda: T.data_reuploading(C3, np.ones(3), np.ones((1, 3, 2))), ValueError,
     r"data_reuploading: weights must have shape \(L, 3, 3\)"),
]


@pytest.mark.parametrize("call, exc, match", ERRORS)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
