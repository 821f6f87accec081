// AVX-512 layer kernels (x86-64): kernels_layer.inc on 512-bit vectors. A layer's
// tiles sit in L1, so its passes are bound by arithmetic, not memory, and twice
// the lanes do about twice the work per instruction. This file alone is compiled
// with -mavx512f; isa_select.cpp calls it only after __builtin_cpu_supports says
// the CPU has AVX-512F (and the state fills a tile row of vectors). Everything
// here is private to this unit (see kernels_generic.inc).
#include <immintrin.h>

#include <cstring>

#include "qsim_native.h"

namespace qsim_native {
namespace {

// complex64: 8 amplitudes per vector, (re, im) interleaved.
struct Avx512F32 {
  using R = float;
  using vec = __m512;
  using perm_t = __m512i;
  static constexpr int LANES = 8;
  static constexpr int L = 3;
  static constexpr int S = 16;

  static vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static vec zero() { return _mm512_setzero_ps(); }
  static vec bcast(const float* p) { return _mm512_set1_ps(*p); }
  static vec swap(vec v) { return _mm512_permute_ps(v, 0xB1); }
  static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  // a * 1 -/+ b in one rounding: exactly a - b, a + b.
  static vec addsub(vec a, vec b) { return _mm512_fmaddsub_ps(a, _mm512_set1_ps(1.0f), b); }
  static vec dup_re(vec v) { return _mm512_moveldup_ps(v); }
  static vec dup_im(vec v) { return _mm512_movehdup_ps(v); }
  static perm_t make_perm(const int* src) {
    alignas(64) int idx[16];
    for (int l = 0; l < LANES; ++l) {
      idx[2 * l] = 2 * src[l];
      idx[2 * l + 1] = 2 * src[l] + 1;
    }
    return _mm512_load_si512(idx);
  }
  static perm_t make_mask(const int* on) {
    alignas(64) int m[16];
    for (int l = 0; l < LANES; ++l) m[2 * l] = m[2 * l + 1] = on[l] ? -1 : 0;
    return _mm512_load_si512(m);
  }
  static vec permute(vec v, perm_t p) { return _mm512_permutexvar_ps(p, v); }
  static vec and_mask(vec v, perm_t m) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), m));
  }
  static vec or_(vec a, vec b) {
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }
  static void add_to(double* out, vec v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m512d s = _mm512_add_pd(_mm512_cvtps_pd(lo), _mm512_cvtps_pd(hi));
    const __m256d t = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));
    const __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    _mm_storeu_pd(out, _mm_add_pd(_mm_loadu_pd(out), u));
  }
};

// complex128: 4 amplitudes per vector.
struct Avx512F64 {
  using R = double;
  using vec = __m512d;
  using perm_t = __m512i;
  static constexpr int LANES = 4;
  static constexpr int L = 2;
  static constexpr int S = 8;

  static vec load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, vec v) { _mm512_storeu_pd(p, v); }
  static vec zero() { return _mm512_setzero_pd(); }
  static vec bcast(const double* p) { return _mm512_set1_pd(*p); }
  static vec swap(vec v) { return _mm512_permute_pd(v, 0x55); }
  static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_pd(a, b, c); }
  static vec mul(vec a, vec b) { return _mm512_mul_pd(a, b); }
  static vec add(vec a, vec b) { return _mm512_add_pd(a, b); }
  static vec addsub(vec a, vec b) { return _mm512_fmaddsub_pd(a, _mm512_set1_pd(1.0), b); }
  static vec dup_re(vec v) { return _mm512_movedup_pd(v); }
  static vec dup_im(vec v) { return _mm512_permute_pd(v, 0xFF); }
  static perm_t make_perm(const int* src) {
    alignas(64) long long idx[8];
    for (int l = 0; l < LANES; ++l) {
      idx[2 * l] = 2 * src[l];
      idx[2 * l + 1] = 2 * src[l] + 1;
    }
    return _mm512_load_si512(idx);
  }
  static perm_t make_mask(const int* on) {
    alignas(64) long long m[8];
    for (int l = 0; l < LANES; ++l) m[2 * l] = m[2 * l + 1] = on[l] ? -1 : 0;
    return _mm512_load_si512(m);
  }
  static vec permute(vec v, perm_t p) { return _mm512_permutexvar_pd(p, v); }
  static vec and_mask(vec v, perm_t m) {
    return _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(v), m));
  }
  static vec or_(vec a, vec b) {
    return _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(a), _mm512_castpd_si512(b)));
  }
  static void add_to(double* out, vec v) {
    const __m256d t = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    const __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    _mm_storeu_pd(out, _mm_add_pd(_mm_loadu_pd(out), u));
  }
};

