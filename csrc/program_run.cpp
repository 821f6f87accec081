// The program runner: applies a parsed Program's steps to a batch of states
// through the kernels of qsim_native.h (forward, inverse or transposed), and
// the adjoint sweep that runs it backwards for reverse-mode AD. Gate by gate,
// each gate over the whole batch and split over the threads; small states go
// to program_batch.cpp instead.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "program.h"

namespace qsim_native {

Gate plain_gate(const Step& s) {
  if (!is_fused(s.kind)) return s;
  return Gate{s.kind == kFusedDense ? kDense : kDiagonal, s.k, 0, 0, s.targets, s.controls,
              nullptr};
}

template <class R>
const R* step_coefs(const Step& s, const R* row, R* block) {
  if (!is_fused(s.kind)) return row + 2 * s.offset;
  const int64_t dim = int64_t(1) << s.k;
  const int64_t size = s.kind == kFusedDense ? dim * dim : dim;
  C B[1 << (2 * kMaxTargets)];
  fused_block(s, row, B);
  for (int64_t i = 0; i < size; ++i) {
    block[2 * i] = R(B[i].real());
    block[2 * i + 1] = R(B[i].imag());
  }
  return block;
}

bool coefs_as_is(const Gate& g, Direction dir) {
  return dir == Direction::kForward || (dir == Direction::kTranspose && g.kind == kDiagonal);
}

template <class R>
void transform_coefs(const Gate& g, const R* c, Direction dir, R* out) {
  const int64_t dim = int64_t(1) << g.k;
  const R sign = dir == Direction::kInverse ? R(-1) : R(1);  // conjugate
  if (g.kind == kDiagonal) {
    for (int64_t i = 0; i < dim; ++i) {
      out[2 * i] = c[2 * i];
      out[2 * i + 1] = sign * c[2 * i + 1];
    }
    return;
  }
  for (int64_t r = 0; r < dim; ++r) {  // dense: transposed
    for (int64_t j = 0; j < dim; ++j) {
      out[2 * (r * dim + j)] = c[2 * (j * dim + r)];
      out[2 * (r * dim + j) + 1] = sign * c[2 * (j * dim + r) + 1];
    }
  }
}

ReusedScratch::ReusedScratch(int slot, size_t bytes) {
  thread_local std::vector<std::max_align_t> kept[kScratchSlots];
  const size_t pad = 64;
  if (bytes > kReuseBytes || slot < 0 || slot >= kScratchSlots) {
    own_.reset(new char[bytes + pad]);
    p_ = own_.get();
  } else {
    std::vector<std::max_align_t>& v = kept[slot];
    const size_t need = (bytes + pad + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t);
    if (v.size() < need) v.resize(need);
    p_ = reinterpret_cast<char*>(v.data());
  }
  p_ += (pad - reinterpret_cast<uintptr_t>(p_) % pad) % pad;
}

void layer_wires(const Program& p, size_t first, size_t size, int64_t* wires) {
  for (size_t k = 0; k < size; ++k) wires[k] = p.steps[first + k].targets[0];
}

// What every layer member amounts to: a dense one-qubit gate (transform_coefs reads kind and k).
constexpr Gate kOneQubitDense{kDense, 1, 0, 0, nullptr, nullptr, nullptr};

template <class R>
void layer_mats(const Program& p, size_t first, size_t size, const R* row, Direction dir,
                R* out) {
  for (size_t k = 0; k < size; ++k) {
    const Step& s = p.steps[first + k];
    R block[8];
    const R* c = row + 2 * s.offset;
    if (is_fused(s.kind)) {  // its members multiplied out (a fused diagonal too, as 2x2)
      C B[4];
      fused_block2(s, row, B);
      for (int e = 0; e < 4; ++e) {
        block[2 * e] = R(B[e].real());
        block[2 * e + 1] = R(B[e].imag());
      }
      c = block;
    }
    if (coefs_as_is(kOneQubitDense, dir)) {
      std::copy(c, c + 8, out + 8 * k);
    } else {
      transform_coefs(kOneQubitDense, c, dir, out + 8 * k);
    }
  }
}

template <class R>
void layer_sweep_mats(const Program& p, size_t first, size_t size, const R* row, R* inv, R* tr) {
  for (size_t k = 0; k < size; ++k) {
    R u[8];
    layer_mats(p, first + k, 1, row, Direction::kForward, u);
    transform_coefs(kOneQubitDense, u, Direction::kInverse, inv + 8 * k);
    transform_coefs(kOneQubitDense, u, Direction::kTranspose, tr + 8 * k);
  }
}

template <class R>
void layer_ct(const Step& s, const R* row, const double* sums, R* ct_row) {
  if (!is_fused(s.kind)) {
    R* dst = ct_row + 2 * s.offset;  // steps may share coefficients: add
    for (int e = 0; e < 8; ++e) dst[e] += R(sums[e]);
    return;
  }
  C ctB[4];
  for (int e = 0; e < 4; ++e) ctB[e] = C(sums[2 * e], sums[2 * e + 1]);
  fused_ct2(s, row, ctB, ct_row);
}

namespace {

// The gate's coefficients for every row, transformed for `dir`. Returns rows of
// `size` complex numbers, `row_stride` complex apart.
template <class R>
const R* transformed(const Gate& s, const R* coefs, const Shapes& sh, Direction dir,
                     std::vector<R>* buf, int64_t* row_stride) {
  const int64_t dim = int64_t(1) << s.k;
  const int64_t size = s.kind == kDense ? dim * dim : dim;
  if (coefs_as_is(s, dir)) {
    *row_stride = sh.cb > 1 ? sh.total : 0;
    return coefs + 2 * s.offset;
  }
  buf->resize(size_t(2 * size * sh.cb));
  for (int64_t r = 0; r < sh.cb; ++r) {
    transform_coefs(s, coefs + 2 * (r * sh.total + s.offset), dir, buf->data() + 2 * r * size);
  }
  *row_stride = sh.cb > 1 ? size : 0;
  return buf->data();
}

void inverse_perm(const int64_t* perm, int64_t dim, int64_t* out) {
  for (int64_t j = 0; j < dim; ++j) out[perm[j]] = j;
}

// The blocks of a fused step for every coefficient row, as a plain dense or diagonal
// gate over (cb, size) coefficients: returns that gate; `shapes` gets total = size.
template <class R>
Gate fused_rows(const Step& s, const R* coefs, const Shapes& sh, std::vector<R>* rows,
                Shapes* shapes) {
  const Gate g = plain_gate(s);
  const int64_t dim = int64_t(1) << s.k;
  const int64_t size = g.kind == kDense ? dim * dim : dim;
  rows->resize(size_t(2 * size * sh.cb));
  for (int64_t r = 0; r < sh.cb; ++r) {
    step_coefs(s, coefs + 2 * r * sh.total, rows->data() + 2 * r * size);
  }
  *shapes = sh;
  shapes->total = size;
  return g;
}

// A linear step on `batch` states (its inverse is its transpose).
template <class R>
const char* apply_linear_batch(const Gate& s, R* state, const Shapes& sh, Direction dir) {
  if (const char* e = check_linear(s, sh.n)) return e;
  const LinearMap m = linear_map(s, sh.n, dir != Direction::kForward);
  const int64_t dim = int64_t(1) << sh.n;
  const ReusedScratch work(kScratchLinear, size_t(2 * dim) * sizeof(R));
  R* w = reinterpret_cast<R*>(work.get());
  if (sh.batch == 1) {
    apply_linear_threaded(m, state, w, num_threads() > 1 ? 4 * num_threads() : 1);
    return nullptr;
  }
  for (int64_t b = 0; b < sh.batch; ++b) apply_linear(m, state + 2 * b * dim, w);
  return nullptr;
}

// The linear steps of one run: each gathers the states into a second buffer and the
// run carries on from there (no copy of the states before every gather), where the
// batch of states fits kReuseBytes; else each copies and gathers in place.
template <class R>
class Relink {
 public:
  Relink(const Program& p, R* home, const Shapes& sh, int slot)
      : p_(p), home_(home), cur_(home), sh_(sh), bytes_(size_t(sh.batch) * (sizeof(R) << (sh.n + 1))) {
    bool any = false;
    for (const Step& s : p.steps) any = any || s.kind == kLinear;
    if (any && bytes_ <= kReuseBytes) {
      buf_.emplace(slot, bytes_);
      alt_ = reinterpret_cast<R*>(buf_->get());
    }
  }
  Relink(const Relink&) = delete;
  Relink& operator=(const Relink&) = delete;

