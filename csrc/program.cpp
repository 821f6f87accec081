// A whole gate program in one XLA FFI call: compile time independent of its length.
//
// XLA:CPU compiles each unrolled gate in about 10 ms, and a lax.scan over a
// switch of gate kinds copies the state at every step. A "program" is instead
// a static list of steps (an int64 attribute) plus one flat array of their
// coefficients (an operand, traced or constant): the handler loops over the
// steps and calls the kernels of qsim_native.h on the state in place.
//
// `code` holds one variable-length record per step:
//   kind (0 dense, 1 diagonal, 2 permutation), k (targets), nc (controls),
//   offset (complex elements into the coefficient row; dense: 4^k, diagonal:
//   2^k, permutation: unused), targets[k], controls[nc], and for a
//   permutation perm[2^k] (out[j] = in[perm[j]]).
// Fused steps (kind 3 dense, 4 diagonal) carry their members instead of a
// block: kind, K, 0, 0, wires[K], r, then r member records laid out as above
// (kinds 0-2) whose targets and controls are POSITIONS 0..K-1 in the block
// (0 = wires[0] = most significant). The block is multiplied out at run time,
// so traced parameters need no per-block XLA ops; its cotangent is spread back
// onto the members' coefficients by the chain rule.
// Coefficients are (cb, total) complex with cb = 1 (shared by every state) or
// the state batch.
//
// qsim_native_program(state, coefs) -> state, attribute `mode`:
//   0 forward (U_S ... U_1), 1 inverse (U_1^dagger ... U_S^dagger, for unitary
//   steps), 2 transpose (U_1^T ... U_S^T: the state cotangent of the forward).
// qsim_native_program_vjp(y, g, coefs) -> (x, g_x, ct): the adjoint sweep. From
//   the forward's output y and its cotangent g, walks the steps backwards
//   un-applying each (x <- U^dagger x) and, when `want_ct` is set, accumulating
//   ct[b, offset..] = sum over the other bits of g[i] x[j] (JAX's convention);
//   g <- U^T g. Returns the input x, its cotangent and ct (batch, total).
#include <algorithm>
#include <complex>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "qsim_native.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
namespace qn = qsim_native;

