"""Data-parallel training of a `qml.QuantumLayer`: the batch sharded over devices and hosts, gradients summed by JAX.

Every device holds the (replicated) weights and its slice of the batch; one
``jax.shard_map`` runs the layer and its gradient on each slice (the native CPU
kernels on CPU hosts) and ``jax.lax.psum`` adds the slices' losses and
gradients, so every device applies the same optax update. The same script runs
on one device, on D devices of one process, and on several processes joined
by `jax.distributed` (here on this machine, loopback only; on a cluster, the
same call with the coordinator's address):

    python -m qml.examples.data_parallel                    # the devices JAX sees (1 on a plain CPU)
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m qml.examples.data_parallel
    python -m qml.examples.data_parallel --processes 2       # 2 processes, jax.distributed on 127.0.0.1

The data and the initial weights depend only on ``--seed``, so the loss
history is the same however the batch is split (up to float rounding).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import qsim
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import qml

from . import _common

N_QUBITS, N_LAYERS, BATCH = 4, 2, 32
TAG = "DATA-PARALLEL "


def circuit(c, x, w):
    qml.templates.angle_embedding(c, x, rotation="Y")
    qml.templates.strongly_entangling(c, w["layers"])


def dataset(seed):
    """``BATCH`` points in ``[0, pi)^4`` and targets ``cos(x0 + x1) * sin(x2 - x3)`` in [-1, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, np.pi, (BATCH, N_QUBITS)).astype(np.float32)
    return x, (np.cos(x[:, 0] + x[:, 1]) * np.sin(x[:, 2] - x[:, 3])).astype(np.float32)


def make_step(graphdef, mesh, tx):
    """The jitted training step: per-shard value-and-grad of the summed squared error, psum, update."""
    def local(params, x, t):
        def sse(params):
            return jnp.sum((nnx.merge(graphdef, params)(x) - t) ** 2)
        return jax.lax.psum(jax.value_and_grad(sse)(params), "batch")

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P(), P("batch"), P("batch")), out_specs=P(),
                            check_vma=False)

    @jax.jit
    def step(params, opt_state, x, t):
        loss, grads = sharded(params, x, t)
        loss, grads = loss / x.shape[0], jax.tree.map(lambda g: g / x.shape[0], grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    return step


def train(n_steps, seed):
    """Train on every device JAX sees (all processes); returns the loss history and the mesh."""
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    model = qml.QuantumLayer(circuit, N_QUBITS, {"layers": (N_LAYERS, N_QUBITS, 3)}, qsim.Z(0),
                             rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    tx = optax.adam(0.1)
    replicated, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
    params = jax.tree.map(lambda a: jax.make_array_from_callback(a.shape, replicated, lambda i: np.asarray(a)[i]),
                          params)
    opt_state = jax.jit(tx.init, out_shardings=replicated)(params)
    x, t = (jax.make_array_from_callback(a.shape, rows, lambda i, a=a: a[i]) for a in dataset(seed))
    step = make_step(graphdef, mesh, tx)
    losses = []
    for _ in range(n_steps):
        params, opt_state, loss = step(params, opt_state, x, t)
        losses.append(float(loss))
    return losses, mesh


def sharded_expectation(mesh, n=8):
    """``<Z0 Z7 + X0 X1 ... X7>`` of ``cos(0.15)|0...0> + sin(0.15)|1...1>`` sharded over ``mesh``
    (every device of every process): ``1 + sin(0.3)`` however many devices hold it."""
    c = qsim.Circuit(n, mesh=mesh).ry(0, 0.3)
    for q in range(n - 1):
        c.cnot(q, q + 1)
    all_x = qsim.PauliSum.from_string(" ".join(f"X{q}" for q in range(n)))
    return float(c.expectation(qsim.Z(0) @ qsim.Z(n - 1) + all_x))


def launch(n_processes, argv):
    """Run this script in ``n_processes`` processes joined by `jax.distributed` on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "qml.examples.data_parallel", *argv, "--coordinator", f"127.0.0.1:{port}",
           "--num-processes", str(n_processes)]
    procs = [subprocess.Popen(cmd + ["--process-id", str(i)], stdout=subprocess.PIPE, text=True)
             for i in range(n_processes)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"data_parallel: a process failed (exit codes {[p.returncode for p in procs]})")
    line = next(ln for ln in outs[0].splitlines() if ln.startswith(TAG))
    return json.loads(line[len(TAG):])


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], steps=60, fast_steps=15)
    p.add_argument("--processes", type=int, default=1, help="start this many processes (jax.distributed, loopback)")
    p.add_argument("--coordinator", help="coordinator address of a jax.distributed run (set by --processes)")
    p.add_argument("--num-processes", type=int, help="processes in the jax.distributed run")
    p.add_argument("--process-id", type=int, help="this process's index in the jax.distributed run")
    args = p.parse_args(argv)
    if args.processes > 1:
        metrics = launch(args.processes, ["--steps", str(_common.steps(args)), "--seed", str(args.seed)])
    else:
        if args.coordinator:
            jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
        losses, mesh = train(_common.steps(args), args.seed)
        metrics = {"processes": jax.process_count(), "devices": mesh.size, "first_loss": losses[0],
                   "final_loss": losses[-1], "sharded_expectation": sharded_expectation(mesh), "losses": losses}
        if args.coordinator:
            if jax.process_index() == 0:
                print(TAG + json.dumps(metrics), flush=True)
            jax.distributed.shutdown()
            return metrics
    _common.report("data_parallel", {k: v for k, v in metrics.items() if k != "losses"})
    print(TAG + json.dumps(metrics), flush=True)
    return metrics


if __name__ == "__main__":
    main()
