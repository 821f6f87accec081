"""qml.QuantumLayer (NNX) and qml.linen.QuantumLayer: values, transforms, training, checkpoints, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import qsim
from flax import nnx

import qml

TOL = 1e-5            # complex64 (the layers' default dtype)
N, F = 2, 2           # qubits, features (small: XLA:CPU compile time grows with the gate count)
SHAPES = {"layers": (2, N, 3), "bias": (N,)}
OBS = [qsim.Z(0), qsim.Z(0) @ qsim.Z(1), 0.5 * qsim.X(0) + qsim.Y(1)]
TRACES = []           # one entry per call of `circuit` (i.e. per trace under jit / vmap)


def circuit(c, x, w):
    TRACES.append(1)
    qml.templates.angle_embedding(c, x, rotation="Y")
    qml.templates.strongly_entangling(c, w["layers"])
    for i in range(N):
        c.rz(i, w["bias"][i])


def by_hand(x, w):
    """The same circuit written gate by gate, for one sample: expectations (len(OBS),)."""
    c = qsim.Circuit(N)
    for i in range(N):
        c.ry(i, x[i])
    for l in range(2):                  # two wires: every range is 1, so cnot(0, 1) then cnot(1, 0)
        for i in range(N):
            c.rz(i, w["layers"][l, i, 0]).ry(i, w["layers"][l, i, 1]).rz(i, w["layers"][l, i, 2])
        c.cnot(0, 1).cnot(1, 0)
    for i in range(N):
        c.rz(i, w["bias"][i])
    return np.asarray(c.expectation(OBS))


def make(diff="backprop", seed=0, **kw):
    return qml.QuantumLayer(circuit, N, SHAPES, OBS, rngs=nnx.Rngs(seed), diff=diff, **kw)


# One jitted forward pass for every layer built by `make`: their graphdefs are equal, so it compiles
# once per input shape (an eager call would re-trace the circuit every time).
forward = nnx.jit(lambda layer, x: layer(x))


def weights(layer):
    return {k: np.asarray(v[...]) for k, v in layer.weights.items()}


@pytest.fixture(scope="module")
def x():
    return jnp.asarray(np.random.default_rng(1).uniform(-2, 2, (4, F)), jnp.float32)


def test_values_and_shapes(x):
    layer = make()
    y = forward(layer, x)
    assert y.shape == (4, len(OBS)) and y.dtype == jnp.float32
    w = weights(layer)
    ref = np.stack([by_hand(np.asarray(xi), w) for xi in x])
    np.testing.assert_allclose(np.asarray(y), ref, atol=TOL)
    y1 = layer(x[1])                                                            # one sample, eager: (n_obs,)
    assert y1.shape == (len(OBS),)
    np.testing.assert_allclose(np.asarray(y1), ref[1], atol=TOL)


def test_single_observable_gives_no_output_axis(x):
    layer = qml.QuantumLayer(circuit, N, SHAPES, qsim.Z(0), rngs=nnx.Rngs(0))
    y = layer(x)
    assert y.shape == (4,)
    np.testing.assert_allclose(np.asarray(y), np.asarray(forward(make(), x))[:, 0], atol=TOL)


def test_weights_are_params_with_default_init():
    layer = make(seed=3)
    params = nnx.state(layer, nnx.Param)
    leaves = jax.tree.leaves(params)
    assert sorted(a.shape for a in leaves) == sorted(SHAPES.values())
    for a in leaves:
        assert a.dtype == jnp.float32 and 0 <= float(a.min()) and float(a.max()) < 2 * np.pi
    assert not np.allclose(weights(make(seed=3))["layers"], weights(make(seed=4))["layers"])


def test_custom_init():
    calls = []

    def init(key, shape, dtype):
        calls.append((shape, dtype))
        return jnp.full(shape, 0.25, dtype)

    layer = make(init=init)
    assert sorted(calls) == sorted((s, np.dtype(np.float32)) for s in SHAPES.values())
    assert np.all(weights(layer)["layers"] == 0.25)


def test_nnx_matches_linen(x):
    nnx_layer = make()
    linen_layer = qml.linen.QuantumLayer(circuit, N, SHAPES, OBS)
    variables = linen_layer.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, variables) == {"params": SHAPES}
    assert float(variables["params"]["layers"].min()) >= 0             # same default init range
    variables = {"params": {k: jnp.asarray(v) for k, v in weights(nnx_layer).items()}}
    np.testing.assert_allclose(np.asarray(linen_layer.apply(variables, x)), np.asarray(forward(nnx_layer, x)),
                               atol=TOL)


def test_linen_init_and_jit(x):
    layer = qml.linen.QuantumLayer(circuit, N, SHAPES, OBS, weight_init=lambda k, s, d: jnp.ones(s, d))
    variables = layer.init(jax.random.key(0), x)
    assert np.all(np.asarray(variables["params"]["bias"]) == 1)
    np.testing.assert_allclose(np.asarray(jax.jit(layer.apply)(variables, x)),
                               np.asarray(layer.apply(variables, x)), atol=TOL)


def test_training_decreases_loss_and_compiles_once(x):
    model = nnx.Sequential(nnx.Linear(F, F, rngs=nnx.Rngs(0)), make(), nnx.Linear(len(OBS), 1, rngs=nnx.Rngs(1)))
    target = jnp.asarray([[0.5], [-0.5], [0.2], [-0.3]])
    optimizer = nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param)

    def loss_fn(model):
        return jnp.mean((model(x) - target) ** 2)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    TRACES.clear()
    losses = [float(step(model, optimizer)) for _ in range(30)]   # new weights every call
    assert len(TRACES) == 1
    assert losses[-1] < 0.3 * losses[0]


def test_split_merge_state_roundtrip(x):
    layer = make()
    graphdef, state = nnx.split(layer)
    restored = nnx.merge(graphdef, jax.tree.map(jnp.array, state))
    y = np.asarray(forward(layer, x))
    np.testing.assert_array_equal(np.asarray(forward(restored, x)), y)
    params = nnx.state(layer, nnx.Param)
    other = make(seed=7)
    assert not np.allclose(np.asarray(forward(other, x)), y)
    nnx.update(other, params)                # load a checkpoint into a fresh layer
    np.testing.assert_array_equal(np.asarray(forward(other, x)), y)


def _grads(layer, x):
    g = nnx.grad(lambda m: jnp.sum(jnp.sin(m(x))))(layer)
    return {k: np.asarray(v[...]) for k, v in g["weights"].items()}


@pytest.fixture(scope="module")
def backprop_grads(x):
    return _grads(make(), x)


@pytest.mark.parametrize("diff", ["adjoint", "parameter-shift"])
def test_diff_methods_match_backprop(diff, x, backprop_grads):
    g = _grads(make(diff=diff), x)
    for k in SHAPES:
        np.testing.assert_allclose(g[k], backprop_grads[k], atol=TOL)


@pytest.mark.skipif(not jax.config.jax_enable_x64, reason="complex128 needs jax_enable_x64")
def test_complex128(x):
    layer = make(dtype=jnp.complex128)
    assert jax.tree.leaves(nnx.state(layer, nnx.Param))[0].dtype == jnp.float64
    y = forward(layer, x)
    assert y.dtype == jnp.float64
    ref = np.stack([by_hand(np.asarray(xi), weights(layer)) for xi in x])
    np.testing.assert_allclose(np.asarray(y), ref, atol=TOL)


# -- errors --------------------------------------------------------------------
@pytest.mark.parametrize("bad, exc, match", [
    (np.ones((2, 2, F)), ValueError, r"inputs must have shape \(batch, 2\) or \(2,\), got shape \(2, 2, 2\)"),
    (np.ones((2, 4)), ValueError, r"inputs must have shape \(batch, 2\) or \(2,\), got shape \(2, 4\)"),
    (np.float32(1.0), ValueError, r"inputs must have shape .*, got shape \(\)"),
    (np.ones((2, F), np.complex64), TypeError, r"inputs must be a real array"),
    ("abc", TypeError, r"inputs must be a real array"),
])
@pytest.mark.parametrize("kind", ["nnx", "linen"])
def test_bad_inputs(bad, exc, match, kind):
    if kind == "nnx":
        layer = make(n_inputs=F)
        with pytest.raises(exc, match="QuantumLayer: " + match):
            layer(bad)
    else:
        layer = qml.linen.QuantumLayer(circuit, N, SHAPES, OBS, n_inputs=F)
        with pytest.raises(exc, match="linen.QuantumLayer: " + match):
            layer.init(jax.random.key(0), bad)


def test_rank_checked_without_n_inputs():
    with pytest.raises(ValueError, match=r"shape \(batch, n_inputs\) or \(n_inputs,\), got shape \(1, 1, 2\)"):
        make()(np.ones((1, 1, F)))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(diff="finite-diff"), ValueError, r"diff must be one of \('backprop', 'adjoint', 'parameter-shift'\)"),
    (dict(observables=["Z0"]), TypeError, r"observables must be a qsim.PauliSum or a non-empty list"),
    (dict(observables=[]), TypeError, r"observables must be a qsim.PauliSum or a non-empty list"),
    (dict(observables=[qsim.Z(5)]), ValueError, r"an observable acts on wire 5, out of range for n_qubits=2"),
    (dict(weight_shapes=[(2, 2, 3)]), TypeError, r"weight_shapes must be a dict"),
    (dict(weight_shapes={"w": "abc"}), TypeError, r"weight_shapes\['w'\] must be a tuple of ints"),
    (dict(n_qubits=0), ValueError, r"n_qubits must be a positive int, got 0"),
    (dict(circuit="not callable"), TypeError, r"circuit must be a callable"),
    (dict(dtype=jnp.int32), TypeError, r"dtype must be jnp.complex64 or jnp.complex128"),
    (dict(n_qubits=2.5), TypeError, r"n_qubits must be a positive int, got 2.5 of type float"),
    (dict(n_inputs=-1), ValueError, r"n_inputs must be a positive int or None, got -1"),
    (dict(init=3), TypeError, r"init must be a callable"),
    (dict(rngs=0), TypeError, r"rngs must be an nnx.Rngs"),
])
def test_bad_arguments(kwargs, exc, match):
    args = dict(circuit=circuit, n_qubits=N, weight_shapes=SHAPES, observables=OBS, rngs=nnx.Rngs(0)) | kwargs
    with pytest.raises(exc, match="QuantumLayer: " + match):
        qml.QuantumLayer(**args)


def test_circuit_returning_junk():
    layer = qml.QuantumLayer(lambda c, x, w: 1.0, 1, {}, [qsim.Z(0)], rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"circuit\(c, x, w\) must add gates to c and return None"):
        layer(np.ones((2, 1)))
