// The lanes runner (program.h: run_lanes, run_lanes_adjoint): batches of states
// of a few qubits, W states at once, one per lane of a vector (kernels_lanes.inc).
//
// A state of n <= 7 qubits is a few vectors. State by state, nearly every gate
// acts inside a vector (lane shuffles), and its setup, per state where the
// states have their own angles, costs as much as its arithmetic. Across states
// every gate is plain arithmetic on whole vectors, on any wire, with per-state
// coefficients in the lanes. The program's steps are expanded once per (code, n,
// mode) into lane ops (fused blocks into their members, which costs a few more
// FMAs than the multiplied-out block and saves its algebra and its cotangent's
// chain rule), cached with the parsed program; each call only moves states and
// coefficients into lane order and back.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "program.h"

namespace qsim_native {

// A program expanded into lane ops for one n and mode (see lane_plan).
struct LanePlan {
  std::vector<LaneOp> ops;
  std::vector<int32_t> rows;  // the ops' bases and maps
};

namespace {

// States of up to this many qubits (a tile of 16 complex64 states is then 16 KiB:
// x, g and a gather's work stay in L1). At 8 qubits the layer kernels state by
// state were faster (HEA step, L=4, batch 256: 2.3 against 2.5 ms; n=7: 1.5
// against 1.3 ms; n=4: 0.76 against 0.38 ms).
constexpr int kLanesMaxQubits = 7;
// A single state fills one lane of the tile: worth it only while the tile is tiny.
constexpr int kLanesOneStateMaxQubits = 5;
// Less work than this (amplitude-steps) stays on the calling thread.
constexpr int64_t kParallelMinWork = int64_t(1) << 17;
constexpr int kTasksPerThread = 4;
// Lanes per tile at most (AVX-512 complex64: 16).
constexpr int kMaxLanes = 64;

enum Mode : int { kRunForward = 0, kRunInverse = 1, kRunTranspose = 2, kSweep = 3, kSweepCt = 4 };

// What a plan is built from: a gate, with its wires (a fused member's positions
// mapped through its block's wires); gate() points into this object.
struct WiredGate {
  Gate g;
  int64_t targets[kMaxQubits], controls[kMaxQubits];
  Gate gate() const {
    Gate out = g;
    out.targets = targets;
    out.controls = controls;
    return out;
  }
};

WiredGate wired(const Gate& g, const int64_t* block_wires) {
  WiredGate w;
  w.g = g;
  for (int64_t i = 0; i < g.k; ++i) w.targets[i] = block_wires ? block_wires[g.targets[i]] : g.targets[i];
  for (int64_t i = 0; i < g.nc; ++i) {
    w.controls[i] = block_wires ? block_wires[g.controls[i]] : g.controls[i];
  }
  return w;
}

// An op under construction: its rows go to the plan's pool, pointers fixed at the end.
struct Pending {
  LaneOp op;
  size_t base_at, map_at;
};

// The plan's rows, each distinct run stored once: every gate on the same wires
// shares its bases, and the sweep's two sides of a gate share theirs or its map.
struct RowPool {
  std::vector<int32_t>* rows;
  std::map<std::vector<int32_t>, size_t> seen;

