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

template void fused_block<float>(const Step&, const float*, C*);
template void fused_block<double>(const Step&, const double*, C*);
template void fused_ct<float>(const Step&, const float*, const C*, float*);
template void fused_ct<double>(const Step&, const double*, const C*, double*);

}  // namespace qsim_native
