"""Pauli observables: ``X(0) @ Z(2)``, sums, scalar multiples, and their expectation.

A `PauliSum` is a pytree: the Pauli words are static (a tuple of words, each a
sorted tuple of ``(wire, "X"|"Y"|"Z")``; the empty word is the identity), the
coefficients are a traced leaf. Products of Paulis on the same wire are reduced
with the Pauli algebra (``X @ Y = iZ``).

The expectation never builds a dense matrix. For a word P with flip mask m
(the X and Y wires) and sign mask s (the Y and Z wires),
``<psi|P|psi> = (-i)^{#Y} sum_b conj(psi_b) psi_{b^m} (-1)^{b.s}``.
Coefficients may be complex (``X @ Y = iZ``), but `Circuit.expectation` needs a
Hermitian sum: with concrete coefficients, a word whose merged coefficient is not
real is a ``ValueError`` (`check_hermitian`); traced coefficients are not checked,
and the value is then that of the Hermitian part ``(H + H^dagger) / 2``.

Terms are grouped by flip mask: each group costs one flipped copy and one
product, and each term one fused signed reduction over it; all Z-only terms
share the probabilities.
"""

from __future__ import annotations

import numbers
import re

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import is_concrete
from .backends.xla import split_shape

_PRODUCT = {  # (a, b) -> (phase, c) with a @ b = phase * c
    ("X", "X"): (1, ""), ("Y", "Y"): (1, ""), ("Z", "Z"): (1, ""),
    ("X", "Y"): (1j, "Z"), ("Y", "X"): (-1j, "Z"),
    ("Y", "Z"): (1j, "X"), ("Z", "Y"): (-1j, "X"),
    ("Z", "X"): (1j, "Y"), ("X", "Z"): (-1j, "Y"),
}


def _word_product(w1, w2):
    ops, phase = dict(w1), 1
    for wire, p in w2:
        if wire in ops:
            f, q = _PRODUCT[(ops[wire], p)]
            phase *= f
            if q:
                ops[wire] = q
            else:
                del ops[wire]
        else:
            ops[wire] = p
    return phase, tuple(sorted(ops.items()))


