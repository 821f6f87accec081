"""complex64 under JAX's default configuration (x64 OFF), in a fresh process on every backend.

The rest of the suite runs with x64 on (for complex128 references); this checks the
configuration most users have: values, gradients (all methods), forward mode, Hessians and
vmap in complex64 against a float64 numpy reference at the complex64 tolerance.
"""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    assert not jax.config.read("jax_enable_x64")
    import qsim
    from qsim.backends import native_cpu

    def dense(t):
        c, s = np.cos(t / 2), np.sin(t / 2)
        ry = lambda a: np.array([[np.cos(a / 2), -np.sin(a / 2)], [np.sin(a / 2), np.cos(a / 2)]])
        psi = np.kron(ry(t[0]) @ [1, 0], ry(t[1]) @ [1, 0]).astype(complex)
        cnot = np.eye(4)[[0, 1, 3, 2]]
        psi = cnot @ psi
        rz = np.diag([np.exp(-0.5j * t[2]), np.exp(0.5j * t[2])])
        psi = np.kron(np.eye(2), rz) @ psi
        zz = np.diag([1, -1, -1, 1])
        return float(np.real(np.vdot(psi, zz @ psi)))

    t = np.array([0.3, -0.8, 0.5])
    h = 1e-5
    fd = np.array([(dense(t + h * e) - dense(t - h * e)) / (2 * h) for e in np.eye(3)])
    fdh = np.array([[(dense(t + h * 100 * (a + b)) - dense(t + h * 100 * (a - b)) - dense(t - h * 100 * (a - b))
                      + dense(t - h * 100 * (a + b))) / (4 * (h * 100) ** 2) for b in np.eye(3)] for a in np.eye(3)])
    backends = ["xla"] + (["native"] if native_cpu.available() else [])
    for backend in backends:
        for diff in ("backprop", "adjoint", "parameter-shift"):
            f = lambda x: (qsim.Circuit(2, backend=backend).ry(0, x[0]).ry(1, x[1]).cnot(0, 1)
                           .rz(1, x[2]).expectation(qsim.Z(0) @ qsim.Z(1), diff=diff))
            x = jnp.asarray(t, jnp.float32)
            assert f(x).dtype == jnp.float32
            assert abs(float(f(x)) - dense(t)) < 1e-5, (backend, diff)
            for name, g in (("grad", jax.grad(f)(x)), ("jacfwd", jax.jacfwd(f)(x))):
                assert np.abs(np.asarray(g) - fd).max() < 1e-4, (backend, diff, name)
            assert np.abs(np.asarray(jax.hessian(f)(x)) - fdh).max() < 1e-3, (backend, diff)
            xs = jnp.stack([x, x + 0.1])
            assert jax.jit(jax.vmap(jax.grad(f)))(xs).shape == (2, 3)
    print("ok")
""")


def test_complex64_with_x64_off_on_every_backend():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "JAX_ENABLE_X64": "0"})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout[-2000:] + out.stderr[-4000:]
