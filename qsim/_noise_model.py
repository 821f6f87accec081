"""`NoiseModel`: which channel follows which gate, applied to any circuit (as Qiskit Aer's NoiseModel).

``NoiseModel().after(gates, channel, **params)`` adds a rule: after every gate named in
``gates`` (a name, a list of names, or ``"all"``), the channel ``channel`` (a
`Circuit` channel method's name) with those parameters, on each wire the gate touched
(a one-qubit channel), or on the gate's wires (a channel on as many wires as the gate:
``two_qubit_depolarizing`` after two-qubit gates, ``kraus`` with matching operators).
Rules apply in the order they were added. ``readout(p01, p10)`` flips sampled bits.

`NoiseModel.apply(circuit)` returns a new `Circuit` with the channels in place: inside
`repeat` layers (the layer is rebuilt once; its parameters stay traced), never inside
`cond` bodies (a classically controlled gate stays noiseless), and for circuits loaded
from OpenQASM alike.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import numpy as np

from . import _channels
from ._gates import ALIASES, GATES
from ._ir import ChannelOp, GateOp, LayerFn, RepeatOp

_USER_GATES = ("unitary", "controlled")


class Rule(NamedTuple):
    gates: tuple[str, ...] | None    # gate-table names; None: every gate
    channel: str
    params: tuple                    # the channel's parameters in its parameter order


# qelib1 / Qiskit spellings of table gates
_QASM_NAMES = {"cx": "cnot", "CX": "cnot", "id": "i", "u": "u3", "U": "u3", "p": "phase", "u1": "phase",
               "ccx": "toffoli", "cp": "cphase", "cu1": "cphase"}


def _gate_names():
    """Every accepted gate name -> the gate-table name it matches."""
    names = {name: name for name in GATES}
    names.update(ALIASES)
    names.update(_QASM_NAMES)
    names.update({u: u for u in _USER_GATES})
    return names


def _check_gates(gates, where):
    if isinstance(gates, str):
        gates = [gates]
    if not isinstance(gates, (list, tuple)) or not gates or not all(isinstance(g, str) for g in gates):
        raise TypeError(f"{where}: gates must be a gate name, a list of gate names or 'all', got {gates!r}")
    if "all" in gates:
        return None
    known = _gate_names()
    bad = [g for g in gates if g not in known]
    if bad:
        raise ValueError(f"{where}: unknown gate {bad[0]!r}; use a gate method's name (e.g. 'cnot', 'rx', "
                         f"'unitary'), a qelib1 name (e.g. 'cx') or 'all'; gates: {sorted(known)}")
    return tuple(dict.fromkeys(known[g] for g in gates))


def _check_params(channel, params, where):
    cdef = _channels.CHANNELS[channel]
    names = cdef.param_names
    if set(params) != set(names):
        sig = ", ".join(f"{k}=..." for k in names)
        raise ValueError(f"{where}: channel {channel!r} takes the parameters ({sig}), got "
                         f"{tuple(params)}")
    values = tuple(params[k] for k in names)
    if channel != "kraus":        # range checks now, with the circuit's dtype at apply
        wires = tuple(range(cdef.n_wires))
        _channels.validate(channel, wires, values, np.float64, np.complex128)
    return values


class NoiseModel:
    """Noise channels inserted after chosen gates; see the module docstring.

    Example:
      >>> nm = qsim.NoiseModel().after("cnot", "depolarizing", p=0.01).after("all", "amplitude_damping", gamma=0.002)
      >>> noisy = circuit.with_noise(nm)
    """

    def __init__(self):
        self.rules: tuple[Rule, ...] = ()
        self.readout_error: tuple | None = None     # (p01, p10): P(read 1 | 0), P(read 0 | 1)

    def after(self, gates, channel, **params):
        """Add a rule: ``channel`` (with ``params``) after every gate in ``gates``; returns the model.

        Args:
          gates: a gate name (``"cnot"``, ``"cx"``, ``"rx"``, ``"unitary"``...), a list of them, or ``"all"``.
          channel: ``"depolarizing"``, ``"amplitude_damping"``, ``"phase_damping"``, ``"bit_flip"``,
            ``"phase_flip"``, ``"pauli_channel"``, ``"two_qubit_depolarizing"``,
            ``"thermal_relaxation"`` or ``"kraus"``.
          params: the channel method's parameters by name (``p=``, ``gamma=``, ``px= py= pz=``,
            ``t1= t2= time=``, ``ops=``).
        Raises:
          ValueError: unknown gate or channel, wrong parameter names, out-of-range values.
        """
        where = "NoiseModel.after"
        if channel not in _channels.CHANNELS:
            raise ValueError(f"{where}: unknown channel {channel!r}; channels are {sorted(_channels.CHANNELS)}")
        rule = Rule(_check_gates(gates, where), channel, _check_params(channel, params, where))
        self.rules = self.rules + (rule,)
        return self

    def readout(self, p01, p10=None):
        """Readout error: each sampled bit of a measured wire reads 1 for 0 with probability ``p01``
        and 0 for 1 with ``p10`` (default ``p01``); it acts on `Circuit.sample`, `run` and `counts`
        only (exact probabilities and expectations are of the state itself, as in Qiskit Aer)."""
        where = "NoiseModel.readout"
        p10 = p01 if p10 is None else p10
        for name, p in (("p01", p01), ("p10", p10)):
            if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
                raise ValueError(f"{where}: {name} must be a probability in [0, 1], got {p!r}")
        self.readout_error = (float(p01), float(p10))
        return self

    def __repr__(self):
        rules = ", ".join(f"after({'all' if r.gates is None else list(r.gates)}, {r.channel!r})" for r in self.rules)
        return f"NoiseModel({rules}{', readout' if self.readout_error else ''})"

    def copy(self):
        """An independent copy (later `after` calls on either leave the other alone)."""
        new = NoiseModel()
        new.rules, new.readout_error = self.rules, self.readout_error
        return new

    def key(self):
        """A hashable value of the model (its parameters must be concrete)."""
        def value(x):
            a = np.asarray(x)
            return (a.shape, a.tobytes())
        return tuple((r.gates, r.channel, tuple(value(x) for x in r.params)) for r in self.rules), \
            self.readout_error

    # -- placing channels ------------------------------------------------------------------
    def _channels_after(self, op, cast):
        """The channel records (and parameters) that follow the gate ``op``, in rule order."""
        out = []
        for i, rule in enumerate(self.rules):
            if rule.gates is not None and op.gate.name not in rule.gates:
                continue
            width = _channel_width(rule)
            if width == 1:
                out += [(ChannelOp(rule.channel, (w,)), cast[i]) for w in op.wires]
            elif width == len(op.wires):
                out.append((ChannelOp(rule.channel, op.wires), cast[i]))
            elif rule.gates is not None:
                raise ValueError(f"NoiseModel.apply: channel {rule.channel!r} acts on {width} wires but gate "
                                 f"{op.gate.name!r} on {len(op.wires)}; a channel follows a gate on each of its "
                                 "wires (one-qubit channels) or on all of them (as many wires)")
        return out

    def _insert(self, program, params, cast):
        prog, prm = [], []
        for op, p in zip(program, params):
            prog.append(op)
            prm.append(p)
            if isinstance(op, GateOp):
                for ch, cp in self._channels_after(op, cast):
                    prog.append(ch)
                    prm.append(cp)
        return prog, prm

    def _noisy_repeat(self, op, p, cast):
        """The repeat with channels in its layer; the channel parameters join the layer's constants."""
        body, _ = self._insert(op.body, tuple(() for _ in op.body), [()] * len(self.rules))
        stacked, consts = p
        n_old = len(consts)
        flat, treedef = jax.tree.flatten(tuple(cast))
        inner, model = op.params_fn, self.copy()     # later `after` calls leave this layer alone

        def params_fn(w, *all_consts):
            rule_params = jax.tree.unflatten(treedef, all_consts[n_old:])
            return tuple(model._insert(op.body, inner(w, *all_consts[:n_old]), rule_params)[1])

        return RepeatOp(tuple(body), LayerFn(params_fn, ("noise", self._structure(), op.params_fn)), op.n_layers), \
            (stacked, tuple(consts) + tuple(flat))

    def _structure(self):
        """What the placement depends on (the values travel as traced constants)."""
        return tuple((r.gates, r.channel, tuple(np.shape(x) for x in r.params)) for r in self.rules)

    def apply(self, circ):
        """A new `Circuit`: ``circ`` with this model's channels after every matching gate."""
        cast = [_channels.validate(r.channel, tuple(range(_channel_width(r))), r.params, circ.real_dtype,
                                   circ.dtype)[1] for r in self.rules]
        new = circ._sub()
        new._init, new.measurements = circ._init, dict(circ.measurements)
        for op, p in zip(circ._program, circ._params):
            if isinstance(op, RepeatOp):
                op, p = self._noisy_repeat(op, p, cast)
                new._record(op, p, "NoiseModel.apply")
                continue
            new._record(op, p, "NoiseModel.apply")
            if isinstance(op, GateOp):
                for ch, cp in self._channels_after(op, cast):
                    new._record(ch, cp, "NoiseModel.apply")
        if self.readout_error is not None:
            new.readout_error = self.readout_error
        elif getattr(circ, "readout_error", None) is not None:
            new.readout_error = circ.readout_error
        return new


def _channel_width(rule):
    cdef = _channels.CHANNELS[rule.channel]
    if cdef.n_wires is not None:
        return cdef.n_wires
    d = np.shape(rule.params[0])[-1]
    return int(d).bit_length() - 1


__all__ = ["NoiseModel"]
