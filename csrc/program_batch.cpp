// The runner for batches of small states (program.h: run_batch, run_batch_adjoint).
//
// Gate by gate over a batch of small states pays, for every (state, gate), the
// kernels' setup and a pass over a batch that may not fit the caches, and a
// thread-pool region per gate. Here the steps are resolved once per call (their
// Geometry, and the prepared gate of every step whose coefficients all states
// share), then every state runs the whole program on one thread while it sits
// in that core's caches; the threads share out the batch, a group of states
// per task.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <cstdint>
#include <memory>
#include <new>
#include <system_error>
#include <utility>
#include <vector>

#include "program.h"

namespace qsim_native {
namespace {

// States of at most 2^kSmallQubits amplitudes (128 KiB complex64) always come
// here: the gate by gate runner seldom splits one such state's gate over
// threads either. States of up to 2^kMidQubits amplitudes (512 KiB) come here
// when there is one per thread: each still stays in its core's caches while the
// whole program runs, where gate by gate streams the whole batch through memory
// at every gate.
constexpr int kSmallQubits = 14;
constexpr int kMidQubits = 16;
// A single state of this many qubits or more runs gate by gate: with nothing to
// share out, planning every step up front bought nothing, and the gate by gate
// runner's layer passes and gathers were 4-8% faster (HEA step, L=4, batch 1,
// n = 7-14, interleaved A/B on 2 threads).
constexpr int kOneStateMinQubits = 7;
// Less work than this (amplitude-steps) stays on the calling thread.
constexpr int64_t kParallelMinWork = int64_t(1) << 18;
// Tasks per thread: groups of states small enough to even out the threads' loads,
// unless their scratch (mostly the per-state prepared gates) would pass kMaxScratch.
constexpr int kTasksPerThread = 4;
constexpr size_t kMaxScratch = size_t(16) << 20;

size_t round_up(size_t bytes) { return (bytes + 63) / 64 * 64; }

struct alignas(64) Line {
  char bytes[64];
};

// One prepared operation of a step: the kernel op, the direction its
// coefficients are taken in, and where its prepared gate lives: in Call::shared,
// made once, or (per_state) in each task's scratch, made for its first state and
// refilled with the coefficients of the next ones.
struct OpPlan {
  int op;
  Direction dir;
  bool per_state;
  size_t at;  // offset there
};

// The operation of a linear step (no prepared gate: it gathers through its map).
constexpr int kOpLinear = 100;

struct StepPlan {
  const Step* step;
  int layer;  // >= 0: this plan is the whole layer Call::layers[layer] (step: its first)
  Gate gate;  // the plain gate it amounts to
  Geometry G;
  int perm[2][1 << kMaxTargets];  // permutations: forward, inverse
  LinearMap lin[2];               // linear steps: forward, inverse (= transpose)
  OpPlan ops[2];                  // applied to the state (the sweep: x, then g)
};

// A layer (program.h) resolved for the call: its passes, and its members'
// matrices when every state shares them (else made per state in the task's scratch).
template <class R>
struct LayerPlan {
  std::unique_ptr<Layer> ly;
  size_t first, size;
  std::vector<int64_t> wires;
  std::vector<R> mats, tr;  // forward: mats in the call's direction; sweep: inv, tr
  // States with their own coefficients: the (offset, reals) spans of the row that
  // the matrices are made from, and where a task keeps the last state's matrices.
  std::vector<std::pair<int64_t, int64_t>> spans;
  size_t cache_at;  // reals into the task's layer cache (2 x 8 x size)
};

// A call: the resolved steps in the order they run, and the operands.
template <class R>
struct Call {
  const IsaKernels<R>* isa;
  const IsaKernels<R>* lisa;  // the layers' (layer_kernels_for)
  const Program* program;
  Shapes sh;
  const R* coefs;
  R* x;                 // the states (the sweep: the forward outputs)
  R* g;                 // the sweep: their cotangents
  R* ct;                // the sweep: the coefficients' cotangents
  bool sweep, want_ct;
  std::vector<StepPlan> steps;
  std::vector<LayerPlan<R>> layers;
  int64_t layer_reals = 0;   // 8 x the largest layer's size
  int64_t layer_cache_reals = 0;  // states with their own coefficients: 16 x all layers' sizes
  Direction dir;             // the forward's direction
  std::vector<Line> shared;  // prepared gates shared by every state
  // A task's scratch (see carve): the per-state prepared gates, the kernels' work
  // space, two coefficient blocks and the VJP's sums.
  size_t per_state_bytes = 0, work_bytes = 0;
  // Linear steps gather into a second buffer per state (two in the sweep: x's and g's)
  // and the state carries on from there: no copy of the state before each gather.
  size_t alt_bytes = 0;
  int64_t block_reals = 0;
  int64_t per_task = 0;       // states per task
  char* base = nullptr;
  size_t task_bytes = 0;
  mutable std::atomic<bool> out_of_memory{false};  // set by a task (fused_ct allocates)
};

int op_of(const Gate& g, bool vjp) {
  if (g.kind == kPermutation) return kOpPermutation;
  if (g.kind == kDense) return vjp ? kOpDenseVjp : kOpDense;
  return vjp ? kOpDiagonalVjp : kOpDiagonal;
}

// Prepares operation o of step sp for coefficient row `row` into `prep` (fresh),
// or refills it; `block` and `tmp` hold block_reals reals each.
template <class R>
void prepare(const Call<R>& c, const StepPlan& sp, const OpPlan& o, const R* row, R* block,
             R* tmp, void* prep, bool fresh) {
  if (o.op == kOpPermutation) {
    c.isa->prepare(o.op, sp.G, nullptr, sp.perm[o.dir != Direction::kForward], prep);
    return;
  }
  const R* u = step_coefs(*sp.step, row, block);
  if (!coefs_as_is(sp.gate, o.dir)) {
    transform_coefs(sp.gate, u, o.dir, tmp);
    u = tmp;
  }
  if (fresh) {
    c.isa->prepare(o.op, sp.G, u, nullptr, prep);
  } else {
    c.isa->refill(o.op, sp.G, u, prep);
  }
}

// Resolves step s for the call: its geometry, its operations and their room.
template <class R>
const char* plan_step(const Step& s, Direction dir, Call<R>* c, StepPlan* sp,
                      size_t* shared_bytes) {
  sp->step = &s;
  sp->gate = plain_gate(s);
  const Gate& g = sp->gate;
  if (g.kind == kLinear) {
    if (const char* e = check_linear(g, c->sh.n)) return e;
    sp->lin[0] = linear_map(g, c->sh.n, false);
    sp->lin[1] = linear_map(g, c->sh.n, true);
    sp->ops[0] = {kOpLinear, c->sweep ? Direction::kInverse : dir, false, 0};
    sp->ops[1] = {c->sweep ? kOpLinear : -1, Direction::kTranspose, false, 0};
    c->alt_bytes = round_up(sizeof(R) << (c->sh.n + 1)) * (c->sweep ? 2 : 1);
    return nullptr;
  }
  if (const char* e = build_geometry(&sp->G, c->sh.n, c->isa->log_lanes, g.targets, int(g.k),
                                     g.controls, int(g.nc))) {
    return e;
  }
  if (g.kind == kPermutation) {
    for (int64_t j = 0; j < (int64_t(1) << g.k); ++j) {
      sp->perm[0][j] = int(g.perm[j]);
      sp->perm[1][g.perm[j]] = int(j);  // a permutation matrix's inverse is its transpose
    }
  }
  if (c->sweep) {
    const bool vjp = c->want_ct && g.kind != kPermutation;
    sp->ops[0] = {op_of(g, false), Direction::kInverse, false, 0};
    sp->ops[1] = {op_of(g, vjp), vjp ? Direction::kForward : Direction::kTranspose, false, 0};
  } else {
    sp->ops[0] = {op_of(g, false), dir, false, 0};
    sp->ops[1] = {-1, dir, false, 0};
  }
  const int64_t dim = int64_t(1) << g.k;
  c->block_reals = std::max(c->block_reals, 2 * (g.kind == kDense ? dim * dim : dim));
  for (OpPlan& o : sp->ops) {
    if (o.op < 0) continue;
    c->work_bytes = std::max(c->work_bytes, round_up(c->isa->work_bytes(o.op, sp->G)));
    o.per_state = c->sh.cb > 1 && o.op != kOpPermutation;
    size_t& end = o.per_state ? c->per_state_bytes : *shared_bytes;
    o.at = end;
    end += round_up(c->isa->prep_bytes(o.op, sp->G));
  }
  return nullptr;
}

// Resolves the layer that step s belongs to: its passes and, when the states
// share coefficients, its matrices.
template <class R>
const char* plan_layer(const Program& p, const Step& s, Call<R>* c, StepPlan* sp) {
  LayerPlan<R> lp;
  lp.first = s.layer_first;
  lp.size = s.layer_size;
  lp.ly = std::make_unique<Layer>();
  lp.wires.resize(lp.size);
  layer_wires(p, lp.first, lp.size, lp.wires.data());
  if (const char* e = build_layer(lp.ly.get(), c->sh.n, lp.wires.data(), int(lp.size), int(2 * sizeof(R)))) return e;
  const int64_t reals = 8 * int64_t(lp.size);
  c->layer_reals = std::max(c->layer_reals, reals);
  if (c->sh.cb > 1) {
    for (size_t k = 0; k < lp.size; ++k) {
      const Step& m = p.steps[lp.first + k];
      if (!is_fused(m.kind)) lp.spans.emplace_back(m.offset, 8);
      for (const Member& e : m.members) {
        if (e.kind != kPermutation) lp.spans.emplace_back(e.offset, e.kind == kDiagonal ? 4 : 8);
      }
    }
    lp.cache_at = size_t(c->layer_cache_reals);
    c->layer_cache_reals += 2 * reals;
  } else {
    lp.mats.resize(size_t(reals));
    if (c->sweep) {
      lp.tr.resize(size_t(reals));
      layer_sweep_mats(p, lp.first, lp.size, c->coefs, lp.mats.data(), lp.tr.data());
    } else {
      layer_mats(p, lp.first, lp.size, c->coefs, c->dir, lp.mats.data());
    }
  }
  sp->step = &s;
  sp->layer = int(c->layers.size());
  sp->ops[0].op = sp->ops[1].op = -1;
  c->layers.push_back(std::move(lp));
  return nullptr;
}

// Resolves every step, in the order they run, and prepares the gates that all
// states share.
template <class R>
const char* plan(const Program& p, Direction dir, Call<R>* c) {
  c->isa = kernels_for<R>(c->sh.n);
  c->lisa = layer_kernels_for<R>(c->sh.n);
  c->program = &p;
  const bool reverse = c->sweep || dir != Direction::kForward;
  const size_t ns = p.steps.size();
  c->dir = dir;
  c->steps.clear();
  c->steps.reserve(ns);
  size_t shared_bytes = 0;
  for (size_t i = 0; i < ns;) {
    const Step& s = p.steps[reverse ? ns - 1 - i : i];
    c->steps.emplace_back();
    StepPlan& sp = c->steps.back();
    sp.layer = -1;
    if (s.layer_size > 0) {
      if (const char* e = plan_layer(p, s, c, &sp)) return e;
      i += s.layer_size;
      continue;
    }
    if (const char* e = plan_step(s, dir, c, &sp, &shared_bytes)) return e;
    ++i;
  }
  c->shared.resize(shared_bytes / 64);
  std::vector<R> block(size_t(c->block_reals)), tmp(size_t(c->block_reals));
  for (const StepPlan& sp : c->steps) {
    if (sp.layer >= 0) continue;
    for (const OpPlan& o : sp.ops) {
      if (o.op >= 0 && o.op != kOpLinear && !o.per_state) {
        prepare(*c, sp, o, c->coefs, block.data(), tmp.data(),
                reinterpret_cast<char*>(c->shared.data()) + o.at, true);
      }
    }
  }
  return nullptr;
}

// A task's scratch, carved up.
template <class R>
struct Scratch {
  char* preps;  // the per-state prepared gates
  void* work;
  R* block;
  R* tmp;
  double* out;  // the VJP's sums (block_reals doubles)
  C* ctB;       // a fused block's cotangent
  R* lcache;        // every layer's matrices for the last state (layer_cache_reals)
  const R** lrow;   // and that state's coefficient row, per layer (nullptr: none yet)
  double* lsums;    // a layer sweep's sums (layer_reals)
  R* alt[2];        // the linear steps' second buffers: x's, g's
};

template <class R>
size_t scratch_bytes(const Call<R>& c) {
  const size_t b = size_t(c.block_reals);
  const size_t l = size_t(c.layer_reals);
  return c.per_state_bytes + c.work_bytes + c.alt_bytes + round_up(2 * b * sizeof(R)) +
         round_up(b * sizeof(double)) + round_up(b / 2 * sizeof(C)) +
         round_up(size_t(c.layer_cache_reals) * sizeof(R)) +
         round_up(c.layers.size() * sizeof(const R*)) + round_up(l * sizeof(double));
}

template <class R>
Scratch<R> carve(const Call<R>& c, int task) {
  const size_t b = size_t(c.block_reals);
  char* p = c.base + c.task_bytes * size_t(task);
  Scratch<R> s;
  s.preps = p;
  p += c.per_state_bytes;
  s.work = p;
  p += c.work_bytes;
  s.block = reinterpret_cast<R*>(p);
  s.tmp = s.block + b;
  p += round_up(2 * b * sizeof(R));
  s.out = reinterpret_cast<double*>(p);
  p += round_up(b * sizeof(double));
  s.ctB = reinterpret_cast<C*>(p);
  p += round_up(b / 2 * sizeof(C));
  s.lcache = reinterpret_cast<R*>(p);
  p += round_up(size_t(c.layer_cache_reals) * sizeof(R));
  s.lrow = reinterpret_cast<const R**>(p);
  p += round_up(c.layers.size() * sizeof(const R*));
  s.lsums = reinterpret_cast<double*>(p);
  p += round_up(size_t(c.layer_reals) * sizeof(double));
  s.alt[0] = reinterpret_cast<R*>(p);
  s.alt[1] = reinterpret_cast<R*>(p + c.alt_bytes / 2);
  return s;
}

// Applies operation i of sp to one state (x, out: the VJPs'), prepared for its
// coefficients `row` (fresh: the task's first state).
template <class R>
void apply(const Call<R>& c, const StepPlan& sp, int i, const R* row, const Scratch<R>& s,
           bool fresh, R* state, const R* x, double* out) {
  const OpPlan& o = sp.ops[i];
  const void* prep = s.preps + o.at;
  if (o.per_state) {
    prepare(c, sp, o, row, s.block, s.tmp, s.preps + o.at, fresh);
  } else {
    prep = reinterpret_cast<const char*>(c.shared.data()) + o.at;
  }
  static_cast<const PreparedGate<R>*>(prep)->apply(sp.G, prep, s.work, state, x, out, 0,
                                                   sp.G.groups);
}

// ct_row += the VJP's sums for step sp (a fused step's spread onto its members).
template <class R>
void add_ct(const StepPlan& sp, const R* row, const Scratch<R>& s, R* ct_row) {
  const int64_t dim = int64_t(1) << sp.gate.k;
  const int64_t size = sp.gate.kind == kDense ? dim * dim : dim;
  if (is_fused(sp.step->kind)) {
    for (int64_t i = 0; i < size; ++i) s.ctB[i] = C(s.out[2 * i], s.out[2 * i + 1]);
    fused_ct(*sp.step, row, s.ctB, ct_row);
    return;
  }
  R* dst = ct_row + 2 * sp.step->offset;  // steps may share coefficients: add
  for (int64_t i = 0; i < 2 * size; ++i) dst[i] += R(s.out[i]);
}

// Whether rows a and b hold the same coefficients for layer lp's matrices.
template <class R>
bool same_spans(const LayerPlan<R>& lp, const R* a, const R* b) {
  for (const auto& [off, reals] : lp.spans) {
    for (int64_t i = 0; i < reals; ++i) {
      if (a[2 * off + i] != b[2 * off + i]) return false;
    }
  }
  return true;
}

// Layer lp on one state with coefficients `row`: forward (g null) or its sweep,
// adding its members' sums to ct_row when the call wants them.
template <class R>
void run_layer(const Call<R>& c, const LayerPlan<R>& lp, const R* row, const Scratch<R>& s, R* x,
               R* g, R* ct_row) {
  const R* mats = lp.mats.data();
  const R* tr = lp.tr.data();
  const int64_t reals = 8 * int64_t(lp.size);
  if (c.sh.cb > 1) {  // this state's matrices, unless the last state's coefficients were the same
    R* cache = s.lcache + lp.cache_at;
    const R*& last = s.lrow[&lp - c.layers.data()];
    if (last == nullptr || !same_spans(lp, last, row)) {
      if (g) {
        layer_sweep_mats(*c.program, lp.first, lp.size, row, cache, cache + reals);
      } else {
        layer_mats(*c.program, lp.first, lp.size, row, c.dir, cache);
      }
      last = row;
    }
    mats = cache;
    tr = cache + reals;
  }
  const Layer& ly = *lp.ly;
  double f[4 * kMaxQubits];
  if ((g != nullptr || c.dir == Direction::kForward) &&
      product_factors(g ? tr : mats, g != nullptr, lp.wires.data(), lp.size, c.sh.n, f)) {
    if (g == nullptr) {
      product_apply(c.lisa, c.sh.n, f, x, false);
      return;
    }
    double v[4 * kMaxQubits];
    product_sweep(c.lisa, c.sh.n, f, x, g, v, false);
    if (!c.want_ct) return;
    product_sums(v, lp.wires.data(), lp.size, c.sh.n, s.lsums);
    for (size_t k = 0; k < lp.size; ++k) {
      layer_ct(c.program->steps[lp.first + k], row, s.lsums + 8 * k, ct_row);
    }
    return;
  }
  if (g == nullptr) {
    for (int i = 0; i < ly.passes; ++i) c.lisa->layer(ly.pass[i], mats, x, 0, ly.pass[i].tiles);
    return;
  }
  std::fill(s.lsums, s.lsums + reals, 0.0);
  for (int i = ly.passes - 1; i >= 0; --i) {
    c.lisa->layer_vjp(ly.pass[i], mats, tr, x, g, s.lsums, 0, ly.pass[i].tiles);
  }
  if (!c.want_ct) return;
  for (size_t k = 0; k < lp.size; ++k) {
    layer_ct(c.program->steps[lp.first + k], row, s.lsums + 8 * k, ct_row);
  }
}

// Operation i of linear step sp: gathers *state into *alt and swaps the two.
template <class R>
void relink(const Call<R>& c, const StepPlan& sp, int i, R** state, R** alt) {
  const LinearMap& m = sp.lin[sp.ops[i].dir == Direction::kForward ? 0 : 1];
  c.lisa->linear(m.table.data(), m.n, *state, *alt, 0, int64_t(1) << m.n);
  std::swap(*state, *alt);
}

// Where a state ended up after the linear steps, copied home.
template <class R>
void settle(const Call<R>& c, R* home, const R* at) {
  if (at != home) std::memcpy(home, at, sizeof(R) << (c.sh.n + 1));
}

// The whole program on state b (fresh: the task's first).
template <class R>
void run_state(const Call<R>& c, int64_t b, const Scratch<R>& s, bool fresh) {
  const R* row = c.coefs + 2 * (c.sh.cb > 1 ? b : 0) * c.sh.total;
  R* const x_home = c.x + (b << (c.sh.n + 1));
  R *x = x_home, *x_alt = s.alt[0];
  const R* none = nullptr;  // the forward input: the VJPs' only
  if (!c.sweep) {
    for (const StepPlan& sp : c.steps) {
      if (sp.layer >= 0) {
        run_layer<R>(c, c.layers[size_t(sp.layer)], row, s, x, nullptr, nullptr);
      } else if (sp.ops[0].op == kOpLinear) {
        relink(c, sp, 0, &x, &x_alt);
      } else {
        apply(c, sp, 0, row, s, fresh, x, none, nullptr);
      }
    }
    settle(c, x_home, x);
    return;
  }
  R* const g_home = c.g + (b << (c.sh.n + 1));
  R *g = g_home, *g_alt = s.alt[1];
  R* ct_row = c.ct + 2 * b * c.sh.total;
  std::fill(ct_row, ct_row + 2 * c.sh.total, R(0));
  for (const StepPlan& sp : c.steps) {
    if (sp.layer >= 0) {
      run_layer(c, c.layers[size_t(sp.layer)], row, s, x, g, ct_row);
      continue;
    }
    if (sp.ops[0].op == kOpLinear) {
      relink(c, sp, 0, &x, &x_alt);
      relink(c, sp, 1, &g, &g_alt);
      continue;
    }
    apply(c, sp, 0, row, s, fresh, x, none, nullptr);
    const int op = sp.ops[1].op;
    const bool vjp = op == kOpDenseVjp || op == kOpDiagonalVjp;
    if (vjp) std::fill(s.out, s.out + c.block_reals, 0.0);
    apply(c, sp, 1, row, s, fresh, g, x, s.out);
    if (vjp) add_ct(sp, row, s, ct_row);
  }
  settle(c, x_home, x);
  settle(c, g_home, g);
}

template <class R>
void task(void* ctx, int t) {
  const Call<R>& c = *static_cast<const Call<R>*>(ctx);
  const Scratch<R> s = carve(c, t);
  std::fill(s.lrow, s.lrow + c.layers.size(), nullptr);  // the scratch outlives calls
  const int64_t b0 = int64_t(t) * c.per_task, b1 = std::min(c.sh.batch, b0 + c.per_task);
  try {
    for (int64_t b = b0; b < b1; ++b) run_state(c, b, s, b == b0);
  } catch (const std::bad_alloc&) {  // must not leave a worker thread
    c.out_of_memory.store(true);
  }
}

template <class R>
const char* run(const Program& p, Direction dir, Call<R>* c) {
  return guarded([&]() -> const char* {
    if (const char* e = plan(p, dir, c)) return e;
    if (c->sh.batch == 0) return nullptr;
    const int64_t work = (c->sh.batch << c->sh.n) * int64_t(c->steps.size() + 1);
    c->task_bytes = scratch_bytes(*c);
    int64_t ntasks = 1;
    if (work >= kParallelMinWork) {
      const int64_t roomy =
          std::max<int64_t>(num_threads(), kMaxScratch / std::max<size_t>(c->task_bytes, 1));
      ntasks = std::min<int64_t>({c->sh.batch, int64_t(kTasksPerThread) * num_threads(), roomy});
    }
    c->per_task = (c->sh.batch + ntasks - 1) / ntasks;
    ntasks = (c->sh.batch + c->per_task - 1) / c->per_task;
    const ReusedScratch scratch(kScratchTasks, c->task_bytes * size_t(ntasks));
    c->base = scratch.get();
    run_tasks(int(ntasks), &task<R>, c);
    if (c->out_of_memory.load()) throw std::bad_alloc();
    return nullptr;
  });
}

}  // namespace

bool batch_runner_takes(const Shapes& sh) {
  if (sh.batch == 1 && sh.n >= kOneStateMinQubits) return false;
  return sh.n <= kSmallQubits || (sh.n <= kMidQubits && sh.batch >= num_threads());
}

template <class R>
const char* run_batch(const Program& p, R* state, const R* coefs, const Shapes& sh,
                      Direction dir) {
  Call<R> c;
  c.sh = sh;
  c.coefs = coefs;
  c.x = state;
  c.g = c.ct = nullptr;
  c.sweep = c.want_ct = false;
  return run(p, dir, &c);
}

template <class R>
const char* run_batch_adjoint(const Program& p, R* x, R* g, const R* coefs, R* ct,
                              const Shapes& sh, bool want_ct) {
  Call<R> c;
  c.sh = sh;
  c.coefs = coefs;
  c.x = x;
  c.g = g;
  c.ct = ct;
  c.sweep = true;
  c.want_ct = want_ct;
  return run(p, Direction::kInverse, &c);
}

template const char* run_batch<float>(const Program&, float*, const float*, const Shapes&,
                                      Direction);
template const char* run_batch<double>(const Program&, double*, const double*, const Shapes&,
                                       Direction);
template const char* run_batch_adjoint<float>(const Program&, float*, float*, const float*,
                                              float*, const Shapes&, bool);
template const char* run_batch_adjoint<double>(const Program&, double*, double*, const double*,
                                               double*, const Shapes&, bool);

}  // namespace qsim_native