  // Where the states are now.
  R* state() const { return cur_; }

  // Linear step s (one of the program's) on the states.
  const char* linear(const Step& s, Direction dir) {
    if (alt_ == nullptr) return apply_linear_batch(s, cur_, sh_, dir);
    if (const char* e = check_linear(s, sh_.n)) return e;
    const auto m = program_linear_map(p_, s, sh_.n, dir != Direction::kForward);
    const int64_t dim = int64_t(1) << sh_.n;
    const int ntasks = sh_.batch == 1 && num_threads() > 1 ? 4 * num_threads() : 1;
    for (int64_t b = 0; b < sh_.batch; ++b) {
      gather_linear_threaded(*m, cur_ + 2 * b * dim, alt_ + 2 * b * dim, ntasks);
    }
    std::swap(cur_, alt_);
    return nullptr;
  }

  // The states back where the caller gave them (once, at the end of the run).
  void settle() const {
    if (cur_ != home_) std::memcpy(home_, cur_, bytes_);
  }

 private:
  const Program& p_;
  std::optional<ReusedScratch> buf_;
  R *home_, *cur_, *alt_ = nullptr;
  Shapes sh_;
  size_t bytes_;
};

// One plain gate on `batch` states.
template <class R>
const char* apply_plain(const Gate& s, R* state, const R* coefs, const Shapes& sh, Direction dir,
                        std::vector<R>* buf) {
  if (s.kind == kLinear) return apply_linear_batch(s, state, sh, dir);
  if (s.kind == kPermutation) {
    int64_t inv[1 << kMaxTargets];
    const int64_t* perm = s.perm;
    if (dir != Direction::kForward) {  // a permutation matrix's inverse is its transpose
      inverse_perm(s.perm, int64_t(1) << s.k, inv);
      perm = inv;
    }
    return apply_permutation<R>(state, sh.batch, sh.n, perm, s.targets, int(s.k), s.controls,
                                int(s.nc));
  }
  int64_t stride;
  const R* c = transformed(s, coefs, sh, dir, buf, &stride);
  if (s.kind == kDiagonal) {
    return apply_diagonal<R>(state, sh.batch, sh.n, c, stride, s.targets, int(s.k));
  }
  return apply_dense<R>(state, sh.batch, sh.n, c, stride, s.targets, int(s.k), s.controls,
                        int(s.nc));
}

// One step, fused or plain, on `batch` states.
template <class R>
const char* apply_step(const Step& s, R* state, const R* coefs, const Shapes& sh, Direction dir,
                       std::vector<R>* buf) {
  if (is_fused(s.kind)) {
    std::vector<R> rows;
    Shapes fs;
    const Gate t = fused_rows(s, coefs, sh, &rows, &fs);
    return apply_plain(t, state, rows.data(), fs, dir, buf);
  }
  return apply_plain(s, state, coefs, sh, dir, buf);
}

// Less work than this (amplitude-gates) in a layer pass stays on the calling thread,
// and so does a state under an eighth of one core's L2 (in cache either way: shared out,
// its tiles move between the cores' caches every pass; 2 MiB-L2 Xeon, HEA step at
// n=14, batch 1, alternated: 0.60-0.63 -> 0.57-0.60 ms; no change where L2 is 512 KiB).
constexpr int64_t kLayerParallelMinWork = int64_t(1) << 17;

// One layer pass on one state, its tiles shared out over the threads (layer_task).
template <class R>
struct LayerCall {
  const IsaKernels<R>* isa;
  const LayerPass* pass;
  const R *mats, *tr;  // the sweep: inv and tr
  R *x, *g;            // g null: the forward
  std::vector<double>* task_sums;  // the sweep: each task's sums (size x 8)
  int64_t per_task, tiles, size;
};

template <class R>
void layer_task(void* ctx, int t) {
  const LayerCall<R>& c = *static_cast<const LayerCall<R>*>(ctx);
  const int64_t u0 = int64_t(t) * c.per_task;
  const int64_t u1 = std::min(u0 + c.per_task, c.tiles);
  R* x = c.x;
  if (c.g == nullptr) {
    c.isa->layer(*c.pass, c.mats, x, u0, u1);
    return;
  }
  c.isa->layer_vjp(*c.pass, c.mats, c.tr, x, c.g, c.task_sums->data() + 8 * c.size * t, u0, u1);
}

// The layer of steps [first, first + size) on `batch` states (Layer in qsim_native.h):
// its matrices for every coefficient row, then each pass. The sweep (g not null)
// runs the passes backwards with layer_vjp and, when ct is not null, adds each
// member's sums to its coefficients' cotangent in ct (batch x total).
template <class R>
const char* apply_layer(const Program& p, size_t first, size_t size, R* x, R* g, R* ct,
                        const R* coefs, const Shapes& sh, Direction dir) {
  std::vector<int64_t> wires(size);
  layer_wires(p, first, size, wires.data());
  auto ly = std::make_unique<Layer>();
  if (const char* e = build_layer(ly.get(), sh.n, wires.data(), int(size), int(2 * sizeof(R)))) return e;
  const bool sweep = g != nullptr;
  const int64_t rows = sh.cb, per_row = 8 * int64_t(size);
  std::vector<R> mats(size_t(rows * per_row)), tr(sweep ? mats.size() : 0);
  for (int64_t r = 0; r < rows; ++r) {
    const R* row = coefs + 2 * r * sh.total;
    if (sweep) {
      layer_sweep_mats(p, first, size, row, mats.data() + r * per_row, tr.data() + r * per_row);
    } else {
      layer_mats(p, first, size, row, dir, mats.data() + r * per_row);
    }
  }
  LayerCall<R> c;
  c.isa = layer_kernels_for<R>(sh.n);
  c.size = int64_t(size);
  std::vector<double> sums;
  c.task_sums = &sums;
  const int64_t dim2 = int64_t(2) << sh.n;
  for (int64_t b = 0; b < sh.batch; ++b) {
    const int64_t r = sh.cb > 1 ? b : 0;
    c.mats = mats.data() + r * per_row;
    c.tr = sweep ? tr.data() + r * per_row : nullptr;
    c.x = x + b * dim2;
    c.g = sweep ? g + b * dim2 : nullptr;
    double f[4 * kMaxQubits];
    if ((sweep || dir == Direction::kForward) &&
        product_factors(sweep ? c.tr : c.mats, sweep, wires.data(), size, sh.n, f)) {
      if (!sweep) {
        product_apply(c.isa, sh.n, f, c.x, true);
        continue;
      }
      double v[4 * kMaxQubits];
      product_sweep(c.isa, sh.n, f, c.x, c.g, v, true);
      if (ct == nullptr) continue;
      std::vector<double> member(8 * size);
      product_sums(v, wires.data(), size, sh.n, member.data());
      for (size_t k = 0; k < size; ++k) {
        layer_ct(p.steps[first + k], coefs + 2 * r * sh.total, member.data() + 8 * k,
                 ct + 2 * b * sh.total);
      }
      continue;
    }
    for (int i = 0; i < ly->passes; ++i) {
      const LayerPass& P = ly->pass[sweep ? ly->passes - 1 - i : i];
      c.pass = &P;
      c.tiles = P.tiles;
      const int64_t work = (int64_t(1) << sh.n) * P.m;
      const int64_t l2 = l2_cache_bytes();
      const bool shared = work >= kLayerParallelMinWork && (l2 <= 0 || 8 * (int64_t(2 * sizeof(R)) << sh.n) >= l2);
      int64_t ntasks = shared ? std::min<int64_t>(P.tiles, 4 * num_threads()) : 1;
      c.per_task = (P.tiles + ntasks - 1) / ntasks;
      ntasks = (P.tiles + c.per_task - 1) / c.per_task;
      if (sweep) sums.assign(size_t(ntasks * 8 * c.size), 0.0);
      run_tasks(int(ntasks), &layer_task<R>, &c);
      if (!sweep || ct == nullptr) continue;
      for (int64_t t = 1; t < ntasks; ++t) {  // the tasks' sums, then onto the members
        for (int64_t e = 0; e < 8 * c.size; ++e) sums[size_t(e)] += sums[size_t(8 * c.size * t + e)];
      }
      for (int j = 0; j < P.m; ++j) {
        const int k = P.gate[j];
        layer_ct(p.steps[first + size_t(k)], coefs + 2 * r * sh.total, sums.data() + 8 * k,
                 ct + 2 * b * sh.total);
      }
    }
  }
  return nullptr;
}

}  // namespace

template <class R>
const char* run_program(const Program& p, R* state, const R* coefs, const Shapes& sh,
                        Direction dir) {
  if (lanes_runner_takes(sh)) return run_lanes(p, state, coefs, sh, dir);
  if (batch_runner_takes(sh)) return run_batch(p, state, coefs, sh, dir);
  std::vector<R> buf;
  Relink<R> x(p, state, sh, kScratchLinear);
  const size_t ns = p.steps.size();
  for (size_t j = 0; j < ns;) {
    const size_t i = dir == Direction::kForward ? j : ns - 1 - j;
    const Step& s = p.steps[i];
    const char* e = nullptr;
    if (s.layer_size > 0) {
      e = apply_layer<R>(p, s.layer_first, s.layer_size, x.state(), nullptr, nullptr, coefs, sh,
                         dir);
      j += s.layer_size;
    } else {
      e = s.kind == kLinear ? x.linear(s, dir) : apply_step(s, x.state(), coefs, sh, dir, &buf);
      ++j;
    }
    if (e) return e;
  }
  x.settle();
  return nullptr;
}

template <class R>
const char* run_adjoint(const Program& p, R* x0, R* g0, const R* coefs, R* ct, const Shapes& sh,
                        bool want_ct) {
  if (lanes_runner_takes(sh)) return run_lanes_adjoint(p, x0, g0, coefs, ct, sh, want_ct);
  if (batch_runner_takes(sh)) return run_batch_adjoint(p, x0, g0, coefs, ct, sh, want_ct);
  std::vector<R> buf, tmp, rows;
  Relink<R> xr(p, x0, sh, kScratchLinear), gr(p, g0, sh, kScratchLinearG);
  std::fill(ct, ct + 2 * sh.batch * sh.total, R(0));
  for (auto it = p.steps.rbegin(); it != p.steps.rend(); ++it) {
    R *x = xr.state(), *g = gr.state();
    if (it->layer_size > 0) {
      const char* e = apply_layer<R>(p, it->layer_first, it->layer_size, x, g,
                                     want_ct ? ct : nullptr, coefs, sh, Direction::kInverse);
      if (e) return e;
      it += it->layer_size - 1;
      continue;
    }
    if (it->kind == kLinear) {
      if (const char* e = xr.linear(*it, Direction::kInverse)) return e;
      if (const char* e = gr.linear(*it, Direction::kTranspose)) return e;
      continue;
    }
    const bool fused = is_fused(it->kind);
    Shapes fs = sh;
    const Gate s = fused ? fused_rows(*it, coefs, sh, &rows, &fs) : Gate(*it);
    const R* c0 = fused ? rows.data() : coefs;
    if (const char* e = apply_plain(s, x, c0, fs, Direction::kInverse, &buf)) return e;
    if (s.kind == kPermutation || !want_ct) {
      if (const char* e = apply_plain(s, g, c0, fs, Direction::kTranspose, &buf)) return e;
      continue;
    }
    const int64_t dim = int64_t(1) << s.k;
    const int64_t size = s.kind == kDense ? dim * dim : dim;
    const int64_t stride = fs.cb > 1 ? fs.total : 0;
    const R* c = c0 + 2 * s.offset;
    tmp.resize(size_t(2 * size * sh.batch));
    const char* e = s.kind == kDense
        ? dense_vjp<R>(g, x, sh.batch, sh.n, c, stride, tmp.data(), s.targets, int(s.k),
                       s.controls, int(s.nc))
        : diagonal_vjp<R>(g, x, sh.batch, sh.n, c, stride, tmp.data(), s.targets, int(s.k));
    if (e) return e;
    std::vector<C> ctB(fused ? size_t(size) : 0);
    for (int64_t b = 0; b < sh.batch; ++b) {
      const R* src = tmp.data() + 2 * b * size;
      if (fused) {  // the block's cotangent onto its members' coefficients
        for (int64_t i = 0; i < size; ++i) ctB[size_t(i)] = C(src[2 * i], src[2 * i + 1]);
        const R* row = coefs + 2 * (sh.cb > 1 ? b : 0) * sh.total;
        fused_ct(*it, row, ctB.data(), ct + 2 * b * sh.total);
        continue;
      }
      R* dst = ct + 2 * (b * sh.total + s.offset);  // steps may share coefficients: add
      for (int64_t i = 0; i < 2 * size; ++i) dst[i] += src[i];
    }
  }
  xr.settle();
  gr.settle();
  return nullptr;
}

template const float* step_coefs<float>(const Step&, const float*, float*);
template const double* step_coefs<double>(const Step&, const double*, double*);
template void transform_coefs<float>(const Gate&, const float*, Direction, float*);
template void layer_mats<float>(const Program&, size_t, size_t, const float*, Direction, float*);
template void layer_mats<double>(const Program&, size_t, size_t, const double*, Direction,
                                 double*);
template void layer_sweep_mats<float>(const Program&, size_t, size_t, const float*, float*,
                                      float*);
template void layer_sweep_mats<double>(const Program&, size_t, size_t, const double*, double*,
                                       double*);
template void layer_ct<float>(const Step&, const float*, const double*, float*);
template void layer_ct<double>(const Step&, const double*, const double*, double*);
template void transform_coefs<double>(const Gate&, const double*, Direction, double*);
template const char* run_program<float>(const Program&, float*, const float*, const Shapes&,
                                        Direction);
template const char* run_program<double>(const Program&, double*, const double*, const Shapes&,
                                         Direction);
template const char* run_adjoint<float>(const Program&, float*, float*, const float*, float*,
                                        const Shapes&, bool);
template const char* run_adjoint<double>(const Program&, double*, double*, const double*,
                                         double*, const Shapes&, bool);

}  // namespace qsim_native