@jax.tree_util.register_pytree_node_class
class PauliSum:
    """A linear combination of Pauli words (words static, coefficients traced).

    Products may give complex coefficients (``X(0) @ Y(0)`` is ``1j * Z(0)``); an
    observable passed to `Circuit.expectation` must be Hermitian (real coefficients
    once equal words are merged).
    """

    __array_priority__ = 1000  # so numpy scalars defer to our operators

    def __init__(self, words, coeffs):
        self.words = tuple(words)
        self.coeffs = coeffs if isinstance(coeffs, jax.Array) else jnp.asarray(coeffs)
        if self.coeffs.shape != (len(self.words),):
            raise ValueError(f"PauliSum: {len(self.words)} words need {len(self.words)} coefficients, "
                             f"got shape {self.coeffs.shape}")

    # -- pytree
    def tree_flatten(self):
        return (self.coeffs,), self.words

    @classmethod
    def tree_unflatten(cls, words, children):
        obj = object.__new__(cls)
        obj.words, obj.coeffs = words, children[0]
        return obj

    # -- algebra
    def __add__(self, other):
        other = _as_sum(other, "+")
        return PauliSum(self.words + other.words, jnp.concatenate([self.coeffs, other.coeffs]))

    __radd__ = __add__

    def __neg__(self):
        return PauliSum(self.words, -self.coeffs)

    def __sub__(self, other):
        return self + (-_as_sum(other, "-"))

    def __rsub__(self, other):
        return _as_sum(other, "-") + (-self)

    def __mul__(self, scalar):
        if isinstance(scalar, PauliSum):
            raise TypeError("PauliSum: use @ for the product of two observables, * is for scalars")
        if not _is_scalar(scalar):
            return NotImplemented
        return PauliSum(self.words, self.coeffs * scalar)

    __rmul__ = __mul__

    def __truediv__(self, scalar):
        if not _is_scalar(scalar):
            return NotImplemented
        return PauliSum(self.words, self.coeffs / scalar)

    def __matmul__(self, other):
        if not isinstance(other, PauliSum):
            return NotImplemented
        words, coeffs = [], []
        for i, w1 in enumerate(self.words):
            for j, w2 in enumerate(other.words):
                phase, w = _word_product(w1, w2)
                words.append(w)
                coeffs.append(self.coeffs[i] * other.coeffs[j] * phase)
        return PauliSum(words, jnp.stack(coeffs))

    def simplify(self) -> "PauliSum":
        """Merge equal words (coefficients added), drop nothing else."""
        index = {}
        for w in self.words:
            index.setdefault(w, len(index))
        seg = jnp.asarray([index[w] for w in self.words])
        coeffs = jax.ops.segment_sum(self.coeffs, seg, num_segments=len(index))
        return PauliSum(tuple(index), coeffs)

    @property
    def wires(self) -> tuple[int, ...]:
        return tuple(sorted({w for word in self.words for w, _ in word}))

    def __repr__(self):
        try:
            cs = np.asarray(self.coeffs)
        except Exception:  # traced coefficients
            return f"PauliSum({[_word_str(w) for w in self.words]})"
        terms = []
        for c, w in zip(cs, self.words):
            sign, mag = _coeff_str(c)
            terms.append(f"{'-' if sign < 0 else '+'} {mag} {_word_str(w)}")
        text = " ".join(terms)                       # "+ 0.5 Z0 - 1.2 I": drop the leading "+ ", keep a "-"
        return f"PauliSum({text[2:] if text.startswith('+ ') else '-' + text[2:] if text else ''})"

    def matrix(self, n_qubits: int):
        """The dense ``(2**n, 2**n)`` matrix on ``n_qubits`` wires (wire 0 the most significant bit),
        for checking a Hamiltonian by hand at small n; refuses more than 14 wires (4 GiB)."""
        if isinstance(n_qubits, bool) or not isinstance(n_qubits, (int, np.integer)) or n_qubits < 1:
            raise ValueError(f"PauliSum.matrix: n_qubits must be a positive int, got {n_qubits!r}")
        if self.wires and self.wires[-1] >= n_qubits:
            raise ValueError(f"PauliSum.matrix: the sum acts on wire {self.wires[-1]}, out of range for "
                             f"n_qubits={n_qubits} (allowed 0..{n_qubits - 1})")
        if n_qubits > 14:
            raise ValueError(f"PauliSum.matrix: a dense matrix on {n_qubits} wires would take "
                             f"{16 * 4.0 ** n_qubits / 2 ** 30:.0f} GiB; use n_qubits <= 14 (or expectation())")
        dim = 1 << n_qubits
        idx = np.arange(dim)
        dtype = jnp.result_type(self.coeffs.dtype, jnp.complex64)
        out = jnp.zeros((dim, dim), dtype)
        for c, word in zip(self.coeffs, self.words):   # P|j> = phase(j) |j ^ flip>: no Kronecker products
            flip, phase = 0, np.ones(dim, complex)
            for w, p in word:
                bit = (idx >> (n_qubits - 1 - w)) & 1
                if p in "XY":
                    flip |= 1 << (n_qubits - 1 - w)
                if p == "Z":
                    phase = phase * (1 - 2 * bit)
                elif p == "Y":
                    phase = phase * 1j * (1 - 2 * bit)
            out = out.at[idx ^ flip, idx].add(c * jnp.asarray(phase, dtype))
        return out

    @staticmethod
    def from_string(text: str) -> "PauliSum":
        """Parse ``"0.5 Z0 Z1 + 0.3 X2 - 1.2"`` (also ``Z0*Z1``, ``0.5*Z0@Z1``, ``I``, ``Y3``)."""
        return _parse(text)


def _word_str(w):
    return " ".join(f"{p}{q}" for q, p in w) or "I"


def _coeff_str(c):
    """``(sign, magnitude text)`` of a coefficient: ``-1.2`` -> ``(-1, "1.2")``, ``1j`` -> ``(1, "1j")``."""
    c = complex(c)
    re_, im = c.real + 0.0, c.imag + 0.0            # + 0.0 turns -0.0 into 0.0
    if im == 0:
        return (-1 if re_ < 0 else 1), f"{abs(re_):g}"
    if re_ == 0:
        return (-1 if im < 0 else 1), f"{abs(im):g}j"
    return 1, f"({re_:g}{im:+g}j)"


