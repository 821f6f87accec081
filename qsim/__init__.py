"""qsim: a JAX-native, differentiable statevector simulator.

Conventions: wire 0 is the most significant bit of a basis index; gate matrices
are those of OpenQASM 2 ``qelib1.inc`` (Qiskit's definitions); complex64 by
default, complex128 on request (with ``jax_enable_x64``).
"""

from .backends import status as native_status
from ._circuit import Circuit
from ._gates import GATES
from ._inplace import apply_inplace
from ._metric import metric_tensor
from ._noise import expectation_with_error
from ._noise_model import NoiseModel
from ._observables import I, PauliSum, X, Y, Z
from .qasm import QasmError, from_qasm
from ._interop import from_pennylane, from_qiskit
from ._validate import StateTooLargeError

__all__ = [
    "Circuit",
    "GATES",
    "I",
    "NoiseModel",
    "PauliSum",
    "QasmError",
    "StateTooLargeError",
    "X",
    "Y",
    "Z",
    "apply_inplace",
    "expectation_with_error",
    "from_pennylane",
    "from_qasm",
    "from_qiskit",
    "metric_tensor",
    "native_status",
]
__version__ = "0.1.0"
