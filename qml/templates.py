"""Circuit templates: embeddings and layered ansatze that add gates to a `qsim.Circuit`.

Every template acts on ONE sample (batch with `jax.vmap`, or use
`qml.QuantumLayer`), adds its gates to ``c`` and returns ``c``. ``wires``
defaults to all wires of the circuit, in order. Those that PennyLane also has
match it gate for gate, with the same weight shapes, so a model ported from
PennyLane gives the same state:

=======================  ===============================  ====================
qml.templates            PennyLane                        weights
=======================  ===============================  ====================
angle_embedding          AngleEmbedding                   -
amplitude_embedding      AmplitudeEmbedding               -
iqp_embedding            IQPEmbedding                     -
basic_entangler          BasicEntanglerLayers             (L, n)
strongly_entangling      StronglyEntanglingLayers         (L, n, 3)
hardware_efficient       -                                (L, n, 2)
data_reuploading         -                                (L, n, 3)
=======================  ===============================  ====================

Layered templates build their layers with `Circuit.repeat` (one `lax.scan`),
so jit compile time does not grow with the number of layers.
PennyLane's ``Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)`` is applied
as ``rz(phi)``, ``ry(theta)``, ``rz(omega)``; ``MultiRZ`` on two wires is ``rzz``.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["amplitude_embedding", "angle_embedding", "basic_entangler", "data_reuploading",
           "hardware_efficient", "iqp_embedding", "strongly_entangling"]

_ROTATIONS = ("X", "Y", "Z")
_IMPRIMITIVES = ("cnot", "cx", "cy", "cz")


# -- input checks -----------------------------------------------------------
def _wires(c, wires, where):
    if wires is None:
        return tuple(range(c.n_qubits))
    try:
        out = tuple(int(w) for w in np.atleast_1d(np.asarray(wires)).tolist())
    except (TypeError, ValueError):
        raise TypeError(f"{where}: wires must be a sequence of ints, got {wires!r}") from None
    bad = [w for w in out if not 0 <= w < c.n_qubits]
    if not out or bad or len(set(out)) != len(out):
        raise ValueError(f"{where}: wires must be distinct ints in 0..{c.n_qubits - 1} (a {c.n_qubits}-qubit "
                         f"circuit), got {list(out)}")
    return out


def _features(x, where, *, allow_complex=False):
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{where}: features x must have shape (n_features,) for ONE sample (vmap over a batch), "
                         f"got shape {x.shape}")
    if not allow_complex and not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)
                                  or x.dtype == jnp.bool_):
        raise TypeError(f"{where}: features x must be real, got dtype {x.dtype}")
    return x


def _weights(w, shape, where):
    """Check ``w`` against ``shape`` (None matches any length); ``shape`` names the axes for the message."""
    w = jnp.asarray(w)
    names = {0: "L", 1: "n"}
    ok = w.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, w.shape))
    if not ok:
        want = ", ".join(names[i] if s is None else str(s) for i, s in enumerate(shape))
        raise ValueError(f"{where}: weights must have shape ({want}) with n = {shape[1]} wires, got shape {w.shape}")
    if w.shape[0] == 0:
        raise ValueError(f"{where}: weights need at least one layer, got shape {w.shape}")
    if jnp.iscomplexobj(w):
        raise TypeError(f"{where}: weights must be real angles, got dtype {w.dtype}")
    return w


def _rotation(rotation, where):
    if rotation not in _ROTATIONS:
        raise ValueError(f"{where}: rotation must be one of {_ROTATIONS}, got {rotation!r}")
    return rotation


def _rotation_features(c, x, wires, rotation, where):
    """Checked ``(rotation, wires, x)`` for one rotation per feature on ``wires`` (at most one per wire)."""
    rotation = _rotation(rotation, where)
    wires = _wires(c, wires, where)
    x = _features(x, where)
    if x.shape[0] > len(wires):
        raise ValueError(f"{where}: features must have length {len(wires)} or less (one per wire), got length "
                         f"{x.shape[0]}")
    return rotation, wires, x


def _rotate(c, rotation, wire, angle):
    {"X": c.rx, "Y": c.ry, "Z": c.rz}[rotation](wire, angle)


def _rot(c, wire, w):
    """PennyLane's ``Rot(w[0], w[1], w[2]) = RZ(w[2]) RY(w[1]) RZ(w[0])``."""
    c.rz(wire, w[0]).ry(wire, w[1]).rz(wire, w[2])


