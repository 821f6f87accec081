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
  static perm_t make_perm(const int* src) {
    alignas(32) int idx[8];
    for (int l = 0; l < LANES; ++l) {
      idx[2 * l] = 2 * src[l];
      idx[2 * l + 1] = 2 * src[l] + 1;
    }
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(idx));
  }
  static perm_t make_mask(const int* on) {
    alignas(32) int m[8];
    for (int l = 0; l < LANES; ++l) m[2 * l] = m[2 * l + 1] = on[l] ? -1 : 0;
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
  }
  static vec permute(vec v, perm_t p) { return _mm256_permutevar8x32_ps(v, p); }
  static vec and_mask(vec v, perm_t m) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }
  static vec or_(vec a, vec b) { return _mm256_or_ps(a, b); }
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
    alignas(32) int idx[8];
    for (int l = 0; l < LANES; ++l)
      for (int m = 0; m < 4; ++m) idx[4 * l + m] = 4 * src[l] + m;
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(idx));
  }
  static perm_t make_mask(const int* on) {
    alignas(32) int m[8];
    for (int l = 0; l < LANES; ++l)
      for (int q = 0; q < 4; ++q) m[4 * l + q] = on[l] ? -1 : 0;
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
  }
  static vec permute(vec v, perm_t p) {
    return _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(v), p));
  }
  static vec and_mask(vec v, perm_t m) { return _mm256_and_pd(v, _mm256_castsi256_pd(m)); }
  static vec or_(vec a, vec b) { return _mm256_or_pd(a, b); }
};

#include "kernels_generic.inc"
#include "kernels_apply.inc"
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
