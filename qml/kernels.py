"""Fidelity quantum kernels: ``k(x, x') = |<phi(x)|phi(x')>|^2``.

``|phi(x)> = U(x)|0...0>`` where ``embedding(c, x)`` adds the gates of ``U(x)`` to
a `qsim.Circuit` (e.g. `qml.templates.angle_embedding` or `iqp_embedding`).
The embedding is simulated ONCE per sample (vmapped over each data set); the
whole Gram matrix is then one product ``K = |S1 S2^H|^2`` of the stacked states
``S1`` (N1, 2^n) and ``S2`` (N2, 2^n), instead of N1 * N2 overlap circuits.

Usable with scikit-learn as a precomputed kernel::

    K_train = kernel_matrix(emb, X_train)                  # (N, N)
    svc = SVC(kernel="precomputed").fit(K_train, y_train)
    svc.predict(kernel_matrix(emb, X_test, X_train))       # (M, N)

or as a callable kernel, ``SVC(kernel=make_kernel(emb))``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import qsim

__all__ = ["embedding_states", "kernel_matrix", "make_kernel"]


def _check_data(X, name, where):
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{where}: {name} must have shape (n_samples, n_features), got shape {X.shape}")
    if jnp.iscomplexobj(X):
        raise TypeError(f"{where}: {name} must be real, got dtype {X.dtype}")
    return X


def _n_qubits(n_qubits, X, where):
    n = X.shape[1] if n_qubits is None else n_qubits
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{where}: n_qubits must be a positive int (default: the number of features), "
                         f"got {n!r}")
    return int(n)


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _states(embedding, X, n_qubits, dtype):
    def one(x):
        c = qsim.Circuit(n_qubits, dtype=dtype)
        out = embedding(c, x)
        return (out if isinstance(out, qsim.Circuit) else c).state()
    return jax.vmap(one)(X)


def embedding_states(embedding, X, n_qubits=None, *, dtype=None):
    """The embedded states ``|phi(x_i)>`` of every row of ``X``.

    Args:
      embedding: ``embedding(c, x)`` adds gates for one sample ``x`` (shape ``(f,)``).
      X: shape ``(N, f)`` real. n_qubits: circuit width (default ``f``). dtype: statevector dtype.

    Returns: complex array of shape ``(N, 2**n_qubits)``.
    """
    where = "kernels.embedding_states"
    X = _check_data(X, "X", where)
    return _states(embedding, X, _n_qubits(n_qubits, X, where), None if dtype is None else jnp.dtype(dtype))


def kernel_matrix(embedding, X1, X2=None, *, n_qubits=None, dtype=None):
    """Gram matrix of the fidelity kernel, ``K[i, j] = |<phi(X1[i])|phi(X2[j])>|^2``.

    Args:
      embedding: ``embedding(c, x)`` adds gates for one sample (a hashable function).
      X1: shape ``(N1, f)``. X2: shape ``(N2, f)``; default ``X1`` (then K is symmetric, simulated once).
      n_qubits: circuit width (default ``f``). dtype: statevector dtype (default complex64).

    Returns: real array of shape ``(N1, N2)``, entries in [0, 1] (1 on the diagonal when X2 is None).

    Raises: ValueError for arrays of the wrong rank or different feature counts; TypeError for complex data.
    """
    where = "kernels.kernel_matrix"
    X1 = _check_data(X1, "X1", where)
    if X2 is not None:
        X2 = _check_data(X2, "X2", where)
        if X2.shape[1] != X1.shape[1]:
            raise ValueError(f"{where}: X1 and X2 need the same number of features, got shapes {X1.shape} "
                             f"and {X2.shape}")
    n = _n_qubits(n_qubits, X1, where)
    S1 = embedding_states(embedding, X1, n, dtype=dtype)
    S2 = S1 if X2 is None else embedding_states(embedding, X2, n, dtype=dtype)
    return jnp.abs(S1 @ jnp.conj(S2).T) ** 2


def make_kernel(embedding, n_qubits=None, *, dtype=None):
    """A callable ``k(X1, X2) -> numpy (N1, N2)`` for ``sklearn.svm.SVC(kernel=k)``."""
    def kernel(X1, X2):
        return np.asarray(kernel_matrix(embedding, np.asarray(X1, np.float32), np.asarray(X2, np.float32),
                                        n_qubits=n_qubits, dtype=dtype), np.float64)
    return kernel
