"""qsim run the way the suites time it: jitted, compiled apart, state donated.

`QsimRunner` (``pure_jax=True``: with the XLA kernels even where the native
ones are built, for side-by-side rows) compiles ``state -> to_circuit(ops, n, state).state()`` with
``jax.jit(f, donate_argnums=0).lower(x).compile()`` (timed apart) and each
``run()`` feeds the result back in, so the state is updated in place and every
run starts from a full (not ``|0...0>``) state, as a peer's in-place run does.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .timing import compile_jit
from .workloads import to_circuit


def fusion_arg(fuse):
    """``fuse`` (None: qsim's default, False: no fusion, int: that width) -> ``max_fused_qubits``."""
    if fuse is None or fuse is True:
        return None
    return 0 if fuse is False else int(fuse)


class QsimRunner:
    """qsim applying ``ops`` to a held state, jitted with the state donated.

    Attributes:
      compile_s: lowering plus XLA compile time (s); lower_s: the lowering part.
    """

    name = "qsim"

    def __init__(self, ops, n: int, dtype: str, init: np.ndarray, *, fuse=None, pure_jax=False):
        k = fusion_arg(fuse)
        backend = "xla" if pure_jax else "auto"

        def step(state):
            return to_circuit(ops, n, state, dtype=dtype, max_fused_qubits=k, backend=backend).state()

        # a private copy: the donated buffer is never one the caller holds
        self._state = jnp.asarray(np.array(init, dtype, copy=True))
        self._step, times = compile_jit(step, self._state, donate=True)
        self.compile_s, self.lower_s = times["compile_s"], times["lower_s"]

    def run(self) -> None:
        self._state = self._step(self._state)
        self._state.block_until_ready()

    def result(self) -> np.ndarray:
        return np.asarray(self._state)