def _ring(c, wires, gate="cnot"):
    """Entangle neighbours as BasicEntanglerLayers does: none (n=1), one gate (n=2), a closed ring (n>2)."""
    n = len(wires)
    pairs = [] if n == 1 else [(wires[0], wires[1])] if n == 2 else [(wires[i], wires[(i + 1) % n]) for i in range(n)]
    for a, b in pairs:
        getattr(c, gate)(a, b)


# -- embeddings -------------------------------------------------------------
def angle_embedding(c, x, wires=None, rotation="X"):
    """Encode feature ``x[i]`` as a rotation angle on ``wires[i]`` (PennyLane ``AngleEmbedding``).

    Args:
      c: the circuit. x: features, shape ``(f,)`` real, ``f <= len(wires)`` (only the first ``f`` wires are used).
      wires: the wires (default: all). rotation: ``"X"``, ``"Y"`` or ``"Z"`` (``rx``/``ry``/``rz``).

    Returns: ``c``. Raises: ValueError for too many features or an unknown rotation; TypeError for complex x.

    Example: ``angle_embedding(qsim.Circuit(2), jnp.array([0.1, 0.2]), rotation="Y")``
    """
    where = "angle_embedding"
    rotation, wires, x = _rotation_features(c, x, wires, rotation, where)
    for i in range(x.shape[0]):
        _rotate(c, rotation, wires[i], x[i])
    return c


def amplitude_embedding(c, x, wires=None, pad_with=None, normalize=False):
    """Start the circuit in the state whose amplitudes are ``x`` (PennyLane ``AmplitudeEmbedding``).

    ``|psi> = sum_j x_j |j>`` on ``wires`` (``wires[0]`` the most significant bit of ``j``), the
    other wires in ``|0>``. Uses `Circuit.prepare`, so it must come before any gate.

    Args:
      x: shape ``(2**len(wires),)`` real or complex; shorter when ``pad_with`` is given.
      pad_with: pad ``x`` with this constant up to ``2**len(wires)`` (then ``x`` is normalised, as in PennyLane).
      normalize: divide ``x`` by its norm; if False a concrete ``x`` must have norm 1.

    Returns: ``c``. Raises: ValueError if a gate was already added, for a wrong length or a norm != 1.
    """
    where = "amplitude_embedding"
    if c.n_ops:
        raise ValueError(f"{where}: must be the first operation of the circuit (it sets the initial state); "
                         f"the circuit already has {c.n_ops} operation(s)")
    wires = _wires(c, wires, where)
    x = _features(x, where, allow_complex=True)
    dim = 1 << len(wires)
    if pad_with is None and x.shape[0] != dim:
        raise ValueError(f"{where}: features must have length {dim} (2**{len(wires)} wires), got length "
                         f"{x.shape[0]}; use pad_with to pad shorter inputs")
    if x.shape[0] > dim:
        raise ValueError(f"{where}: features must have length {dim} or less to be padded, got length {x.shape[0]}")
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    if pad_with is not None:
        x, normalize = jnp.concatenate([x, jnp.full((dim - x.shape[0],), pad_with, x.dtype)]), True
    norm = jnp.linalg.norm(x)
    if normalize:
        x = x / norm
    elif not isinstance(norm, jax.core.Tracer):
        tol = 1e-10 if jnp.finfo(x.dtype).bits == 64 else 1e-5
        if abs(float(norm) - 1.0) > tol:
            raise ValueError(f"{where}: features must have norm 1, got norm {float(norm):.6g}; "
                             "use normalize=True to normalise them")
    n = c.n_qubits
    bits = (np.arange(dim)[:, None] >> np.arange(len(wires) - 1, -1, -1)) & 1
    index = bits @ (1 << (n - 1 - np.asarray(wires)))            # basis index of each amplitude
    state = jnp.zeros((1 << n,), c.dtype).at[index].set(x.astype(c.dtype))
    return c.prepare(state)