namespace {

using I64s = ffi::Span<const int64_t>;

enum StepKind : int64_t {
  kDense = 0, kDiagonal = 1, kPermutation = 2, kFusedDense = 3, kFusedDiagonal = 4
};

struct Step {
  int64_t kind, k, nc, offset;
  const int64_t* targets;
  const int64_t* controls;
  const int64_t* perm;        // permutation steps only
  std::vector<Step> members;  // fused steps only (positions in the block)
  // members only, filled once at parse time (see member_layout):
  int nb;                                 // rows of the block where targets are 0, controls 1
  int64_t bases[1 << qn::kMaxTargets];    // those rows
  int64_t pat[1 << qn::kMaxTargets];      // offset of each target pattern a
};

ffi::Error invalid(const std::string& what) { return ffi::Error::InvalidArgument(what); }

void member_layout(Step* m, int64_t K);

// Parses one record at p (member: inside a fused block of `block` positions, else block = 0).
ffi::Error parse_one(const char* fn, const int64_t*& p, const int64_t* end, int64_t total,
                     int64_t block, Step* out) {
  const std::string where(fn);
  if (end - p < 4) return invalid(where + ": truncated step record");
  Step s{p[0], p[1], p[2], p[3], nullptr, nullptr, nullptr, {}, 0, {}, {}};
  const bool fused = s.kind == kFusedDense || s.kind == kFusedDiagonal;
  if (s.kind < kDense || s.kind > kFusedDiagonal || (fused && block)) {
    return invalid(where + ": bad step kind");
  }
  if (s.k < 1 || s.k > qn::kMaxTargets) return invalid(where + ": 1 to 5 targets");
  if (s.nc < 0 || s.nc > qn::kMaxQubits || (fused && s.nc)) {
    return invalid(where + ": bad control count");
  }
  const int64_t dim = int64_t(1) << s.k;
  const int64_t len = 4 + s.k + s.nc + (s.kind == kPermutation ? dim : 0);
  if (end - p < len) return invalid(where + ": truncated step record");
  s.targets = p + 4;
  s.controls = p + 4 + s.k;
  if (block) {  // member positions: distinct, inside the block
    int64_t seen = 0;
    for (int64_t i = 0; i < s.k + s.nc; ++i) {
      const int64_t q = s.targets[i];  // controls follow targets in the record
      if (q < 0 || q >= block || ((seen >> q) & 1)) {
        return invalid(where + ": fused member positions must be distinct and inside the block");
      }
      seen |= int64_t(1) << q;
    }
  }
  if (s.kind == kPermutation) {
    s.perm = p + 4 + s.k + s.nc;
    uint64_t seen = 0;
    for (int64_t j = 0; j < dim; ++j) {
      if (s.perm[j] < 0 || s.perm[j] >= dim || ((seen >> s.perm[j]) & 1)) {
        return invalid(where + ": perm must be a permutation of range(2**k)");
      }
      seen |= uint64_t(1) << s.perm[j];
    }
  } else if (!fused) {
    const int64_t size = s.kind == kDense ? dim * dim : dim;
    if (s.offset < 0 || s.offset + size > total) {
      return invalid(where + ": coefficient offset out of range");
    }
  }
  p += len;
  if (block) member_layout(&s, block);
  if (fused) {
    if (end - p < 1) return invalid(where + ": truncated step record");
    const int64_t r = *p++;
    if (r < 1) return invalid(where + ": a fused step needs members");
    for (int64_t j = 0; j < r; ++j) {
      Step m;
      if (auto e = parse_one(fn, p, end, total, s.k, &m); e.failure()) return e;
      if (s.kind == kFusedDiagonal && m.kind != kDiagonal) {
        return invalid(where + ": a fused diagonal step has diagonal members only");
      }
      s.members.push_back(std::move(m));
    }
  }
  *out = std::move(s);
  return ffi::Error::Success();
}

// Parses `code` into steps, checking every record against the coefficient length.
ffi::Error parse(const char* fn, I64s code, int64_t total, std::vector<Step>* steps) {
  const int64_t* p = code.begin();
  const int64_t* end = code.end();
  while (p < end) {
    Step s;
    if (auto e = parse_one(fn, p, end, total, 0, &s); e.failure()) return e;
    steps->push_back(std::move(s));
  }
  return ffi::Error::Success();
}

// ------------------------------------------------------ fused blocks ------
// Small dense algebra on K-qubit blocks (dim = 2^K <= 32), in double precision.
using C = std::complex<double>;

// Block-index bit of member position q (position 0 = most significant of K).
inline int64_t bit_of(int64_t q, int64_t K) { return int64_t(1) << (K - 1 - q); }

// Row indices where the member's targets are 0 and its controls 1, and the
// offset of each target pattern a (a's first bit = the member's first target).
void member_layout(Step* m, int64_t K) {
  const int64_t dim = int64_t(1) << K, mdim = int64_t(1) << m->k;
  int64_t tmask = 0, cmask = 0;
  for (int64_t i = 0; i < m->k; ++i) tmask |= bit_of(m->targets[i], K);
  for (int64_t i = 0; i < m->nc; ++i) cmask |= bit_of(m->controls[i], K);
  m->nb = 0;
  for (int64_t i = 0; i < dim; ++i) {
    if ((i & tmask) == 0 && (i & cmask) == cmask) m->bases[m->nb++] = i;
  }
  for (int64_t a = 0; a < mdim; ++a) {
    int64_t off = 0;
    for (int64_t i = 0; i < m->k; ++i) {
      if ((a >> (m->k - 1 - i)) & 1) off |= bit_of(m->targets[i], K);
    }
    m->pat[a] = off;
  }
}

// The member's own matrix (dense: mdim x mdim; diagonal: mdim entries; perm: 0/1), transposed if asked.
template <class R>
void member_matrix(const Step& m, const R* row, bool transpose, C* M) {
  const int64_t mdim = int64_t(1) << m.k;
  if (m.kind == kPermutation) {
    for (int64_t a = 0; a < mdim * mdim; ++a) M[a] = 0;
    for (int64_t a = 0; a < mdim; ++a) {  // out[a] = in[perm[a]]: M[a, perm[a]] = 1
      const int64_t r = a, c = m.perm[a];
      M[transpose ? c * mdim + r : r * mdim + c] = 1;
    }
    return;
  }
  const R* src = row + 2 * m.offset;
  if (m.kind == kDiagonal) {
    for (int64_t a = 0; a < mdim; ++a) M[a] = C(src[2 * a], src[2 * a + 1]);
    return;
  }
  for (int64_t a = 0; a < mdim; ++a) {
    for (int64_t b = 0; b < mdim; ++b) {
      const int64_t j = transpose ? b * mdim + a : a * mdim + b;
      M[a * mdim + b] = C(src[2 * j], src[2 * j + 1]);
    }
  }
}

// B <- emb(M) B for a K-qubit block B (dim x dim, row-major); M from member_matrix.
void left_apply(const Step& m, const C* M, int64_t K, C* B) {
  const int64_t dim = int64_t(1) << K, mdim = int64_t(1) << m.k;
  const int64_t* pat = m.pat;
  C v[1 << qn::kMaxTargets];
  for (int b0 = 0; b0 < m.nb; ++b0) {
    const int64_t base = m.bases[b0];
    for (int64_t c = 0; c < dim; ++c) {
      for (int64_t a = 0; a < mdim; ++a) v[a] = B[(base | pat[a]) * dim + c];
      for (int64_t a = 0; a < mdim; ++a) {
        C acc = 0;
        if (m.kind == kDiagonal) {
          acc = M[a] * v[a];
        } else {
          for (int64_t b = 0; b < mdim; ++b) acc += M[a * mdim + b] * v[b];
        }
        B[(base | pat[a]) * dim + c] = acc;
      }
    }
  }
}

// The block of a fused step for one coefficient row: dense (dim x dim) or diagonal (dim).
template <class R>
void fused_block(const Step& s, const R* row, C* B) {
  const int64_t dim = int64_t(1) << s.k;
  C M[1 << (2 * qn::kMaxTargets)];
  if (s.kind == kFusedDiagonal) {
    for (int64_t i = 0; i < dim; ++i) B[i] = 1;
    for (const Step& m : s.members) {
      member_matrix(m, row, false, M);
      for (int b0 = 0; b0 < m.nb; ++b0) {
        for (int64_t a = 0; a < (int64_t(1) << m.k); ++a) B[m.bases[b0] | m.pat[a]] *= M[a];
      }
    }
    return;
  }
  for (int64_t i = 0; i < dim * dim; ++i) B[i] = (i / dim == i % dim) ? 1 : 0;
  for (const Step& m : s.members) {
    member_matrix(m, row, false, M);
    left_apply(m, M, s.k, B);
  }
}

// Spreads the block cotangent ctB (JAX convention, no conjugation) of one row onto the
// members' coefficients: dense B = M_r .. M_1 gives ct(M_j) = L_j^T ctB R_j^T with
// L_j = M_r .. M_{j+1}, R_j = M_{j-1} .. M_1; diagonal: ct(d_j) = ctB * prod of the others.
template <class R>
void fused_ct(const Step& s, const R* row, const C* ctB, R* ct_row) {
  const int64_t K = s.k, dim = int64_t(1) << K, r = int64_t(s.members.size());
  C M[1 << (2 * qn::kMaxTargets)];
  if (s.kind == kFusedDiagonal) {
    std::vector<C> emb(size_t(r * dim), C(1));
    for (int64_t j = 0; j < r; ++j) {
      const Step& m = s.members[size_t(j)];
      member_matrix(m, row, false, M);
      for (int b0 = 0; b0 < m.nb; ++b0) {
        for (int64_t a = 0; a < (int64_t(1) << m.k); ++a) {
          emb[size_t(j * dim + (m.bases[b0] | m.pat[a]))] = M[a];
        }
      }
    }
    for (int64_t j = 0; j < r; ++j) {
      const Step& m = s.members[size_t(j)];
      R* dst = ct_row + 2 * m.offset;
      for (int b0 = 0; b0 < m.nb; ++b0) {
        for (int64_t a = 0; a < (int64_t(1) << m.k); ++a) {
          const int64_t i = m.bases[b0] | m.pat[a];
          C v = ctB[i];
          for (int64_t l = 0; l < r; ++l) {
            if (l != j) v *= emb[size_t(l * dim + i)];
          }
          dst[2 * a] += R(v.real());
          dst[2 * a + 1] += R(v.imag());
        }
      }
    }
    return;
  }
  // prefixes R_j (R_0 = I), then G = L_j^T ctB walking down from j = r - 1
  std::vector<C> pre(size_t(r * dim * dim));
  for (int64_t i = 0; i < dim * dim; ++i) pre[size_t(i)] = (i / dim == i % dim) ? 1 : 0;
  for (int64_t j = 1; j < r; ++j) {
    std::copy(pre.begin() + (j - 1) * dim * dim, pre.begin() + j * dim * dim, pre.begin() + j * dim * dim);
    member_matrix(s.members[size_t(j - 1)], row, false, M);
    left_apply(s.members[size_t(j - 1)], M, K, pre.data() + j * dim * dim);
  }
  std::vector<C> G(ctB, ctB + dim * dim);
  for (int64_t j = r - 1; j >= 0; --j) {
    const Step& m = s.members[size_t(j)];
    const C* Rj = pre.data() + j * dim * dim;
    const int64_t* pat = m.pat;
    if (m.kind != kPermutation) {  // ct(M)[a, b] = sum over rest rows of (G R_j^T)[(a, rest), (b, rest)]
      const int64_t mdim = int64_t(1) << m.k;
      R* dst = ct_row + 2 * m.offset;
      for (int b0 = 0; b0 < m.nb; ++b0) {
        const int64_t base = m.bases[b0];
        for (int64_t a = 0; a < mdim; ++a) {
          const C* g = G.data() + (base | pat[a]) * dim;
          for (int64_t b = 0; b < mdim; ++b) {
            if (m.kind == kDiagonal && a != b) continue;
            const C* rr = Rj + (base | pat[b]) * dim;
            C acc = 0;
            for (int64_t c = 0; c < dim; ++c) acc += g[c] * rr[c];
            const int64_t at = m.kind == kDiagonal ? a : a * mdim + b;
            dst[2 * at] += R(acc.real());
            dst[2 * at + 1] += R(acc.imag());
          }
        }
      }
    }
    if (j > 0) {  // G <- M_j^T G
      member_matrix(m, row, true, M);
      left_apply(m, M, K, G.data());
    }
  }
}

int log2_exact(int64_t x) {
  if (x < 1 || (x & (x - 1)) != 0) return -1;
  int n = 0;
  while ((int64_t(1) << n) < x) ++n;
  return n;
}

int64_t leading(ffi::AnyBuffer::Dimensions dims) {
  int64_t b = 1;
  for (size_t i = 0; i + 1 < dims.size(); ++i) b *= dims[i];
  return b;
}

struct Shapes {
  int64_t batch, cb, total;  // states, coefficient rows (1 or batch), coefficients per row
  int n;
  bool f64;
};

ffi::Error shapes(const char* fn, ffi::AnyBuffer state, ffi::AnyBuffer coefs, Shapes* s) {
  const auto t = state.element_type();
  if (t != ffi::DataType::C64 && t != ffi::DataType::C128) {
    return invalid(std::string(fn) + ": the state must be complex64 or complex128");
  }
  if (coefs.element_type() != t) return invalid(std::string(fn) + ": coefs must have the state's dtype");
  const auto sd = state.dimensions(), cd = coefs.dimensions();
  if (sd.size() < 1 || cd.size() < 1) return invalid(std::string(fn) + ": rank >= 1 operands");
  s->n = log2_exact(sd.back());
  if (s->n < 0 || s->n > qn::kMaxQubits) {
    return invalid(std::string(fn) + ": the state's last dimension must be 2**n");
  }
  s->batch = leading(sd);
  s->cb = leading(cd);
  s->total = cd.back();
  if (s->cb != 1 && s->cb != s->batch) {
    return invalid(std::string(fn) + ": coefs' batch must be 1 or the state's batch");
  }
  s->f64 = t == ffi::DataType::C128;
  return ffi::Error::Success();
}

void copy_if_distinct(ffi::AnyBuffer in, ffi::AnyBuffer out) {
  if (out.untyped_data() != in.untyped_data()) {
    std::memcpy(out.untyped_data(), in.untyped_data(), in.size_bytes());
  }
}

// The step's coefficients for every row, transformed: 0 as is, 1 conjugate
// (transposed for dense), 2 transposed (dense only). Returns a pointer to
// rows of `size` complex numbers, `row_stride` complex apart.
template <class R>
const R* transformed(const Step& s, const R* coefs, const Shapes& sh, int how,
                     std::vector<R>* buf, int64_t* row_stride) {
  const int64_t dim = int64_t(1) << s.k;
  const int64_t size = s.kind == kDense ? dim * dim : dim;
  if (how == 0 || (how == 2 && s.kind == kDiagonal)) {
    *row_stride = sh.cb > 1 ? sh.total : 0;
    return coefs + 2 * s.offset;
  }
  buf->resize(size_t(2 * size * sh.cb));
  for (int64_t r = 0; r < sh.cb; ++r) {
    const R* src = coefs + 2 * (r * sh.total + s.offset);
    R* dst = buf->data() + 2 * r * size;
    for (int64_t i = 0; i < size; ++i) {
      // dense: element (i / dim, i % dim) of the result is element (i % dim, i / dim) of U
      const int64_t j = s.kind == kDense ? (i % dim) * dim + i / dim : i;
      dst[2 * i] = src[2 * j];
      dst[2 * i + 1] = how == 1 ? -src[2 * j + 1] : src[2 * j + 1];
    }
  }
  *row_stride = sh.cb > 1 ? size : 0;
  return buf->data();
}

void inverse_perm(const int64_t* perm, int64_t dim, int64_t* out) {
  for (int64_t j = 0; j < dim; ++j) out[perm[j]] = j;
}

// The blocks of a fused step for every coefficient row, as a plain dense or diagonal
// step over (cb, size) coefficients: returns that step; `shapes` gets total = size.
template <class R>
Step fused_rows(const Step& s, const R* coefs, const Shapes& sh, std::vector<R>* rows,
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
  Step t{dense ? kDense : kDiagonal, s.k, 0, 0, s.targets, s.controls, nullptr, {}, 0, {}, {}};
  return t;
}

// One plain step (how: 0 U, 1 U^dagger, 2 U^T) on `batch` states.
template <class R>
const char* apply_plain(const Step& s, R* state, const R* coefs, const Shapes& sh, int how,
                        std::vector<R>* buf) {
  if (s.kind == kPermutation) {
    int64_t inv[1 << qn::kMaxTargets];
    const int64_t* perm = s.perm;
    if (how != 0) {  // a permutation matrix's inverse is its transpose
      inverse_perm(s.perm, int64_t(1) << s.k, inv);
      perm = inv;
    }
    return qn::apply_permutation<R>(state, sh.batch, sh.n, perm, s.targets, int(s.k), s.controls,
                                    int(s.nc));
  }
  int64_t stride;
  const R* c = transformed(s, coefs, sh, how, buf, &stride);
  if (s.kind == kDiagonal) {
    return qn::apply_diagonal<R>(state, sh.batch, sh.n, c, stride, s.targets, int(s.k));
  }
  return qn::apply_dense<R>(state, sh.batch, sh.n, c, stride, s.targets, int(s.k), s.controls,
                            int(s.nc));
}

// One step, fused or plain (how: 0 U, 1 U^dagger, 2 U^T) on `batch` states.
template <class R>
const char* apply_step(const Step& s, R* state, const R* coefs, const Shapes& sh, int how,
                       std::vector<R>* buf) {
  if (s.kind == kFusedDense || s.kind == kFusedDiagonal) {
    std::vector<R> rows;
    Shapes fs;
    const Step t = fused_rows(s, coefs, sh, &rows, &fs);
    return apply_plain(t, state, rows.data(), fs, how, buf);
  }
  return apply_plain(s, state, coefs, sh, how, buf);
}

ffi::Error status(const char* err) { return err == nullptr ? ffi::Error::Success() : invalid(err); }

template <class R>
ffi::Error run_program(const std::vector<Step>& steps, R* state, const R* coefs, const Shapes& sh,
                       int64_t mode) {
  std::vector<R> buf;
  if (mode == 0) {
    for (const Step& s : steps) {
      if (const char* e = apply_step(s, state, coefs, sh, 0, &buf)) return invalid(e);
    }
    return ffi::Error::Success();
  }
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (const char* e = apply_step(*it, state, coefs, sh, int(mode), &buf)) return invalid(e);
  }
  return ffi::Error::Success();
}

