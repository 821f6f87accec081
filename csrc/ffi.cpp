// XLA FFI handlers (CPU), one gate per call, around the C++ API of qsim_native.h.
//
// Every handler works in place: Python aliases the state operand to the first
// result, so no copy is made (if XLA hands over distinct buffers, the input is
// copied first). Matrices (..., 2^k, 2^k) and diagonals (..., 2^k) have either
// no batch or the state's (see ffi_common.h). Wires are static int64
// attributes: `targets` (U's order, first = most significant bit of U's index),
// `controls`, and `perm` for permutations.
#include <string>

#include "ffi_common.h"

namespace qn = qsim_native;
using qn::I64s;
using qn::data;
using qn::ffi::AnyBuffer;
using qn::ffi::Error;
using qn::ffi::Result;

namespace {

Error Dense(AnyBuffer state, AnyBuffer u, Result<AnyBuffer> out, I64s targets, I64s controls) {
  const char* fn = "qsim_native_dense";
  qn::StateInfo s;
  int k;
  int64_t stride;
  if (auto e = qn::check_state(fn, state, &s); e.failure()) return e;
  if (auto e = qn::check_targets(fn, targets, &k); e.failure()) return e;
  if (auto e = qn::check_coef(fn, "U", u, s, 2, int64_t(1) << k, &stride); e.failure()) return e;
  if (auto e = qn::init_out(fn, state, *out); e.failure()) return e;
  const int nc = qn::wire_count(controls);
  if (s.f64) {
    return qn::status(qn::apply_dense<double>(data<double>(*out), s.batch, s.n, data<double>(u),
                                              stride, targets.begin(), k, controls.begin(), nc));
  }
  return qn::status(qn::apply_dense<float>(data<float>(*out), s.batch, s.n, data<float>(u),
                                           stride, targets.begin(), k, controls.begin(), nc));
}

Error Diagonal(AnyBuffer state, AnyBuffer d, Result<AnyBuffer> out, I64s targets) {
  const char* fn = "qsim_native_diagonal";
  qn::StateInfo s;
  int k;
  int64_t stride;
  if (auto e = qn::check_state(fn, state, &s); e.failure()) return e;
  if (auto e = qn::check_targets(fn, targets, &k); e.failure()) return e;
  if (auto e = qn::check_coef(fn, "d", d, s, 1, int64_t(1) << k, &stride); e.failure()) return e;
  if (auto e = qn::init_out(fn, state, *out); e.failure()) return e;
  if (s.f64) {
    return qn::status(qn::apply_diagonal<double>(data<double>(*out), s.batch, s.n,
                                                 data<double>(d), stride, targets.begin(), k));
  }
  return qn::status(qn::apply_diagonal<float>(data<float>(*out), s.batch, s.n, data<float>(d),
                                              stride, targets.begin(), k));
}

Error Permutation(AnyBuffer state, Result<AnyBuffer> out, I64s targets, I64s controls,
                  I64s perm) {
  const char* fn = "qsim_native_permutation";
  qn::StateInfo s;
  int k;
  if (auto e = qn::check_state(fn, state, &s); e.failure()) return e;
  if (auto e = qn::check_targets(fn, targets, &k); e.failure()) return e;
  if (int64_t(perm.size()) != (int64_t(1) << k)) {
    return qn::invalid(std::string(fn) + ": perm must have 2**len(targets) entries");
  }
  if (auto e = qn::init_out(fn, state, *out); e.failure()) return e;
  const int nc = qn::wire_count(controls);
  if (s.f64) {
    return qn::status(qn::apply_permutation<double>(data<double>(*out), s.batch, s.n,
                                                    perm.begin(), targets.begin(), k,
                                                    controls.begin(), nc));
  }
  return qn::status(qn::apply_permutation<float>(data<float>(*out), s.batch, s.n, perm.begin(),
                                                 targets.begin(), k, controls.begin(), nc));
}

// (g, x, U) -> (U^T g, ct_U) with ct_U[b, i, j] = sum over the other bits of g[i] x[j].
Error DenseVjp(AnyBuffer g, AnyBuffer x, AnyBuffer u, Result<AnyBuffer> g_out,
               Result<AnyBuffer> ct_u, I64s targets, I64s controls) {
  const char* fn = "qsim_native_dense_vjp";
  qn::StateInfo s;
  int k;
  int64_t stride;
  if (auto e = qn::check_state(fn, g, &s); e.failure()) return e;
  if (auto e = qn::check_like(fn, "x and the cotangent", g, x); e.failure()) return e;
  if (auto e = qn::check_targets(fn, targets, &k); e.failure()) return e;
  const int64_t dim = int64_t(1) << k;
  if (auto e = qn::check_coef(fn, "U", u, s, 2, dim, &stride); e.failure()) return e;
  if (ct_u->element_type() != u.element_type() ||
      int64_t(ct_u->element_count()) != s.batch * dim * dim) {
    return qn::invalid(std::string(fn) + ": ct_U must be (batch, 2**k, 2**k)");
  }
  if (auto e = qn::init_out(fn, g, *g_out); e.failure()) return e;
  const int nc = qn::wire_count(controls);
  if (s.f64) {
    return qn::status(qn::dense_vjp<double>(data<double>(*g_out), data<double>(x), s.batch, s.n,
                                            data<double>(u), stride, data<double>(*ct_u),
                                            targets.begin(), k, controls.begin(), nc));
  }
  return qn::status(qn::dense_vjp<float>(data<float>(*g_out), data<float>(x), s.batch, s.n,
                                         data<float>(u), stride, data<float>(*ct_u),
                                         targets.begin(), k, controls.begin(), nc));
}

// (g, x, d) -> (d g, ct_d) with ct_d[b, j] = sum over the other bits of g[j] x[j].
Error DiagonalVjp(AnyBuffer g, AnyBuffer x, AnyBuffer d, Result<AnyBuffer> g_out,
                  Result<AnyBuffer> ct_d, I64s targets) {
  const char* fn = "qsim_native_diagonal_vjp";
  qn::StateInfo s;
  int k;
  int64_t stride;
  if (auto e = qn::check_state(fn, g, &s); e.failure()) return e;
  if (auto e = qn::check_like(fn, "x and the cotangent", g, x); e.failure()) return e;
  if (auto e = qn::check_targets(fn, targets, &k); e.failure()) return e;
  const int64_t dim = int64_t(1) << k;
  if (auto e = qn::check_coef(fn, "d", d, s, 1, dim, &stride); e.failure()) return e;
  if (ct_d->element_type() != d.element_type() ||
      int64_t(ct_d->element_count()) != s.batch * dim) {
    return qn::invalid(std::string(fn) + ": ct_d must be (batch, 2**k)");
  }
  if (auto e = qn::init_out(fn, g, *g_out); e.failure()) return e;
  if (s.f64) {
    return qn::status(qn::diagonal_vjp<double>(data<double>(*g_out), data<double>(x), s.batch,
                                               s.n, data<double>(d), stride,
                                               data<double>(*ct_d), targets.begin(), k));
  }
  return qn::status(qn::diagonal_vjp<float>(data<float>(*g_out), data<float>(x), s.batch, s.n,
                                            data<float>(d), stride, data<float>(*ct_d),
                                            targets.begin(), k));
}

}  // namespace