def iqp_embedding(c, x, wires=None, n_repeats=1, pattern=None):
    """IQP-style diagonal embedding (PennyLane ``IQPEmbedding``), repeated ``n_repeats`` times.

    Each repetition: ``h`` then ``rz(x[i])`` on every wire ``wires[i]``, then
    ``rzz(x[i] * x[j])`` (= ``MultiRZ``) on each wire pair of ``pattern``
    (default: all pairs ``itertools.combinations(wires, 2)``).

    Args:
      x: shape ``(len(wires),)`` real. pattern: sequence of wire pairs ``(a, b)`` from ``wires``.

    Returns: ``c``. Raises: ValueError for a wrong feature count or a pattern wire outside ``wires``.
    """
    where = "iqp_embedding"
    wires = _wires(c, wires, where)
    x = _features(x, where)
    if x.shape[0] != len(wires):
        raise ValueError(f"{where}: features must have length {len(wires)} (one per wire), got length {x.shape[0]}")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ValueError(f"{where}: n_repeats must be a positive int, got {n_repeats!r}")
    pattern = tuple(itertools.combinations(wires, 2)) if pattern is None else tuple(tuple(p) for p in pattern)
    if any(len(p) != 2 or p[0] not in wires or p[1] not in wires or p[0] == p[1] for p in pattern):
        raise ValueError(f"{where}: pattern must be pairs of distinct wires from {list(wires)}, got {pattern}")
    idx = [(wires.index(a), wires.index(b)) for a, b in pattern]

    def layer(c, _):
        for i, w in enumerate(wires):
            c.h(w).rz(w, x[i])
        for (a, b), (i, j) in zip(pattern, idx):
            c.rzz(a, b, x[i] * x[j])

    return c.repeat(layer, jnp.zeros((n_repeats,)))


# -- layered ansatze ----------------------------------------------------------
def basic_entangler(c, weights, wires=None, rotation="X"):
    """Layers of one rotation per wire and a CNOT ring (PennyLane ``BasicEntanglerLayers``).

    Layer l: ``r(weights[l, i])`` on ``wires[i]`` (``r`` = ``rx``/``ry``/``rz``), then
    ``cnot(wires[i], wires[(i+1) % n])`` for all i if n > 2, one ``cnot`` if n == 2, none if n == 1.

    Args: weights: shape ``(L, n)`` with n = len(wires). Returns: ``c``. Raises: ValueError for a wrong shape.
    """
    where = "basic_entangler"
    rotation = _rotation(rotation, where)
    wires = _wires(c, wires, where)
    weights = _weights(weights, (None, len(wires)), where)

    def layer(c, w):
        for i, wire in enumerate(wires):
            _rotate(c, rotation, wire, w[i])
        _ring(c, wires)

    return c.repeat(layer, weights)


def _ranges(ranges, n_layers, n, where):
    if ranges is None:
        return tuple((l % (n - 1)) + 1 for l in range(n_layers)) if n > 1 else (0,) * n_layers
    ranges = tuple(int(r) for r in ranges)
    if len(ranges) != n_layers:
        raise ValueError(f"{where}: ranges must have one entry per layer ({n_layers}), got {len(ranges)}")
    if n > 1 and any(r % n == 0 for r in ranges):
        raise ValueError(f"{where}: ranges must not be zero nor divisible by the number of wires ({n}), "
                         f"got {list(ranges)}")
    return ranges


def _period(seq):
    """The smallest p with ``seq[i] == seq[i % p]`` for all i."""
    return next(p for p in range(1, len(seq) + 1) if all(s == seq[i % p] for i, s in enumerate(seq)))