ffi::Error Program(ffi::AnyBuffer state, ffi::AnyBuffer coefs, ffi::Result<ffi::AnyBuffer> out,
                   I64s code, int64_t mode) {
  const char* fn = "qsim_native_program";
  Shapes sh;
  if (auto e = shapes(fn, state, coefs, &sh); e.failure()) return e;
  if (mode < 0 || mode > 2) return invalid("qsim_native_program: mode must be 0, 1 or 2");
  std::vector<Step> steps;
  if (auto e = parse(fn, code, sh.total, &steps); e.failure()) return e;
  copy_if_distinct(state, *out);
  if (sh.f64) {
    return run_program<double>(steps, static_cast<double*>(out->untyped_data()),
                               static_cast<const double*>(coefs.untyped_data()), sh, mode);
  }
  return run_program<float>(steps, static_cast<float*>(out->untyped_data()),
                            static_cast<const float*>(coefs.untyped_data()), sh, mode);
}

template <class R>
ffi::Error sweep(const std::vector<Step>& steps, R* x, R* g, const R* coefs, R* ct,
                 const Shapes& sh, bool want_ct) {
  std::vector<R> buf, tmp, rows;
  std::fill(ct, ct + 2 * sh.batch * sh.total, R(0));
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    const bool fused = it->kind == kFusedDense || it->kind == kFusedDiagonal;
    Shapes fs = sh;
    const Step s = fused ? fused_rows(*it, coefs, sh, &rows, &fs) : *it;
    const R* c0 = fused ? rows.data() : coefs;
    if (const char* e = apply_plain(s, x, c0, fs, 1, &buf)) return invalid(e);
    if (s.kind == kPermutation || !want_ct) {
      if (const char* e = apply_plain(s, g, c0, fs, 2, &buf)) return invalid(e);
      continue;
    }
    const int64_t dim = int64_t(1) << s.k;
    const int64_t size = s.kind == kDense ? dim * dim : dim;
    const int64_t stride = fs.cb > 1 ? fs.total : 0;
    const R* c = c0 + 2 * s.offset;
    tmp.resize(size_t(2 * size * sh.batch));
    const char* e = s.kind == kDense
        ? qn::dense_vjp<R>(g, x, sh.batch, sh.n, c, stride, tmp.data(), s.targets, int(s.k),
                           s.controls, int(s.nc))
        : qn::diagonal_vjp<R>(g, x, sh.batch, sh.n, c, stride, tmp.data(), s.targets, int(s.k));
    if (e) return invalid(e);
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
  return ffi::Error::Success();
}

