"""Independent references for dynamic circuits: a numpy branch enumerator, Qiskit builders, statistics.

Nothing here imports qsim's internals. A dynamic circuit is a *spec*: a list of
``("gate", name, wires, params)``, ``("measure", wire, clbit)``, ``("reset", wire)`` and
``("cond", clbits, value, [gate entries])``. `branches` enumerates every measurement
branch with projectors on dense states (`reference.operator`): the exact probability
of each record of classical bits and the post-measurement state.
"""

from __future__ import annotations

import numpy as np
from reference import gate, operator
from scipy import stats

QISKIT_NAMES = {"cnot": "cx", "u3": "u", "phase": "p", "cphase": "cp"}
ONE_QUBIT = [("h", 0), ("x", 0), ("rx", 1), ("ry", 1), ("rz", 1), ("u3", 3), ("phase", 1), ("sx", 0)]
TWO_QUBIT = [("cnot", 0), ("cz", 0), ("crx", 1), ("swap", 0), ("rzz", 1), ("cphase", 1)]


def random_gate(rng, n):
    if n > 1 and rng.random() < 0.4:
        name, k = TWO_QUBIT[rng.integers(len(TWO_QUBIT))]
        wires = tuple(int(w) for w in rng.choice(n, 2, replace=False))
    else:
        name, k = ONE_QUBIT[rng.integers(len(ONE_QUBIT))]
        wires = (int(rng.integers(n)),)
    return ("gate", name, wires, tuple(float(x) for x in rng.uniform(-np.pi, np.pi, k)))


def random_spec(rng, n, n_clbits, length):
    """A random dynamic circuit: gates, measurements, resets and conditioned gates, mixed."""
    spec, written = [], set()
    for _ in range(length):
        r = rng.random()
        if r < 0.2:
            c = int(rng.integers(n_clbits))
            spec.append(("measure", int(rng.integers(n)), c))
            written.add(c)
        elif r < 0.3:
            spec.append(("reset", int(rng.integers(n))))
        elif r < 0.45 and written:
            k = int(rng.integers(1, min(2, n_clbits) + 1))
            clbits = tuple(int(b) for b in rng.choice(n_clbits, k, replace=False))
            body = [random_gate(rng, n) for _ in range(int(rng.integers(1, 3)))]
            spec.append(("cond", clbits, int(rng.integers(1 << k)), body))
        else:
            spec.append(random_gate(rng, n))
    spec.append(("measure", int(rng.integers(n)), int(rng.integers(n_clbits))))
    return spec


def apply_spec(circuit, spec):
    """Add a spec's operations to a qsim Circuit."""
    for entry in spec:
        kind = entry[0]
        if kind == "gate":
            _, name, wires, params = entry
            getattr(circuit, name)(*wires, *params)
        elif kind == "measure":
            circuit.measure(entry[1], clbit=entry[2])
        elif kind == "reset":
            circuit.reset(entry[1])
        else:
            _, clbits, value, body = entry
            circuit.cond(list(clbits), value, lambda c, body=body: apply_spec(c, body))
    return circuit


def qiskit_circuit(spec, n, n_clbits):
    """The same circuit in Qiskit (``if_test`` per condition bit); Qiskit qubit i = wire i."""
    from qiskit import QuantumCircuit
    qc = QuantumCircuit(n, n_clbits)

    def add(entries, qc):
        for entry in entries:
            kind = entry[0]
            if kind == "gate":
                _, name, wires, params = entry
                getattr(qc, QISKIT_NAMES.get(name, name))(*params, *wires)
            elif kind == "measure":
                qc.measure(entry[1], entry[2])
            elif kind == "reset":
                qc.reset(entry[1])
            else:
                _, clbits, value, body = entry
                nest(list(zip(clbits, [(value >> j) & 1 for j in range(len(clbits))])), body, qc)

    def nest(conds, body, qc):
        if not conds:
            add(body, qc)
            return
        (bit, v), rest = conds[0], conds[1:]
        with qc.if_test((qc.clbits[bit], v)):
            nest(rest, body, qc)

    add(spec, qc)
    return qc


