// The program runner: applies a parsed Program's steps to a batch of states
// through the kernels of qsim_native.h (forward, inverse or transposed), and
// the adjoint sweep that runs it backwards for reverse-mode AD.
#include <algorithm>
#include <vector>

#include "program.h"

namespace qsim_native {
namespace {

// The gate's coefficients for every row, transformed for `dir`: as they are
// (forward), conjugated (inverse) or transposed (transpose), dense matrices
// transposed for both. Returns rows of `size` complex numbers, `row_stride`
// complex apart.
template <class R>
const R* transformed(const Gate& s, const R* coefs, const Shapes& sh, Direction dir,
                     std::vector<R>* buf, int64_t* row_stride) {
  const int64_t dim = int64_t(1) << s.k;
  const int64_t size = s.kind == kDense ? dim * dim : dim;
  if (dir == Direction::kForward || (dir == Direction::kTranspose && s.kind == kDiagonal)) {
    *row_stride = sh.cb > 1 ? sh.total : 0;
    return coefs + 2 * s.offset;
  }
  const bool conjugate = dir == Direction::kInverse;
  buf->resize(size_t(2 * size * sh.cb));
  for (int64_t r = 0; r < sh.cb; ++r) {
    const R* src = coefs + 2 * (r * sh.total + s.offset);
    R* dst = buf->data() + 2 * r * size;
    for (int64_t i = 0; i < size; ++i) {
      // dense: element (i / dim, i % dim) of the result is element (i % dim, i / dim) of U
      const int64_t j = s.kind == kDense ? (i % dim) * dim + i / dim : i;
      dst[2 * i] = src[2 * j];
      dst[2 * i + 1] = conjugate ? -src[2 * j + 1] : src[2 * j + 1];
    }
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
  const int64_t dim = int64_t(1) << s.k;
  const bool dense = s.kind == kFusedDense;
  const int64_t size = dense ? dim * dim : dim;
  rows->resize(size_t(2 * size * sh.cb));
  std::vector<C> B(static_cast<size_t>(size));
  for (int64_t r = 0; r < sh.cb; ++r) {
    fused_block(s, coefs + 2 * r * sh.total, B.data());
    R* dst = rows->data() + 2 * r * size;
    for (int64_t i = 0; i < size; ++i) {
      dst[2 * i] = R(B[size_t(i)].real());
      dst[2 * i + 1] = R(B[size_t(i)].imag());
    }
  }
  *shapes = sh;
  shapes->total = size;
  return Gate{dense ? kDense : kDiagonal, s.k, 0, 0, s.targets, s.controls, nullptr};
}

// One plain gate on `batch` states.
template <class R>
const char* apply_plain(const Gate& s, R* state, const R* coefs, const Shapes& sh, Direction dir,
                        std::vector<R>* buf) {
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

}  // namespace

template <class R>
const char* run_program(const Program& p, R* state, const R* coefs, const Shapes& sh,
                        Direction dir) {
  std::vector<R> buf;
  if (dir == Direction::kForward) {
    for (const Step& s : p.steps) {
      if (const char* e = apply_step(s, state, coefs, sh, dir, &buf)) return e;
    }
    return nullptr;
  }
  for (auto it = p.steps.rbegin(); it != p.steps.rend(); ++it) {
    if (const char* e = apply_step(*it, state, coefs, sh, dir, &buf)) return e;
  }
  return nullptr;
}

template <class R>
const char* run_adjoint(const Program& p, R* x, R* g, const R* coefs, R* ct, const Shapes& sh,
                        bool want_ct) {
  std::vector<R> buf, tmp, rows;
  std::fill(ct, ct + 2 * sh.batch * sh.total, R(0));
  for (auto it = p.steps.rbegin(); it != p.steps.rend(); ++it) {
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
  return nullptr;
}

template const char* run_program<float>(const Program&, float*, const float*, const Shapes&,
                                        Direction);
template const char* run_program<double>(const Program&, double*, const double*, const Shapes&,
                                         Direction);
template const char* run_adjoint<float>(const Program&, float*, float*, const float*, float*,
                                        const Shapes&, bool);
template const char* run_adjoint<double>(const Program&, double*, double*, const double*,
                                         double*, const Shapes&, bool);

}  // namespace qsim_native