ffi::Error ProgramVjp(ffi::AnyBuffer y, ffi::AnyBuffer g, ffi::AnyBuffer coefs,
                      ffi::Result<ffi::AnyBuffer> x, ffi::Result<ffi::AnyBuffer> g_x,
                      ffi::Result<ffi::AnyBuffer> ct, I64s code, int64_t want_ct) {
  const char* fn = "qsim_native_program_vjp";
  Shapes sh;
  if (auto e = shapes(fn, y, coefs, &sh); e.failure()) return e;
  if (g.element_type() != y.element_type() || g.size_bytes() != y.size_bytes() ||
      x->size_bytes() != y.size_bytes() || g_x->size_bytes() != y.size_bytes()) {
    return invalid("qsim_native_program_vjp: y, g and the results must have one shape and dtype");
  }
  if (int64_t(ct->element_count()) != sh.batch * sh.total) {
    return invalid("qsim_native_program_vjp: ct must be (batch, total)");
  }
  std::vector<Step> steps;
  if (auto e = parse(fn, code, sh.total, &steps); e.failure()) return e;
  copy_if_distinct(y, *x);
  copy_if_distinct(g, *g_x);
  if (sh.f64) {
    return sweep<double>(steps, static_cast<double*>(x->untyped_data()),
                         static_cast<double*>(g_x->untyped_data()),
                         static_cast<const double*>(coefs.untyped_data()),
                         static_cast<double*>(ct->untyped_data()), sh, want_ct != 0);
  }
  return sweep<float>(steps, static_cast<float*>(x->untyped_data()),
                      static_cast<float*>(g_x->untyped_data()),
                      static_cast<const float*>(coefs.untyped_data()),
                      static_cast<float*>(ct->untyped_data()), sh, want_ct != 0);
}

}  // namespace

QSIM_EXPORT XLA_FFI_Error* qsim_native_program(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_program_vjp(XLA_FFI_CallFrame* call_frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_program, Program,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<I64s>("code")
                                  .Attr<int64_t>("mode"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_program_vjp, ProgramVjp,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<I64s>("code")
                                  .Attr<int64_t>("want_ct"));