def branches(spec, n, n_clbits, psi=None):
    """Every branch ``(probability, classical bits, normalised state)`` of a dynamic circuit."""
    if psi is None:
        psi = np.zeros(1 << n, complex)
        psi[0] = 1
    out = [(1.0, (0,) * n_clbits, psi)]
    for entry in spec:
        kind, new = entry[0], []
        for p, bits, state in out:
            if kind == "gate":
                _, name, wires, params = entry
                new.append((p, bits, operator(n, gate(name, *params), wires) @ state))
            elif kind == "cond":
                _, clbits, value, body = entry
                if sum(bits[b] << j for j, b in enumerate(clbits)) == value:
                    (_, _, state), = branches(body, n, n_clbits, state)
                new.append((p, bits, state))
            else:
                wire = entry[1]
                for b in (0, 1):
                    proj = operator(n, np.diag([1.0 - b, b]), (wire,)) @ state
                    q = np.vdot(proj, proj).real
                    if q < 1e-14:
                        continue
                    proj = proj / np.sqrt(q)
                    if kind == "reset" and b:
                        proj = operator(n, gate("x"), (wire,)) @ proj
                    nb = bits if kind == "reset" else tuple(b if i == entry[2] else x for i, x in enumerate(bits))
                    new.append((p * q, nb, proj))
        out = new
    return out


def clbit_distribution(brs):
    """``{bits tuple: probability}`` of the branches."""
    dist = {}
    for p, bits, _ in brs:
        dist[bits] = dist.get(bits, 0.0) + p
    return dist


def averaged_probs(brs):
    """Outcome-averaged probabilities of the final wires."""
    return sum(p * np.abs(s) ** 2 for p, _, s in brs)


def averaged_rho(brs):
    return sum(p * np.outer(s, s.conj()) for p, _, s in brs)


def counts_of(bits):
    """``{bits tuple: count}`` of an int array ``(shots, k)``."""
    rows, n = np.unique(np.asarray(bits), axis=0, return_counts=True)
    return {tuple(int(x) for x in r): int(c) for r, c in zip(rows, n)}


def aer_counts(qc, shots, seed):
    """Qiskit Aer (statevector) counts as ``{bits tuple: count}``, classical bit 0 first."""
    from qiskit import transpile
    from qiskit_aer import AerSimulator
    sim = AerSimulator(method="statevector")
    got = sim.run(transpile(qc, sim), shots=shots, seed_simulator=seed).result().get_counts()
    return {tuple(int(b) for b in key.replace(" ", "")[::-1]): c for key, c in got.items()}


def chi2_goodness(counts, probs, shots, min_expected=5.0):
    """p-value of observed ``counts`` against exact ``probs`` (both dicts), rare outcomes pooled."""
    keys = sorted(set(probs) | set(counts))
    exp = np.array([probs.get(k, 0.0) * shots for k in keys])
    obs = np.array([counts.get(k, 0) for k in keys], float)
    if np.any((exp == 0) & (obs > 0)):
        return 0.0
    big = exp >= min_expected
    exp_b, obs_b = list(exp[big]), list(obs[big])
    if (~big).any():
        exp_b.append(exp[~big].sum())
        obs_b.append(obs[~big].sum())
    if len(exp_b) < 2:
        return 1.0
    return stats.chisquare(obs_b, np.array(exp_b) * sum(obs_b) / sum(exp_b)).pvalue


def chi2_two_sample(a, b, min_count=10):
    """p-value that two count dicts come from the same distribution (contingency test, rare pooled)."""
    keys = sorted(set(a) | set(b))
    table = np.array([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]], float)
    big = table.sum(0) >= min_count
    cols = [table[:, big]] + ([table[:, ~big].sum(1, keepdims=True)] if (~big).any() else [])
    table = np.concatenate(cols, axis=1)
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return stats.chi2_contingency(table, correction=False).pvalue


def tvd(a, b):
    """Total-variation distance of two count (or probability) dicts, each normalised."""
    sa, sb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a.get(k, 0) / sa - b.get(k, 0) / sb) for k in set(a) | set(b))
