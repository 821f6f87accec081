"""Scaling benchmarks for qsim: time and memory against qubits and depth, beside the
machine's memory-bandwidth floor and the peers installed (Qulacs, PennyLane
lightning, Qiskit Aer, TensorCircuit-NG, qujax).

Run ``python -m benchmarks`` (a quick run of every suite) or ``python -m benchmarks
--help``. Modules, one idea each: `cli` (options, the run), `machine` (threads
pinned before JAX loads; what the run was measured on), `floor` (bandwidth),
`timing` (warm-up, compile apart, medians), `memory` (peak memory in a fresh
process), `workloads` (the circuits, written once for every simulator), `ours`
(qsim jitted with the state donated), `peers` (one adapter per peer, each
checked against qsim before it is timed), `context` (what suites get and
return), `suites` (gates, circuits, gradients, compile, batch, qasmbench),
`report` (table, JSON) and `plots` (PNGs).
"""