  size_t add(std::vector<int32_t>&& run) {
    const auto [it, fresh] = seen.emplace(std::move(run), rows->size());
    if (fresh) rows->insert(rows->end(), it->first.begin(), it->first.end());
    return it->second;
  }
};

// Appends the op of gate w on tile `tile` in direction dir (vjp: the sweep's op
// on g, which adds the cotangent sums before applying U^T).
const char* push_gate(const WiredGate& w, int n, int tile, Direction dir, bool vjp,
                      std::vector<Pending>* ops, RowPool* pool) {
  const Gate g = w.gate();
  const int64_t dim = int64_t(1) << n;
  std::vector<int32_t> run;
  run.reserve(size_t(dim));
  Pending p;
  std::memset(&p.op, 0, sizeof(LaneOp));
  p.op.tile = tile;
  p.base_at = p.map_at = size_t(-1);
  if (g.kind == kLinear) {
    if (const char* e = check_linear(g, n)) return e;
    const LinearMap m = linear_map(g, n, dir != Direction::kForward);
    p.op.kind = kLaneGather;
    for (int64_t r = 0; r < dim; ++r) {
      int64_t f = 0;
      for (int t = 0; t < m.chunks; ++t) f ^= m.table[size_t(t) * 256 + size_t((r >> (8 * t)) & 255)];
      run.push_back(int32_t(f));
    }
    p.map_at = pool->add(std::move(run));
    ops->push_back(p);
    return nullptr;
  }
  Geometry G;  // checks the wires against n, with the other runners' messages
  if (const char* e = build_geometry(&G, n, 0, g.targets, int(g.k), g.controls, int(g.nc))) {
    return e;
  }
  int64_t tmask = 0, cmask = 0;
  for (int64_t q = 0; q < g.k; ++q) tmask |= int64_t(1) << (n - 1 - g.targets[q]);
  for (int64_t q = 0; q < g.nc; ++q) cmask |= int64_t(1) << (n - 1 - g.controls[q]);
  const int64_t D = int64_t(1) << g.k;
  for (int64_t a = 0; a < D; ++a) {
    int64_t off = 0;
    for (int64_t q = 0; q < g.k; ++q) {
      if ((a >> (g.k - 1 - q)) & 1) off |= int64_t(1) << (n - 1 - g.targets[q]);
    }
    p.op.pat[a] = int32_t(off);
  }
  p.op.k = int(g.k);
  if (g.kind == kPermutation) {  // out[a] = in[perm[a]]; backwards, the inverse perm
    int64_t perm[1 << kMaxTargets];
    for (int64_t a = 0; a < D; ++a) {
      if (dir == Direction::kForward) {
        perm[a] = g.perm[a];
      } else {
        perm[g.perm[a]] = a;
      }
    }
    p.op.kind = kLaneGather;
    for (int64_t r = 0; r < dim; ++r) {
      if ((r & cmask) != cmask) {
        run.push_back(int32_t(r));
        continue;
      }
      int64_t pa = 0;  // the pattern of r's target bits
      for (int64_t q = 0; q < g.k; ++q) {
        if (r & (int64_t(1) << (n - 1 - g.targets[q]))) pa |= int64_t(1) << (g.k - 1 - q);
      }
      run.push_back(int32_t((r & ~tmask) | p.op.pat[perm[pa]]));
    }
    p.map_at = pool->add(std::move(run));
    ops->push_back(p);
    return nullptr;
  }
  p.op.kind = g.kind == kDense ? kLaneDense : kLaneDiagonal;
  p.op.coef = g.offset;
  p.op.vjp = vjp ? 1 : 0;
  const Direction d = vjp ? Direction::kTranspose : dir;
  p.op.trans = g.kind == kDense && d != Direction::kForward;
  p.op.conj = d == Direction::kInverse;
  for (int64_t r = 0; r < dim; ++r) {
    if ((r & tmask) == 0 && (r & cmask) == cmask) run.push_back(int32_t(r));
  }
  p.op.nbase = int64_t(run.size());
  p.base_at = pool->add(std::move(run));
  ops->push_back(p);
  return nullptr;
}

// The program's gates in the order a mode runs them: every step (a fused one
// as its members) forwards, or all of them backwards.
std::vector<WiredGate> gates_in_order(const Program& p, bool reverse) {
  std::vector<WiredGate> out;
  for (const Step& s : p.steps) {
    if (!is_fused(s.kind)) {
      out.push_back(wired(s, nullptr));
      continue;
    }
    for (const Member& m : s.members) out.push_back(wired(m, s.targets));
  }
  if (reverse) std::reverse(out.begin(), out.end());
  return out;
}

const char* build_plan(const Program& p, int n, int mode, LanePlan* plan) {
  const bool sweep = mode >= kSweep;
  const std::vector<WiredGate> gates = gates_in_order(p, mode != kRunForward);
  std::vector<Pending> ops;
  RowPool pool{&plan->rows, {}};
  for (const WiredGate& w : gates) {
    if (!sweep) {
      if (const char* e = push_gate(w, n, 0, Direction(mode), false, &ops, &pool)) return e;
      continue;
    }
    if (const char* e = push_gate(w, n, 0, Direction::kInverse, false, &ops, &pool)) return e;
    const bool vjp = mode == kSweepCt && w.g.kind != kPermutation && w.g.kind != kLinear;
    if (const char* e = push_gate(w, n, 1, Direction::kTranspose, vjp, &ops, &pool)) return e;
  }
  const int32_t* rows = plan->rows.data();
  for (Pending& o : ops) {
    if (o.base_at != size_t(-1)) o.op.base = rows + o.base_at;
    if (o.map_at != size_t(-1)) o.op.map = rows + o.map_at;
    plan->ops.push_back(o.op);
  }
  return nullptr;
}

// The plan for (p, n, mode), built on first use and kept with the program.
std::shared_ptr<const LanePlan> lane_plan(const Program& p, int n, int mode, const char** err) {
  const int64_t key = int64_t(n) * 8 + mode;
  std::lock_guard<std::mutex> lk(p.lanes_mu);
  for (const auto& [k, plan] : p.lane_plans) {
    if (k == key) return plan;
  }
  auto plan = std::make_shared<LanePlan>();
  if ((*err = build_plan(p, n, mode, plan.get()))) return nullptr;
  p.lane_plans.emplace_back(key, plan);
  return plan;
}

template <class R>
struct LaneCall {
  const IsaKernels<R>* isa;
  const LanePlan* plan;
  Shapes sh;
  int W;
  const R* coefs;
  R *x, *g, *ct;  // g, ct: the sweep's
  const R* shared_cf;  // states sharing their coefficients: in lane order, once
  int64_t groups, per_task;
  size_t tile_reals, cf_reals, task_reals;
  R* base;
};

// Coefficient rows rows[0, W) (nullptr: a missing state) into lane order.
template <class R>
void coefs_to_lanes(const R* const* rows, int W, int64_t total, R* cf) {
  for (int l = 0; l < W; ++l) {
    const R* row = rows[l];
    for (int64_t c = 0; c < total; ++c) {
      R* v = cf + c * 3 * W;
      const R re = row ? row[2 * c] : R(0), im = row ? row[2 * c + 1] : R(0);
      v[l] = re;
      v[W + l] = im;
      v[2 * W + l] = -im;
    }
  }
}

// States b0 .. b0 + live - 1 of `states` into a tile (missing lanes zero), or back.
template <class R>
void to_tile(const R* states, int64_t b0, int live, int W, int n, R* t) {
  const int64_t rows = int64_t(1) << n;
  for (int l = 0; l < W; ++l) {
    const R* s = l < live ? states + ((b0 + l) << (n + 1)) : nullptr;
    for (int64_t r = 0; r < rows; ++r) {
      t[r * 2 * W + l] = s ? s[2 * r] : R(0);
      t[r * 2 * W + W + l] = s ? s[2 * r + 1] : R(0);
    }
  }
}

template <class R>
void from_tile(const R* t, int64_t b0, int live, int W, int n, R* states) {
  const int64_t rows = int64_t(1) << n;
  for (int l = 0; l < live; ++l) {
    R* s = states + ((b0 + l) << (n + 1));
    for (int64_t r = 0; r < rows; ++r) {
      s[2 * r] = t[r * 2 * W + l];
      s[2 * r + 1] = t[r * 2 * W + W + l];
    }
  }
}

template <class R>
void lane_task(void* ctx, int task) {
  const LaneCall<R>& c = *static_cast<const LaneCall<R>*>(ctx);
  const int W = c.W, n = c.sh.n;
  const int64_t total = c.sh.total;
  R* xt = c.base + c.task_reals * size_t(task);
  R* gt = xt + c.tile_reals;
  R* work = gt + c.tile_reals;
  R* cf = work + c.tile_reals;
  R* ctl = cf + c.cf_reals;
  const int64_t g0 = int64_t(task) * c.per_task, g1 = std::min(c.groups, g0 + c.per_task);
  for (int64_t grp = g0; grp < g1; ++grp) {
    const int64_t b0 = grp * W;
    const int live = int(std::min<int64_t>(W, c.sh.batch - b0));
    to_tile(c.x, b0, live, W, n, xt);
    if (c.g) to_tile(c.g, b0, live, W, n, gt);
    const R* lanes_cf = c.shared_cf;
    if (lanes_cf == nullptr) {
      const R* rows[kMaxLanes];
      for (int l = 0; l < W; ++l) rows[l] = l < live ? c.coefs + 2 * (b0 + l) * total : nullptr;
      coefs_to_lanes(rows, W, total, cf);
      lanes_cf = cf;
    }
    if (c.ct) std::fill(ctl, ctl + 3 * W * total, R(0));
    c.isa->lanes_run(c.plan->ops.data(), int64_t(c.plan->ops.size()), n, xt, gt, lanes_cf, ctl,
                     work);
    from_tile(xt, b0, live, W, n, c.x);
    if (c.g) from_tile(gt, b0, live, W, n, c.g);
    if (c.ct == nullptr) continue;
    for (int l = 0; l < live; ++l) {
      R* row = c.ct + 2 * (b0 + l) * total;
      for (int64_t e = 0; e < total; ++e) {
        const R* a = ctl + e * 3 * W;
        row[2 * e] = a[l] - a[W + l];
        row[2 * e + 1] = a[2 * W + l];
      }
    }
  }
}

template <class R>
const char* run(const Program& p, int mode, R* x, R* g, const R* coefs, R* ct, const Shapes& sh) {
  return guarded([&]() -> const char* {
    const char* err = nullptr;
    const std::shared_ptr<const LanePlan> plan = lane_plan(p, sh.n, mode, &err);
    if (!plan) return err;
    if (sh.batch == 0) return nullptr;
    LaneCall<R> c;
    c.isa = lanes_kernels<R>();
    c.plan = plan.get();
    c.sh = sh;
    c.W = c.isa->lanes_width;
    if (c.W < 1 || c.W > kMaxLanes) return "qsim native: unsupported lanes width";
    c.coefs = coefs;
    c.x = x;
    c.g = g;
    c.ct = ct;
    c.groups = (sh.batch + c.W - 1) / c.W;
    c.tile_reals = size_t(2 * c.W) << sh.n;
    c.cf_reals = size_t(3 * c.W * sh.total);
    c.task_reals = (3 * c.tile_reals + 2 * c.cf_reals + 15) / 16 * 16;
    std::vector<R> shared;
    c.shared_cf = nullptr;
    if (sh.cb == 1) {
      shared.resize(c.cf_reals);
      std::vector<const R*> rows(size_t(c.W), coefs);
      coefs_to_lanes(rows.data(), c.W, sh.total, shared.data());
      c.shared_cf = shared.data();
    }
    const int64_t work = (sh.batch << sh.n) * int64_t(plan->ops.size() + 1);
    int64_t ntasks = 1;
    if (work >= kParallelMinWork) ntasks = std::min<int64_t>(c.groups, kTasksPerThread * num_threads());
    c.per_task = (c.groups + ntasks - 1) / ntasks;
    ntasks = (c.groups + c.per_task - 1) / c.per_task;
    const ReusedScratch scratch(kScratchTasks, c.task_reals * sizeof(R) * size_t(ntasks));
    c.base = reinterpret_cast<R*>(scratch.get());
    run_tasks(int(ntasks), &lane_task<R>, &c);
    return nullptr;
  });
}

}  // namespace

bool lanes_runner_takes(const Shapes& sh) {
  if (sh.n > kLanesMaxQubits || sh.batch < 1) return false;
  if (sh.batch == 1 && sh.n > kLanesOneStateMaxQubits) return false;
  const char* off = std::getenv("QSIM_NATIVE_LANES");
  return off == nullptr || off[0] != '0';
}

template <class R>
const char* run_lanes(const Program& p, R* state, const R* coefs, const Shapes& sh,
                      Direction dir) {
  return run(p, int(dir), state, static_cast<R*>(nullptr), coefs, static_cast<R*>(nullptr), sh);
}

template <class R>
const char* run_lanes_adjoint(const Program& p, R* x, R* g, const R* coefs, R* ct,
                              const Shapes& sh, bool want_ct) {
  return run(p, want_ct ? kSweepCt : kSweep, x, g, coefs, ct, sh);
}

template const char* run_lanes<float>(const Program&, float*, const float*, const Shapes&,
                                      Direction);
template const char* run_lanes<double>(const Program&, double*, const double*, const Shapes&,
                                       Direction);
template const char* run_lanes_adjoint<float>(const Program&, float*, float*, const float*,
                                              float*, const Shapes&, bool);
template const char* run_lanes_adjoint<double>(const Program&, double*, double*, const double*,
                                               double*, const Shapes&, bool);

}  // namespace qsim_native
