// XLA FFI handlers (CPU) that run a whole program (program.h) in one call.
//
// qsim_native_program(state, coefs) -> state, attributes `code` and `mode`:
//   0 forward (U_S ... U_1), 1 inverse (U_1^dagger ... U_S^dagger, for unitary
//   steps), 2 transpose (U_1^T ... U_S^T: the state cotangent of the forward).
// qsim_native_program_vjp(y, g, coefs) -> (x, g_x, ct), attributes `code` and
//   `want_ct`: the adjoint sweep (run_adjoint) from the forward's output y and
//   its cotangent g; returns the input x, its cotangent and, when want_ct is
//   set, ct (batch, total), the coefficients' cotangent (else zeros).
// Both work in place on their first operands (aliased to the first results)
// and parse `code` once per distinct program (cached_program).
#include <memory>
#include <string>

#include "ffi_common.h"
#include "program.h"

namespace qn = qsim_native;
using qn::I64s;
using qn::data;
using qn::ffi::AnyBuffer;
using qn::ffi::Error;
using qn::ffi::Result;

namespace {

// The shapes of a state operand and its coefficients (cb, total).
Error shapes(const char* fn, AnyBuffer state, AnyBuffer coefs, qn::Shapes* sh, bool* f64) {
  qn::StateInfo s;
  if (auto e = qn::check_state(fn, state, &s); e.failure()) return e;
  if (auto e = qn::check_batch(fn, "coefs", coefs, s, 1, &sh->cb); e.failure()) return e;
  sh->batch = s.batch;
  sh->n = s.n;
  sh->total = coefs.dimensions().back();
  *f64 = s.f64;
  return Error::Success();
}

// The parsed program, checked against the coefficients it reads.
Error program_for(const char* fn, I64s code, const qn::Shapes& sh,
                  std::shared_ptr<const qn::Program>* prog) {
  std::string err;
  *prog = qn::cached_program(code.begin(), code.size(), &err);
  if (*prog == nullptr) return qn::invalid(std::string(fn) + ": " + err);
  if ((*prog)->coef_end > sh.total) {
    return qn::invalid(std::string(fn) + ": coefficient offset out of range");
  }
  return Error::Success();
}

Error Program(AnyBuffer state, AnyBuffer coefs, Result<AnyBuffer> out, I64s code, int64_t mode) {
  const char* fn = "qsim_native_program";
  qn::Shapes sh;
  bool f64;
  std::shared_ptr<const qn::Program> prog;
  if (auto e = shapes(fn, state, coefs, &sh, &f64); e.failure()) return e;
  if (mode < 0 || mode > 2) return qn::invalid(std::string(fn) + ": mode must be 0, 1 or 2");
  if (auto e = program_for(fn, code, sh, &prog); e.failure()) return e;
  if (auto e = qn::init_out(fn, state, *out); e.failure()) return e;
  const auto dir = static_cast<qn::Direction>(mode);
  if (f64) {
    return qn::status(qn::run_program<double>(*prog, data<double>(*out), data<double>(coefs), sh,
                                              dir));
  }
  return qn::status(qn::run_program<float>(*prog, data<float>(*out), data<float>(coefs), sh, dir));
}

Error ProgramVjp(AnyBuffer y, AnyBuffer g, AnyBuffer coefs, Result<AnyBuffer> x,
                 Result<AnyBuffer> g_x, Result<AnyBuffer> ct, I64s code, int64_t want_ct) {
  const char* fn = "qsim_native_program_vjp";
  qn::Shapes sh;
  bool f64;
  std::shared_ptr<const qn::Program> prog;
  if (auto e = shapes(fn, y, coefs, &sh, &f64); e.failure()) return e;
  if (auto e = qn::check_like(fn, "y and g", y, g); e.failure()) return e;
  if (ct->element_type() != y.element_type() ||
      int64_t(ct->element_count()) != sh.batch * sh.total) {
    return qn::invalid(std::string(fn) + ": ct must be (batch, total)");
  }
  if (auto e = program_for(fn, code, sh, &prog); e.failure()) return e;
  if (auto e = qn::init_out(fn, y, *x); e.failure()) return e;
  if (auto e = qn::init_out(fn, g, *g_x); e.failure()) return e;
  if (f64) {
    return qn::status(qn::run_adjoint<double>(*prog, data<double>(*x), data<double>(*g_x),
                                              data<double>(coefs), data<double>(*ct), sh,
                                              want_ct != 0));
  }
  return qn::status(qn::run_adjoint<float>(*prog, data<float>(*x), data<float>(*g_x),
                                           data<float>(coefs), data<float>(*ct), sh,
                                           want_ct != 0));
}

}  // namespace

QSIM_EXPORT XLA_FFI_Error* qsim_native_program(XLA_FFI_CallFrame* call_frame);
QSIM_EXPORT XLA_FFI_Error* qsim_native_program_vjp(XLA_FFI_CallFrame* call_frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_program, Program,
                              qn::ffi::Ffi::Bind()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Attr<I64s>("code")
                                  .Attr<int64_t>("mode"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(qsim_native_program_vjp, ProgramVjp,
                              qn::ffi::Ffi::Bind()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Arg<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Ret<AnyBuffer>()
                                  .Attr<I64s>("code")
                                  .Attr<int64_t>("want_ct"));