def check_hermitian(obs, where, name="obs"):
    """Raise ``ValueError`` if concrete coefficients leave ``obs`` non-Hermitian.

    Equal words are merged first (``i Z0 - i Z0`` is 0); a merged coefficient whose
    imaginary part exceeds 1e-5 (complex64) or 1e-10 (complex128) times the largest
    coefficient's size (at least 1) is not real. Traced coefficients are not checked.
    """
    if not jnp.iscomplexobj(obs.coeffs) or not is_concrete(obs.coeffs):
        return
    cs = np.asarray(obs.coeffs)
    merged: dict[tuple, complex] = {}
    for w, c in zip(obs.words, cs):
        merged[w] = merged.get(w, 0) + complex(c)
    tol = (1e-5 if cs.dtype == np.complex64 else 1e-10) * max(1.0, float(np.abs(cs).max(initial=0)))
    bad = [(w, c) for w, c in merged.items() if abs(c.imag) > tol]
    if bad:
        w, c = bad[0]
        sign, mag = _coeff_str(c)
        raise ValueError(f"{where}: {name} is not Hermitian: {_word_str(w)} has the complex coefficient "
                         f"{'-' if sign < 0 else ''}{mag} (after merging equal words), and an observable needs "
                         "real ones (a product of Paulis on one wire carries a phase: X(0) @ Y(0) is 1j Z0, "
                         "so -1j * (X(0) @ Y(0)) is Z0)")


def _is_scalar(x):
    return isinstance(x, numbers.Number) or (hasattr(x, "shape") and getattr(x, "shape") == ())


def _as_sum(x, op):
    if isinstance(x, PauliSum):
        return x
    if _is_scalar(x):
        return PauliSum(((),), jnp.asarray([x]))
    raise TypeError(f"PauliSum: cannot combine with {type(x).__name__} using {op}; "
                    "use another observable or a scalar")


def _single(p, wire):
    if isinstance(wire, bool) or not isinstance(wire, (numbers.Integral, np.integer)):
        raise TypeError(f"{p}: wire must be a non-negative int, got {wire!r} of type {type(wire).__name__}")
    if wire < 0:
        raise ValueError(f"{p}: wire must be a non-negative int, got {wire!r}")
    word = () if p == "I" else ((int(wire), p),)
    return PauliSum((word,), jnp.asarray([1.0]))


def X(wire):
    """Pauli X on ``wire``."""
    return _single("X", wire)


def Y(wire):
    """Pauli Y on ``wire``."""
    return _single("Y", wire)


def Z(wire):
    """Pauli Z on ``wire``."""
    return _single("Z", wire)


def I(wire=0):  # noqa: E743 - the conventional name
    """The identity (on ``wire``; the wire does not matter)."""
    return _single("I", wire)


_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<pauli>[IXYZ])(?P<wire>\d+)?"
                    r"|(?P<op>[+\-*@]))")


def _parse(text):
    if not isinstance(text, str):
        raise TypeError(f"PauliSum.from_string: expected a str, got {type(text).__name__}")
    terms, coeff, word, sign, seen, pos = [], None, [], 1.0, False, 0
    text = text.strip()

    def close(at):
        if not seen:
            raise ValueError(f"PauliSum.from_string: empty term at position {at} in {text!r}")
        terms.append((sign * (1.0 if coeff is None else coeff), word))

    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"PauliSum.from_string: unexpected {text[pos:pos + 10]!r} at position {pos} "
                             f"in {text!r}; terms look like '0.5 Z0 Z1', '-1.2', 'X3@Y4'")
        if m["num"]:
            if coeff is not None or word:
                raise ValueError(f"PauliSum.from_string: a number must start a term, got {m['num']!r} "
                                 f"at position {pos} in {text!r}")
            coeff, seen = float(m["num"]), True
        elif m["pauli"]:
            if m["pauli"] != "I" and m["wire"] is None:
                raise ValueError(f"PauliSum.from_string: {m['pauli']} needs a wire number (e.g. "
                                 f"{m['pauli']}0) at position {pos} in {text!r}")
            if m["pauli"] != "I":
                word.append((int(m["wire"]), m["pauli"]))
            seen = True
        elif m["op"] in "*@":
            if not seen or pos + 1 >= len(text) or text[m.end():].strip()[:1] in ("", "+", "-", "*", "@"):
                raise ValueError(f"PauliSum.from_string: dangling {m['op']!r} at position {pos} in {text!r}")
        elif m["op"] in "+-":
            if seen:
                close(pos)
                coeff, word, seen, sign = None, [], False, 1.0
            sign *= -1.0 if m["op"] == "-" else 1.0
        pos = m.end()
    close(len(text))
    out = None
    for c, w in terms:
        term = PauliSum(((),), jnp.asarray([c]))
        for wire, p in w:
            term = term @ _single(p, wire)
        out = term if out is None else out + term
    return out