// The library is built with hidden visibility; these and program_ffi.cpp's are its only exports.
QSIM_EXPORT XLA_FFI_Error* qsim_native_dense(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_diagonal(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_permutation(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_dense_vjp(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_diagonal_vjp(XLA_FFI_CallFrame* call_frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_dense, Dense,
                              qn::ffi::Ffi::Bind()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Attr<I64s>("targets")
                                  .Attr<I64s>("controls"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_diagonal, Diagonal,
                              qn::ffi::Ffi::Bind()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Attr<I64s>("targets"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_permutation, Permutation,
                              qn::ffi::Ffi::Bind()
                                  .Arg<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Attr<I64s>("targets")
                                  .Attr<I64s>("controls")
                                  .Attr<I64s>("perm"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_dense_vjp, DenseVjp,
                              qn::ffi::Ffi::Bind()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Attr<I64s>("targets")
                                  .Attr<I64s>("controls"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_diagonal_vjp, DiagonalVjp,
                              qn::ffi::Ffi::Bind()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Attr<I64s>("targets"));

// "isa=avx2+fma threads=2": what the kernels run on, for logs and benchmarks.
QSIM_EXPORT const char* qsim_native_info() {
  static const std::string info =
      std::string("isa=") + qn::isa_name() + " threads=" + std::to_string(qn::num_threads());
  return info.c_str();
}
