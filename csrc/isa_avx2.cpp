// AVX2 + FMA kernels (x86-64). This file alone is compiled with -mavx2 -mfma;
// isa_select.cpp picks it only after __builtin_cpu_supports says the CPU has
// both, so an older CPU never executes an instruction from here. Everything
// here is private to this unit (see kernels_generic.inc).
#include <immintrin.h>

#include "qsim_native.h"

namespace qsim_native {
namespace {

// complex64: 4 amplitudes per 256-bit vector, (re, im) interleaved.
struct Avx2F32 {
  using R = float;
  using vec = __m256;
  using perm_t = __m256i;
  static constexpr int LANES = 4;
  static constexpr int L = 2;
  static constexpr int S = 8;

  static vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
  static vec zero() { return _mm256_setzero_ps(); }
  static vec bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static vec swap(vec v) { return _mm256_permute_ps(v, 0xB1); }
  static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  static vec addsub(vec a, vec b) { return _mm256_addsub_ps(a, b); }
  static vec dup_re(vec v) { return _mm256_moveldup_ps(v); }
  static vec dup_im(vec v) { return _mm256_movehdup_ps(v); }
  // (Built from registers: a vector load of just-stored ints would stall.)
  static perm_t make_perm(const int* src) {
    const int a = 2 * src[0], b = 2 * src[1], c = 2 * src[2], d = 2 * src[3];
    return _mm256_setr_epi32(a, a + 1, b, b + 1, c, c + 1, d, d + 1);
  }
  static perm_t make_mask(const int* on) {
    const int a = on[0] ? -1 : 0, b = on[1] ? -1 : 0, c = on[2] ? -1 : 0, d = on[3] ? -1 : 0;
    return _mm256_setr_epi32(a, a, b, b, c, c, d, d);
  }
  static vec permute(vec v, perm_t p) { return _mm256_permutevar8x32_ps(v, p); }
  static vec and_mask(vec v, perm_t m) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }
  static vec or_(vec a, vec b) { return _mm256_or_ps(a, b); }
  static void add_to(double* out, vec v) {
    const __m256d s = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                    _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    _mm_storeu_pd(out, _mm_add_pd(_mm_loadu_pd(out), t));
  }
};

// complex128: 2 amplitudes per vector.
struct Avx2F64 {
  using R = double;
  using vec = __m256d;
  using perm_t = __m256i;
  static constexpr int LANES = 2;
  static constexpr int L = 1;
  static constexpr int S = 4;

  static vec load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, vec v) { _mm256_storeu_pd(p, v); }
  static vec zero() { return _mm256_setzero_pd(); }
  static vec bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static vec swap(vec v) { return _mm256_permute_pd(v, 0x5); }
  static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_pd(a, b, c); }
  static vec mul(vec a, vec b) { return _mm256_mul_pd(a, b); }
  static vec add(vec a, vec b) { return _mm256_add_pd(a, b); }
  static vec addsub(vec a, vec b) { return _mm256_addsub_pd(a, b); }
  static vec dup_re(vec v) { return _mm256_movedup_pd(v); }
  static vec dup_im(vec v) { return _mm256_permute_pd(v, 0xF); }
  static perm_t make_perm(const int* src) {  // as 32-bit pieces: 4 per amplitude
    const int a = 4 * src[0], b = 4 * src[1];
    return _mm256_setr_epi32(a, a + 1, a + 2, a + 3, b, b + 1, b + 2, b + 3);
  }
  static perm_t make_mask(const int* on) {
    const int a = on[0] ? -1 : 0, b = on[1] ? -1 : 0;
    return _mm256_setr_epi32(a, a, a, a, b, b, b, b);
  }
  static vec permute(vec v, perm_t p) {
    return _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(v), p));
  }
  static vec and_mask(vec v, perm_t m) { return _mm256_and_pd(v, _mm256_castsi256_pd(m)); }
  static vec or_(vec a, vec b) { return _mm256_or_pd(a, b); }
  static void add_to(double* out, vec v) {
    const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    _mm_storeu_pd(out, _mm_add_pd(_mm_loadu_pd(out), t));
  }
};

#include "kernels_generic.inc"
#include "kernels_apply.inc"
#include "kernels_layer.inc"
#include "kernels_product.inc"
#include "kernels_lanes.inc"
#include "kernels_vjp.inc"

// A linear step (IsaKernels::linear) four complex64 or two complex128 amplitudes at
// a time. Where the map sends the lane bits of the index to lane bits only (F(1),
// F(2) < 4 for complex64, F(1) < 2 for complex128: CNOT chains and ladders whose
// controls sit above their targets, and their inverses), out[4 j + l] = in[F(4 j)
// ^ F(l)] is one vector of the input with its lanes permuted, one of four (two)
// permutations chosen by the low bits of F(4 j). Other maps, and states of fewer
// than 8 qubits, move one amplitude at a time (linear_gather). AMD EPYC (Zen 3), 8
// chains on 16 qubits, complex64, one thread: 580 -> 400 us a call.
template <class V>
void linear_lanes(const int64_t* table, int n, const typename V::R* in, typename V::R* out,
                  int64_t a0, int64_t a1) {
  using R = typename V::R;
  constexpr int W = V::LANES;  // amplitudes per vector: 4 or 2
  bool local = n >= 8;
  for (int l = 1; l < W && local; l <<= 1) local = table[l] < W;
  if (!local) {
    linear_gather<R>(table, n, in, out, a0, a1);
    return;
  }
  typename V::perm_t perm[W];  // lane l of vector c takes amplitude F(l) ^ c
  for (int c = 0; c < W; ++c) {
    int src[W];
    for (int l = 0; l < W; ++l) src[l] = int(table[l] ^ c);
    perm[c] = V::make_perm(src);
  }
  const int chunks = (n + 7) / 8;
  for (int64_t hi = a0; hi < a1; hi += 256) {
    int64_t base = 0;
    for (int t = 1; t < chunks; ++t) base ^= table[t * 256 + ((hi >> (8 * t)) & 255)];
    R* o = out + 2 * hi;
    for (int l = 0; l < 256; l += W) {
      const int64_t f = base ^ table[l];
      V::store(o + 2 * l, V::permute(V::load(in + 2 * (f & ~int64_t(W - 1))), perm[f & (W - 1)]));
    }
  }
}

}  // namespace

const IsaKernels<float>* avx2_kernels_f32() {
  static const IsaKernels<float> k = [] {
    IsaKernels<float> t = make_kernels<Avx2F32>("avx2+fma");
    t.linear = &linear_lanes<Avx2F32>;
    return t;
  }();
  return &k;
}

const IsaKernels<double>* avx2_kernels_f64() {
  static const IsaKernels<double> k = [] {
    IsaKernels<double> t = make_kernels<Avx2F64>("avx2+fma");
    t.linear = &linear_lanes<Avx2F64>;
    return t;
  }();
  return &k;
}

}  // namespace qsim_native