#include "kernels_generic.inc"
#include "kernels_layer.inc"
#include "kernels_product.inc"
#include "kernels_lanes.inc"

// A linear step on complex64 (IsaKernels::linear): an amplitude is 8 bytes, so one
// gather moves eight (0.35 against 0.66 ns per amplitude moved one at a time, 12
// qubits, memcpy included). Where the map sends the three lane bits of the index to
// lane bits only (F(1), F(2), F(4) < 8: CNOT chains and ladders whose controls sit
// above their targets, and their inverses), out[8 j + l] = in[F(8 j) ^ F(l)] is one
// vector of the input, its lanes permuted: a load and a permute instead of a gather.
void linear_f32(const int64_t* table, int n, const float* in, float* out, int64_t a0, int64_t a1) {
  if (n < 8) {
    linear_gather<float>(table, n, in, out, a0, a1);
    return;
  }
  const int chunks = (n + 7) / 8;
  const bool lanes_local = table[1] < 8 && table[2] < 8 && table[4] < 8;
  const __m512i low = _mm512_loadu_si512(table);  // F(l), l = 0..7
  for (int64_t hi = a0; hi < a1; hi += 256) {
    int64_t base = 0;
    for (int t = 1; t < chunks; ++t) base ^= table[t * 256 + ((hi >> (8 * t)) & 255)];
    float* o = out + 2 * hi;
    if (lanes_local) {
      for (int l = 0; l < 256; l += 8) {
        const int64_t f = base ^ table[l];
        const __m512i v = _mm512_loadu_si512(in + 2 * (f & ~int64_t(7)));
        const __m512i idx = _mm512_xor_si512(low, _mm512_set1_epi64(f & 7));
        _mm512_storeu_si512(o + 2 * l, _mm512_permutexvar_epi64(idx, v));
      }
      continue;
    }
    const __m512i b = _mm512_set1_epi64(base);
    for (int l = 0; l < 256; l += 8) {
      const __m512i idx = _mm512_xor_si512(b, _mm512_loadu_si512(table + l));
      _mm512_storeu_si512(o + 2 * l, _mm512_i64gather_epi64(idx, in, 8));
    }
  }
}

// The AVX2 kernels with their layer kernels replaced by these.
template <class V>
IsaKernels<typename V::R> with_layers(const IsaKernels<typename V::R>& base) {
  IsaKernels<typename V::R> t = base;
  t.layer = &layer_apply<V>;
  t.layer_vjp = &layer_vjp<V>;
  t.product = &product_rows<V>;
  t.product_vjp = &product_vjp_rows<V>;
  return t;
}

// The AVX2 kernels with the lanes runner's replaced by these (16 complex64 or 8
// complex128 states per tile).
template <class V>
IsaKernels<typename V::R> with_lanes(const IsaKernels<typename V::R>& base) {
  IsaKernels<typename V::R> t = base;
  t.lanes_width = V::S;
  t.lanes_run = &lanes_run<V>;
  return t;
}

}  // namespace

const IsaKernels<float>* avx512_layer_kernels_f32() {
  static const IsaKernels<float> k = [] {
    IsaKernels<float> t = with_layers<Avx512F32>(*avx2_kernels_f32());
    t.linear = &linear_f32;
    return t;
  }();
  return &k;
}

const IsaKernels<double>* avx512_layer_kernels_f64() {
  static const IsaKernels<double> k = with_layers<Avx512F64>(*avx2_kernels_f64());
  return &k;
}

const IsaKernels<float>* avx512_lanes_kernels_f32() {
  static const IsaKernels<float> k = with_lanes<Avx512F32>(*avx2_kernels_f32());
  return &k;
}

const IsaKernels<double>* avx512_lanes_kernels_f64() {
  static const IsaKernels<double> k = with_lanes<Avx512F64>(*avx2_kernels_f64());
  return &k;
}

}  // namespace qsim_native
