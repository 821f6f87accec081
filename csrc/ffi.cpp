// XLA FFI handlers (CPU) around the kernels of qsim_native.h.
//
// Every handler takes the state(s) with any leading batch dimensions,
// (..., 2^n), and works in place: Python aliases the state operand to the
// first result, so no copy is made (if XLA hands over distinct buffers, the
// input is copied first). Matrices (..., 2^k, 2^k) and diagonals (..., 2^k)
// have either no batch (leading size 1) or the state's batch size.
// Wires are static int64 attributes: `targets` (U's order, first = most
// significant bit of U's index), `controls`, and `perm` for permutations.
#include <complex>
#include <cstdint>
#include <cstring>
#include <string>

#include "qsim_native.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
namespace qn = qsim_native;

namespace {

using I64s = ffi::Span<const int64_t>;

ffi::Error invalid(const std::string& what) { return ffi::Error::InvalidArgument(what); }

int64_t leading(ffi::AnyBuffer::Dimensions dims, size_t trailing) {
  int64_t b = 1;
  for (size_t i = 0; i + trailing < dims.size(); ++i) b *= dims[i];
  return b;
}

// n with 2^n = the last dimension, or -1.
int log2_exact(int64_t x) {
  if (x < 1 || (x & (x - 1)) != 0) return -1;
  int n = 0;
  while ((int64_t(1) << n) < x) ++n;
  return n;
}

struct StateInfo {
  int64_t batch;
  int n;
  bool f64;
};

ffi::Error check_state(const char* fn, ffi::AnyBuffer s, StateInfo* info) {
  const auto t = s.element_type();
  if (t != ffi::DataType::C64 && t != ffi::DataType::C128) {
    return invalid(std::string(fn) + ": the state must be complex64 or complex128");
  }
  const auto dims = s.dimensions();
  if (dims.size() < 1) return invalid(std::string(fn) + ": the state must have rank >= 1");
  info->n = log2_exact(dims.back());
  if (info->n < 0 || info->n > qn::kMaxQubits) {
    return invalid(std::string(fn) + ": the state's last dimension must be 2**n");
  }
  info->batch = leading(dims, 1);
  info->f64 = t == ffi::DataType::C128;
  return ffi::Error::Success();
}

// Checks a coefficient operand of trailing shape (dim,)*rank and returns its
// batch stride in complex elements (0: shared by the whole batch).
ffi::Error check_coef(const char* fn, const char* name, ffi::AnyBuffer c, const StateInfo& s,
                      size_t rank, int64_t dim, int64_t* stride) {
  if (c.element_type() != (s.f64 ? ffi::DataType::C128 : ffi::DataType::C64)) {
    return invalid(std::string(fn) + ": " + name + " must have the state's dtype");
  }
  const auto dims = c.dimensions();
  if (dims.size() < rank) return invalid(std::string(fn) + ": " + name + " has too few dimensions");
  for (size_t i = dims.size() - rank; i < dims.size(); ++i) {
    if (dims[i] != dim) {
      return invalid(std::string(fn) + ": " + name + " must be of size 2**len(targets)");
    }
  }
  const int64_t b = leading(dims, rank);
  const int64_t size = rank == 2 ? dim * dim : dim;
  if (b == 1) {
    *stride = 0;
  } else if (b == s.batch) {
    *stride = size;
  } else {
    return invalid(std::string(fn) + ": " + name + "'s batch must be 1 or the state's batch");
  }
  return ffi::Error::Success();
}

ffi::Error check_out(const char* fn, ffi::AnyBuffer in, ffi::AnyBuffer out) {
  if (out.element_type() != in.element_type() || out.size_bytes() != in.size_bytes()) {
    return invalid(std::string(fn) + ": the result must have the state's shape and dtype");
  }
  if (out.untyped_data() != in.untyped_data()) {
    std::memcpy(out.untyped_data(), in.untyped_data(), in.size_bytes());
  }
  return ffi::Error::Success();
}

ffi::Error status(const char* err) {
  return err == nullptr ? ffi::Error::Success() : invalid(err);
}

int wire_count(I64s w) { return w.size() > 64 ? 64 : int(w.size()); }

template <class R>
R* data(ffi::AnyBuffer b) {
  return static_cast<R*>(b.untyped_data());
}

// ------------------------------------------------------------ handlers ------

ffi::Error Dense(ffi::AnyBuffer state, ffi::AnyBuffer u, ffi::Result<ffi::AnyBuffer> out,
                 I64s targets, I64s controls) {
  const char* fn = "qsim_native_dense";
  StateInfo s;
  if (auto e = check_state(fn, state, &s); e.failure()) return e;
  const int k = wire_count(targets), nc = wire_count(controls);
  if (k < 1 || k > qn::kMaxTargets) return invalid("qsim_native_dense: 1 to 5 targets");
  int64_t stride;
  if (auto e = check_coef(fn, "U", u, s, 2, int64_t(1) << k, &stride); e.failure()) return e;
  if (auto e = check_out(fn, state, *out); e.failure()) return e;
  if (s.f64) {
    return status(qn::apply_dense<double>(data<double>(*out), s.batch, s.n, data<double>(u),
                                          stride, targets.begin(), k, controls.begin(), nc));
  }
  return status(qn::apply_dense<float>(data<float>(*out), s.batch, s.n, data<float>(u), stride,
                                       targets.begin(), k, controls.begin(), nc));
}

ffi::Error Diagonal(ffi::AnyBuffer state, ffi::AnyBuffer d, ffi::Result<ffi::AnyBuffer> out,
                    I64s targets) {
  const char* fn = "qsim_native_diagonal";
  StateInfo s;
  if (auto e = check_state(fn, state, &s); e.failure()) return e;
  const int k = wire_count(targets);
  if (k < 1 || k > qn::kMaxTargets) return invalid("qsim_native_diagonal: 1 to 5 targets");
  int64_t stride;
  if (auto e = check_coef(fn, "d", d, s, 1, int64_t(1) << k, &stride); e.failure()) return e;
  if (auto e = check_out(fn, state, *out); e.failure()) return e;
  if (s.f64) {
    return status(qn::apply_diagonal<double>(data<double>(*out), s.batch, s.n, data<double>(d),
                                             stride, targets.begin(), k));
  }
  return status(qn::apply_diagonal<float>(data<float>(*out), s.batch, s.n, data<float>(d), stride,
                                          targets.begin(), k));
}

ffi::Error Permutation(ffi::AnyBuffer state, ffi::Result<ffi::AnyBuffer> out, I64s targets,
                       I64s controls, I64s perm) {
  const char* fn = "qsim_native_permutation";
  StateInfo s;
  if (auto e = check_state(fn, state, &s); e.failure()) return e;
  const int k = wire_count(targets), nc = wire_count(controls);
  if (k < 1 || k > qn::kMaxTargets) return invalid("qsim_native_permutation: 1 to 5 targets");
  if (int64_t(perm.size()) != (int64_t(1) << k)) {
    return invalid("qsim_native_permutation: perm must have 2**len(targets) entries");
  }
  if (auto e = check_out(fn, state, *out); e.failure()) return e;
  if (s.f64) {
    return status(qn::apply_permutation<double>(data<double>(*out), s.batch, s.n, perm.begin(),
                                                targets.begin(), k, controls.begin(), nc));
  }
  return status(qn::apply_permutation<float>(data<float>(*out), s.batch, s.n, perm.begin(),
                                             targets.begin(), k, controls.begin(), nc));
}

// (g, x, U) -> (U^T g, ct_U) with ct_U[b, i, j] = sum over the other bits of g[i] x[j].
ffi::Error DenseVjp(ffi::AnyBuffer g, ffi::AnyBuffer x, ffi::AnyBuffer u,
                    ffi::Result<ffi::AnyBuffer> g_out, ffi::Result<ffi::AnyBuffer> ct_u,
                    I64s targets, I64s controls) {
  const char* fn = "qsim_native_dense_vjp";
  StateInfo s;
  if (auto e = check_state(fn, g, &s); e.failure()) return e;
  if (x.element_type() != g.element_type() || x.size_bytes() != g.size_bytes()) {
    return invalid("qsim_native_dense_vjp: x must have the cotangent's shape and dtype");
  }
  const int k = wire_count(targets), nc = wire_count(controls);
  if (k < 1 || k > qn::kMaxTargets) return invalid("qsim_native_dense_vjp: 1 to 5 targets");
  const int64_t dim = int64_t(1) << k;
  int64_t stride;
  if (auto e = check_coef(fn, "U", u, s, 2, dim, &stride); e.failure()) return e;
  if (ct_u->element_type() != u.element_type() ||
      int64_t(ct_u->element_count()) != s.batch * dim * dim) {
    return invalid("qsim_native_dense_vjp: ct_U must be (batch, 2**k, 2**k)");
  }
  if (auto e = check_out(fn, g, *g_out); e.failure()) return e;
  if (s.f64) {
    return status(qn::dense_vjp<double>(data<double>(*g_out), data<double>(x), s.batch, s.n,
                                        data<double>(u), stride, data<double>(*ct_u),
                                        targets.begin(), k, controls.begin(), nc));
  }
  return status(qn::dense_vjp<float>(data<float>(*g_out), data<float>(x), s.batch, s.n,
                                     data<float>(u), stride, data<float>(*ct_u), targets.begin(),
                                     k, controls.begin(), nc));
}

// (g, x, d) -> (d g, ct_d) with ct_d[b, j] = sum over the other bits of g[j] x[j].
ffi::Error DiagonalVjp(ffi::AnyBuffer g, ffi::AnyBuffer x, ffi::AnyBuffer d,
                       ffi::Result<ffi::AnyBuffer> g_out, ffi::Result<ffi::AnyBuffer> ct_d,
                       I64s targets) {
  const char* fn = "qsim_native_diagonal_vjp";
  StateInfo s;
  if (auto e = check_state(fn, g, &s); e.failure()) return e;
  if (x.element_type() != g.element_type() || x.size_bytes() != g.size_bytes()) {
    return invalid("qsim_native_diagonal_vjp: x must have the cotangent's shape and dtype");
  }
  const int k = wire_count(targets);
  if (k < 1 || k > qn::kMaxTargets) return invalid("qsim_native_diagonal_vjp: 1 to 5 targets");
  const int64_t dim = int64_t(1) << k;
  int64_t stride;
  if (auto e = check_coef(fn, "d", d, s, 1, dim, &stride); e.failure()) return e;
  if (ct_d->element_type() != d.element_type() ||
      int64_t(ct_d->element_count()) != s.batch * dim) {
    return invalid("qsim_native_diagonal_vjp: ct_d must be (batch, 2**k)");
  }
  if (auto e = check_out(fn, g, *g_out); e.failure()) return e;
  if (s.f64) {
    return status(qn::diagonal_vjp<double>(data<double>(*g_out), data<double>(x), s.batch, s.n,
                                           data<double>(d), stride, data<double>(*ct_d),
                                           targets.begin(), k));
  }
  return status(qn::diagonal_vjp<float>(data<float>(*g_out), data<float>(x), s.batch, s.n,
                                        data<float>(d), stride, data<float>(*ct_d),
                                        targets.begin(), k));
}

}  // namespace

// The library is built with hidden visibility; these are its only exports.
QSIM_EXPORT XLA_FFI_Error* qsim_native_dense(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_diagonal(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_permutation(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_dense_vjp(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_diagonal_vjp(XLA_FFI_CallFrame* call_frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_dense, Dense,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<I64s>("targets")
                                  .Attr<I64s>("controls"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_diagonal, Diagonal,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<I64s>("targets"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_permutation, Permutation,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<I64s>("targets")
                                  .Attr<I64s>("controls")
                                  .Attr<I64s>("perm"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_dense_vjp, DenseVjp,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<I64s>("targets")
                                  .Attr<I64s>("controls"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_diagonal_vjp, DiagonalVjp,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<I64s>("targets"));

// "isa=avx2+fma threads=2": what the kernels run on, for logs and benchmarks.
QSIM_EXPORT const char* qsim_native_info() {
  static const std::string info =
      std::string("isa=") + qn::isa_name() + " threads=" + std::to_string(qn::num_threads());
  return info.c_str();
}
