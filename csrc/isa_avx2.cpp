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

}  // namespace

const IsaKernels<float>* avx2_kernels_f32() {
  static const IsaKernels<float> k = make_kernels<Avx2F32>("avx2+fma");
  return &k;
}

const IsaKernels<double>* avx2_kernels_f64() {
  static const IsaKernels<double> k = make_kernels<Avx2F64>("avx2+fma");
  return &k;
}

}  // namespace qsim_native
