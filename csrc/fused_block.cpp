// Fused-block algebra: small dense products on K-qubit blocks (dim = 2^K <= 2^kMaxTargets),
// in double precision. A block is its members' matrices multiplied together at
// run time (traced parameters need no per-block XLA ops), and its cotangent is
// spread back onto the members' coefficients by the chain rule.
#include <algorithm>

#include "program.h"

namespace qsim_native {
namespace {

// The member's own matrix (dense: mdim x mdim; diagonal: mdim entries; perm: 0/1), transposed if asked.
template <class R>
void member_matrix(const Gate& m, const R* row, bool transpose, C* M) {
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
void left_apply(const Member& m, const C* M, int64_t K, C* B) {
  const int64_t dim = int64_t(1) << K, mdim = int64_t(1) << m.k;
  const int64_t* pat = m.pat;
  C v[1 << kMaxTargets];
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

// Diagonal blocks: ct(d_j) = ctB * the product of the other members' diagonals.
template <class R>
void fused_diagonal_ct(const Step& s, const R* row, const C* ctB, R* ct_row) {
  const int64_t dim = int64_t(1) << s.k, r = int64_t(s.members.size());
  C M[1 << kMaxTargets];  // members are diagonal (the parser checks)
  std::vector<C> emb(size_t(r * dim), C(1));
  for (int64_t j = 0; j < r; ++j) {
    const Member& m = s.members[size_t(j)];
    member_matrix(m, row, false, M);
    for (int b0 = 0; b0 < m.nb; ++b0) {
      for (int64_t a = 0; a < (int64_t(1) << m.k); ++a) {
        emb[size_t(j * dim + (m.bases[b0] | m.pat[a]))] = M[a];
      }
    }
  }
  for (int64_t j = 0; j < r; ++j) {
    const Member& m = s.members[size_t(j)];
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
}

}  // namespace

template <class R>
void fused_block(const Step& s, const R* row, C* B) {
  const int64_t dim = int64_t(1) << s.k;
  C M[1 << (2 * kMaxTargets)];
  if (s.kind == kFusedDiagonal) {
    for (int64_t i = 0; i < dim; ++i) B[i] = 1;
    for (const Member& m : s.members) {
      member_matrix(m, row, false, M);
      for (int b0 = 0; b0 < m.nb; ++b0) {
        for (int64_t a = 0; a < (int64_t(1) << m.k); ++a) B[m.bases[b0] | m.pat[a]] *= M[a];
      }
    }
    return;
  }
  for (int64_t i = 0; i < dim * dim; ++i) B[i] = (i / dim == i % dim) ? 1 : 0;
  for (const Member& m : s.members) {
    member_matrix(m, row, false, M);
    left_apply(m, M, s.k, B);
  }
}

// Dense blocks B = M_r .. M_1: ct(M_j) = L_j^T ctB R_j^T with L_j = M_r .. M_{j+1},
// R_j = M_{j-1} .. M_1 (JAX's convention, no conjugation).
template <class R>
void fused_ct(const Step& s, const R* row, const C* ctB, R* ct_row) {
  if (s.kind == kFusedDiagonal) {
    fused_diagonal_ct(s, row, ctB, ct_row);
    return;
  }
  const int64_t K = s.k, dim = int64_t(1) << K, r = int64_t(s.members.size());
  C M[1 << (2 * kMaxTargets)];
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
    const Member& m = s.members[size_t(j)];
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

// ------------------------------------------ one-wire blocks (layers) ------
// The same algebra for K = 1, the merged one-qubit runs of a layer: 2x2 products
// written out in real arithmetic (std::complex's operator* calls a NaN-checking
// routine per product), and no heap allocation for up to kInlineMembers members.
namespace {

constexpr int kInlineMembers = 32;

struct M2 {
  C e[4];
};

inline C cmul(C x, C y) {
  return C(x.real() * y.real() - x.imag() * y.imag(), x.real() * y.imag() + x.imag() * y.real());
}

inline M2 mul2(const M2& x, const M2& y) {  // x y
  M2 z;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) z.e[2 * a + b] = cmul(x.e[2 * a], y.e[b]) + cmul(x.e[2 * a + 1], y.e[2 + b]);
  return z;
}

inline M2 trans2(const M2& x) { return M2{{x.e[0], x.e[2], x.e[1], x.e[3]}}; }

template <class R>
M2 member2(const Gate& m, const R* row) {
  if (m.kind == kPermutation) {  // out[a] = in[perm[a]]
    M2 z{{0, 0, 0, 0}};
    z.e[m.perm[0]] = 1;
    z.e[2 + m.perm[1]] = 1;
    return z;
  }
  const R* c = row + 2 * m.offset;
  if (m.kind == kDiagonal) return M2{{C(c[0], c[1]), 0, 0, C(c[2], c[3])}};
  return M2{{C(c[0], c[1]), C(c[2], c[3]), C(c[4], c[5]), C(c[6], c[7])}};
}

}  // namespace

template <class R>
void fused_block2(const Step& s, const R* row, C* B) {
  M2 acc = member2(s.members[0], row);  // a fused step has members (the parser checks)
  for (size_t j = 1; j < s.members.size(); ++j) acc = mul2(member2(s.members[j], row), acc);
  std::copy(acc.e, acc.e + 4, B);
}

template <class R>
void fused_ct2(const Step& s, const R* row, const C* ctB, R* ct_row) {
  const size_t r = s.members.size();
  M2 inline_m[2 * kInlineMembers];
  std::vector<M2> heap(r > kInlineMembers ? 2 * r : 0);
  M2* M = r > kInlineMembers ? heap.data() : inline_m;  // the members' matrices
  M2* pre = M + r;                                      // pre[j] = M_{j-1} .. M_1 (j >= 1)
  for (size_t j = 0; j < r; ++j) M[j] = member2(s.members[j], row);
  if (r > 1) pre[1] = M[0];
  for (size_t j = 2; j < r; ++j) pre[j] = mul2(M[j - 1], pre[j - 1]);
  M2 G{{ctB[0], ctB[1], ctB[2], ctB[3]}};  // L_j^T ctB, from j = r - 1 down
  for (size_t j = r; j-- > 0;) {
    const Member& m = s.members[j];
    if (m.kind != kPermutation) {
      const M2 ct = j > 0 ? mul2(G, trans2(pre[j])) : G;
      R* dst = ct_row + 2 * m.offset;
      const int idx[4] = {0, 1, 2, 3}, diag[2] = {0, 3};
      const int* at = m.kind == kDiagonal ? diag : idx;
      for (int i = 0; i < (m.kind == kDiagonal ? 2 : 4); ++i) {
        dst[2 * i] += R(ct.e[at[i]].real());
        dst[2 * i + 1] += R(ct.e[at[i]].imag());
      }
    }
    if (j > 0) G = mul2(trans2(M[j]), G);
  }
}

template void fused_block<float>(const Step&, const float*, C*);
template void fused_block<double>(const Step&, const double*, C*);
template void fused_ct<float>(const Step&, const float*, const C*, float*);
template void fused_ct<double>(const Step&, const double*, const C*, double*);
template void fused_block2<float>(const Step&, const float*, C*);
template void fused_block2<double>(const Step&, const double*, C*);
template void fused_ct2<float>(const Step&, const float*, const C*, float*);
template void fused_ct2<double>(const Step&, const double*, const C*, double*);

}  // namespace qsim_native
