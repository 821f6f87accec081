"""A state that starts in ``|0...0>``: the projector put first, so that the native runner builds
the first layer's product state instead of applying it.

Most circuits begin with a one-qubit gate on every wire (an angle encoding, the first rotations
of an ansatz) and start from ``|0...0>``; after those gates the state is a product of one 2-vector
per wire. The native runner (``csrc/product_layer.cpp``) recognises a layer on every wire whose
2x2 matrices all have a zero second column, a map of rank one, ``x -> x[0] (f_1 (x) ... (x) f_n)``:
forwards it writes that product once, where the layer's passes read and write the state; in the
sweep it contracts the cotangent with the product (one read of the state and of its cotangent,
then work on two vectors of about ``2**(n/2)``) for every member's cotangent, where the sweep
would un-apply, multiply and sum over the state for every gate.

The projector ``|0><0|`` on each wire (a constant diagonal step ``(1, 0)``) makes that layer:
`merge` joins it with each wire's first one-qubit gates into one 2x2 block ``U P``, whose second
column is zero. On the state ``|0...0>`` it changes nothing, and it is a linear map like any other
step, so every derivative (the tangent programs, the reference executor behind forward mode and
Hessians) stays exact. It is put only where it pays: on the native backend, when every wire's
first gate is a one-qubit gate of the first native run.
"""

from __future__ import annotations

import numpy as np

from ._gates import GateDef
from ._ir import FusedOp, GateOp, RepeatOp
from ._scan import written_out

# |0><0| on one wire: a constant diagonal (not a user gate: no name in the gate table).
PROJECT_ZERO = GateDef("project0", 1, 0, "diagonal", 0, lambda: np.array([1.0, 0.0]), None, None)


def _one_qubit(op) -> bool:
    return isinstance(op, (GateOp, FusedOp)) and len(op.wires) == 1


def _first_gates_one_qubit(program, n, native) -> bool:
    """Whether every wire's first gate is a one-qubit gate, all in the program's first native run
    (gates, and short repeats written out into it)."""
    seen = set()
    for op in program:
        if isinstance(op, RepeatOp) and written_out(op, native):
            ops = op.body
        elif isinstance(op, (GateOp, FusedOp)):
            ops = (op,)
        else:
            return False
        for o in ops:
            fresh = [w for w in o.wires if w not in seen]
            if fresh and not _one_qubit(o):
                return False
            seen.update(o.wires)
            if len(seen) == n:
                return True
    return False


def with_projector(program, params, backend, n):
    """``program`` with ``|0><0|`` on every wire first, where the native runner's product layer
    pays (see the module); else unchanged."""
    native = backend.programs
    if native is None or n < 2 or not _first_gates_one_qubit(program, n, native):
        return program, params
    ops = tuple(GateOp(PROJECT_ZERO, (w,)) for w in range(n))
    return ops + tuple(program), ((),) * n + tuple(params)
