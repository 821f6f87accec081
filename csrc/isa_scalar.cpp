// Portable kernels: one complex amplitude per "vector". Used on CPUs without
// AVX2 + FMA, on other architectures, and for states smaller than a vector.
#include "qsim_native.h"

namespace qsim_native {
namespace {

template <class T>
struct ScalarV {
  using R = T;
  struct vec {
    T re, im;
  };
  static constexpr int LANES = 1;
  static constexpr int L = 0;
  static constexpr int S = 2;
  using perm_t = int;  // lanes are never permuted: there is one

  static vec load(const T* p) { return {p[0], p[1]}; }
  static void store(T* p, vec v) {
    p[0] = v.re;
    p[1] = v.im;
  }
  static vec zero() { return {T(0), T(0)}; }
  static vec bcast(const T* p) { return {*p, *p}; }
  static vec swap(vec v) { return {v.im, v.re}; }
  static vec fma(vec a, vec b, vec c) { return {a.re * b.re + c.re, a.im * b.im + c.im}; }
  static vec mul(vec a, vec b) { return {a.re * b.re, a.im * b.im}; }
  static vec add(vec a, vec b) { return {a.re + b.re, a.im + b.im}; }
  static vec addsub(vec a, vec b) { return {a.re - b.re, a.im + b.im}; }
  static vec dup_re(vec v) { return {v.re, v.re}; }
  static vec dup_im(vec v) { return {v.im, v.im}; }
  static perm_t make_perm(const int*) { return 0; }
  static perm_t make_mask(const int* on) { return on[0]; }
  static vec permute(vec v, perm_t) { return v; }
  static vec and_mask(vec v, perm_t m) { return m ? v : zero(); }
  static vec or_(vec a, vec b) { return {a.re + b.re, a.im + b.im}; }  // one operand is zero
  static void add_to(double* out, vec v) {
    out[0] += double(v.re);
    out[1] += double(v.im);
  }
};

#include "kernels_generic.inc"
#include "kernels_apply.inc"
#include "kernels_layer.inc"
#include "kernels_product.inc"
#include "kernels_lanes.inc"
#include "kernels_vjp.inc"

}  // namespace

const IsaKernels<float>* scalar_kernels_f32() {
  static const IsaKernels<float> k = make_kernels<ScalarV<float>>("scalar");
  return &k;
}

const IsaKernels<double>* scalar_kernels_f64() {
  static const IsaKernels<double> k = make_kernels<ScalarV<double>>("scalar");
  return &k;
}

}  // namespace qsim_native
