"""`apply_inplace`: a circuit's gates applied to a state the caller holds, in that state's own buffer.

`Circuit.state()` returns a new array; a state passed in (``Circuit(n, state=psi)``)
stays alive beside it, so the run holds two states. `apply_inplace` jits the same
pure function with the state *donated* (``jax.jit(..., donate_argnums=...)``): XLA
may write the result into the input's buffer, and with kernels that update in place
(the ``"gpu"`` backend: a step needs the state plus one chunk) the whole run holds
one state plus a chunk (checked on CPU with `lower_inplace(...).memory_analysis()`). That
is what should let 33 qubits in complex64 (64 GiB) run on one H200 (to be confirmed by
``python -m benchmarks.gpu_device`` on a device). On CPU, XLA reuses the donated buffer too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from . import _simulate


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6), donate_argnums=(2,))
def _run_donated(program, params, state, n, dtype, fuse_k, backend):
    return _simulate._state(program, params, state, n, dtype, "backprop", fuse_k, backend)


def _arguments(circuit, state, where):
    from ._circuit import Circuit

    if not isinstance(circuit, Circuit):
        raise TypeError(f"{where}: circuit must be a qsim.Circuit, got {type(circuit).__name__}")
    if circuit.is_dynamic or circuit.is_noisy:
        raise ValueError(f"{where}: the circuit has mid-circuit measurements, resets, conditions or noise "
                         "channels; only gate circuits run in place (use Circuit.state(key=...) for those)")
    if getattr(circuit, "mesh", None) is not None:
        raise ValueError(f"{where}: a sharded circuit (mesh=...) does not run in place; use Circuit.state()")
    if circuit._init is not None:
        raise ValueError(f"{where}: the circuit already has an initial state (Circuit(n, state=...)); "
                         "build it without one and pass the state here")
    if not isinstance(state, jax.Array):
        raise TypeError(f"{where}: state must be a jax.Array (its buffer is reused), got {type(state).__name__}")
    n, dtype = circuit.n_qubits, jnp.dtype(circuit.dtype)
    if state.shape != (1 << n,) or state.dtype != dtype:
        raise ValueError(f"{where}: state must have shape {(1 << n,)} and dtype {dtype.name} "
                         f"(the circuit's), got shape {state.shape} and dtype {state.dtype}")
    program, params, k = _simulate._prepared(circuit)
    return program, params, state, n, circuit.dtype, k, circuit.backend


def apply_inplace(circuit, state):
    """The state after ``circuit``'s gates, computed in ``state``'s buffer (``state`` is donated).

    ``state`` must not be used afterwards (JAX deletes a donated array; on a platform
    that cannot reuse its buffer JAX warns and copies). Inside a user's ``jax.jit`` the
    call is inlined and XLA decides buffer reuse for the whole program.

    Args:
      circuit: a `qsim.Circuit` of gates (no initial ``state=``, measurements or noise).
      state: ``(2**n,)`` jax array in the circuit's dtype.

    Returns:
      the final state, shape ``(2**n,)``, the circuit's dtype.

    Raises:
      TypeError: ``circuit`` is not a Circuit, or ``state`` is not a jax array.
      ValueError: a dynamic, noisy or sharded circuit, one with its own initial state, or a
        ``state`` of the wrong shape or dtype.

    Example:
      >>> c = qsim.Circuit(2, backend="gpu").h(0).cnot(0, 1)
      >>> psi = qsim.apply_inplace(c, jnp.zeros(4, jnp.complex64).at[0].set(1))
    """
    return _run_donated(*_arguments(circuit, state, "apply_inplace"))


def lower_inplace(circuit, state):
    """The compiled in-place run (``jax.stages.Compiled``) of `apply_inplace`, for
    ``memory_analysis()`` (``alias_size_in_bytes``: the donated state reused; ``temp_size_in_bytes``)."""
    return _run_donated.lower(*_arguments(circuit, state, "lower_inplace")).compile()
