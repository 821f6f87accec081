"""Scaling benchmarks for qsim: time and memory against qubits and depth, beside the
machine's memory-bandwidth floor and the peers installed (Qulacs, PennyLane
lightning, Qiskit Aer, TensorCircuit-NG, qujax).

Run ``python -m benchmarks`` (a quick run of every suite) or ``python -m benchmarks
--help``. Modules: `cli` (options, threads, the run), `floor` (bandwidth),
`timing` (warm-up, compile apart, medians), `memory` (peak memory in a fresh
process), `workloads` (the circuits, written once for every simulator),
`peers` (one adapter per peer, each checked against qsim before it is timed),
`suites` (gates, circuits, gradients, compile, batch, qasmbench) and `report`
(table, JSON, plots).
"""