def strongly_entangling(c, weights, wires=None, ranges=None, imprimitive="cnot"):
    """Strongly entangling layers (PennyLane ``StronglyEntanglingLayers``, Schuld et al. 2020).

    Layer l: ``Rot(*weights[l, i])`` = ``rz, ry, rz`` on ``wires[i]``; then, if n > 1,
    ``imprimitive(wires[i], wires[(i + r_l) % n])`` for i = 0..n-1, with the default
    ranges ``r_l = (l % (n - 1)) + 1`` (PennyLane's).

    Compile once: the ranges repeat with some period p (n - 1 by default), so p
    consecutive layers form one block applied ``L // p`` times by `Circuit.repeat`
    (plus one block for the ``L % p`` remaining layers); the traced program does
    not grow with L.

    Args:
      weights: shape ``(L, n, 3)`` Rot angles ``(phi, theta, omega)``.
      ranges: optional sequence of L ints, none divisible by n.
      imprimitive: ``"cnot"`` (alias ``"cx"``), ``"cz"``, ``"cy"``, or a callable ``f(c, wire_a, wire_b)``.

    Returns: ``c``. Raises: ValueError for a wrong shape, bad ranges or an unknown imprimitive.
    """
    where = "strongly_entangling"
    wires = _wires(c, wires, where)
    n = len(wires)
    weights = _weights(weights, (None, n, 3), where)
    n_layers = weights.shape[0]
    ranges = _ranges(ranges, n_layers, n, where)
    if not callable(imprimitive) and imprimitive not in _IMPRIMITIVES:
        raise ValueError(f"{where}: imprimitive must be one of {_IMPRIMITIVES} or a callable f(c, a, b), "
                         f"got {imprimitive!r}")
    entangle = imprimitive if callable(imprimitive) else (lambda c, a, b: getattr(c, imprimitive)(a, b))

    def block(rs):
        def apply(c, w):                              # w: (len(rs), n, 3)
            for j, r in enumerate(rs):
                for i, wire in enumerate(wires):
                    _rot(c, wire, w[j, i])
                for i in range(n if n > 1 else 0):
                    entangle(c, wires[i], wires[(i + r) % n])
        return apply

    p = _period(ranges)
    q, rem = divmod(n_layers, p)
    if q:
        c.repeat(block(ranges[:p]), weights[:q * p].reshape(q, p, n, 3))
    if rem:
        c.repeat(block(ranges[:rem]), weights[q * p:][None])
    return c


def hardware_efficient(c, weights, wires=None):
    """Hardware-efficient ansatz: ``ry(w[l,i,0])``, ``rz(w[l,i,1])`` on each wire, then a CNOT chain.

    Layer l: ``ry``, ``rz`` on ``wires[i]``; then ``cnot(wires[i], wires[i+1])`` for i = 0..n-2.

    Args: weights: shape ``(L, n, 2)``. Returns: ``c``. Raises: ValueError for a wrong shape.
    """
    where = "hardware_efficient"
    wires = _wires(c, wires, where)
    weights = _weights(weights, (None, len(wires), 2), where)

    def layer(c, w):
        for i, wire in enumerate(wires):
            c.ry(wire, w[i, 0]).rz(wire, w[i, 1])
        for a, b in zip(wires[:-1], wires[1:]):
            c.cnot(a, b)

    return c.repeat(layer, weights)


def data_reuploading(c, x, weights, wires=None, rotation="X"):
    """Data re-uploading circuit (Perez-Salinas et al., Quantum 4, 226 (2020)): encode, rotate, entangle, repeat.

    Layer l (of L):
      1. encode: ``angle_embedding(c, x, wires, rotation)`` (``x[i]`` on ``wires[i]``);
      2. train: ``Rot(*weights[l, i])`` = ``rz, ry, rz`` on each wire ``wires[i]``;
      3. entangle: ``cz`` between neighbours as in `basic_entangler` (none if n = 1,
         one if n = 2, a ring if n > 2).
    Uploading ``x`` L times lets the model represent Fourier series of degree L in
    each feature, where a single encoding gives degree 1.

    Args:
      x: features, shape ``(f,)`` real, ``f <= len(wires)``. weights: shape ``(L, n, 3)``.

    Returns: ``c``. Raises: ValueError for wrong shapes.
    """
    where = "data_reuploading"
    rotation, wires, x = _rotation_features(c, x, wires, rotation, where)
    weights = _weights(weights, (None, len(wires), 3), where)

    def layer(c, w):
        for i in range(x.shape[0]):
            _rotate(c, rotation, wires[i], x[i])
        for i, wire in enumerate(wires):
            _rot(c, wire, w[i])
        _ring(c, wires, "cz")

    return c.repeat(layer, weights)