def _sign_tensor(shape, axis_of, wires, dtype):
    """``(-1)^{b.s}`` as a broadcastable product over the split axes of ``wires``."""
    sign = jnp.ones((1,) * len(shape), dtype)
    for w in wires:
        s = [1] * len(shape)
        s[axis_of[w]] = 2
        sign = sign * jnp.asarray([1, -1], dtype).reshape(s)
    return sign


def pauli_expectations(state, words):
    """``<psi|P|psi>`` for each word (complex array of shape (len(words),))."""
    n = state.shape[-1].bit_length() - 1
    groups: dict[tuple, list[int]] = {}
    for i, w in enumerate(words):
        groups.setdefault(tuple(q for q, p in w if p in "XY"), []).append(i)
    out = [None] * len(words)
    for flips, idx in groups.items():
        wires = sorted({q for i in idx for q, _ in words[i]})
        shape, axis_of = split_shape(n, wires)
        t = state.reshape(shape)
        if flips:
            prod = jnp.conj(t) * jnp.flip(t, [axis_of[q] for q in flips])
        else:
            prod = (t.real ** 2 + t.imag ** 2)
        signed = [[q for q, p in words[i] if p in "YZ"] for i in idx]
        phase = [(-1j) ** sum(p == "Y" for _, p in words[i]) for i in idx]
        if len(idx) >= SIGN_MATRIX_MIN_WORDS:
            vals = _signed_sums(prod.reshape(-1), n, signed, prod.real.dtype)
            for j, i in enumerate(idx):
                out[i] = vals[j] * phase[j]
            continue
        for j, i in enumerate(idx):
            val = jnp.sum(prod * _sign_tensor(shape, axis_of, signed[j], prod.real.dtype))
            out[i] = val * phase[j]
    return jnp.stack([jnp.asarray(v, state.dtype) for v in out])


# Words that share their X/Y wires read the same product of amplitudes; with this many of them
# (sum_q Z_q, the usual QML readout) they are read together by `_signed_sums` instead of one
# pass over the state each.
SIGN_MATRIX_MIN_WORDS = 3


def _signed_sums(flat, n, signed, dtype):
    """``sum_i flat[i] (-1)^(popcount of i on the wires signed[j])`` for every j.

    The index splits into its high and low halves and so does each sign: with ``P`` the
    ``(2^h, 2^l)`` view of ``flat``, ``Sl`` the signs of the distinct low halves and ``Sh`` those
    of the high halves, every sum is an entry of ``Sh^T (P Sl)``. One product over the state with
    about n/2 columns (sum_q Z_q), then a small one; the sign matrices are ``2^(n/2)`` rows,
    built from iota, never ``2^n``."""
    low = n // 2
    masks = [sum(1 << (n - 1 - q) for q in wires) for wires in signed]
    lo_masks = sorted({m & ((1 << low) - 1) for m in masks})
    hi_masks = sorted({m >> low for m in masks})
    m = flat.reshape(1 << (n - low), 1 << low) @ _sign_columns(low, lo_masks, dtype)
    t = _sign_columns(n - low, hi_masks, dtype).T @ m
    rows = [hi_masks.index(k >> low) for k in masks]
    cols = [lo_masks.index(k & ((1 << low) - 1)) for k in masks]
    return t[jnp.asarray(rows), jnp.asarray(cols)]


def _sign_columns(bits, masks, dtype):
    """``S[i, j] = (-1)^popcount(i & masks[j])`` for ``i < 2^bits``, built by XLA from iota."""
    i = jax.lax.broadcasted_iota(jnp.int32, (1 << bits, len(masks)), 0)
    parity = jax.lax.population_count(i & jnp.asarray(masks, jnp.int32)[None, :]) & 1
    return (1 - 2 * parity).astype(dtype)


def combine_words(observables, vals, real_dtype):
    """Each observable's value from its words' values ``vals`` (last axis: the words of every
    observable in order; leading axes kept): ``sum_w coeff_w <w>``, real, shape ``(..., len(observables))``."""
    out, start = [], 0
    for o in observables:
        c, v = o.coeffs, vals[..., start:start + len(o.words)]
        out.append(jnp.real(jnp.sum(c * v, -1)) if jnp.iscomplexobj(c) else jnp.sum(c * v, -1))
        start += len(o.words)
    return jnp.stack(out, -1).astype(real_dtype)
