// What the XLA FFI handlers share (ffi.cpp: one gate per call; program_ffi.cpp:
// whole programs): operand checks, the batch geometry of states and
// coefficients, and error construction. Every handler takes states with any
// leading batch dimensions, (..., 2^n), and coefficients with either no batch
// (leading size 1: shared by every state) or the state's batch.
#ifndef QSIM_FFI_COMMON_H_
#define QSIM_FFI_COMMON_H_

#include <cstdint>
#include <string>

#include "qsim_native.h"
#include "xla/ffi/api/ffi.h"

namespace qsim_native {

namespace ffi = xla::ffi;
using I64s = ffi::Span<const int64_t>;

ffi::Error invalid(const std::string& what);
// Success for nullptr, else `err` (a message from the C++ API) as an invalid argument.
ffi::Error status(const char* err);

// A state operand: `batch` states of 2^n amplitudes, complex128 when f64.
struct StateInfo {
  int64_t batch;
  int n;
  bool f64;
};

ffi::Error check_state(const char* fn, ffi::AnyBuffer state, StateInfo* info);

// Checks that `c` has the state's dtype and at least `rank` dimensions, and that
// its leading (batch) dimensions hold 1 or s.batch elements; sets *rows to that.
ffi::Error check_batch(const char* fn, const char* name, ffi::AnyBuffer c, const StateInfo& s,
                       size_t rank, int64_t* rows);

// A coefficient operand of trailing shape (dim,) * rank (rank 2: a matrix): sets
// *stride to its batch stride in complex elements (0: shared by the whole batch).
ffi::Error check_coef(const char* fn, const char* name, ffi::AnyBuffer c, const StateInfo& s,
                      size_t rank, int64_t dim, int64_t* stride);

// 1 <= len(targets) <= kMaxTargets; sets *k.
ffi::Error check_targets(const char* fn, I64s targets, int* k);

// Wire counts as int; a count over 64 stays over any state's qubits.
int wire_count(I64s wires);

// `b` has the same dtype and size as `a` (the message names them with `what`).
ffi::Error check_like(const char* fn, const char* what, ffi::AnyBuffer a, ffi::AnyBuffer b);

// The result `out` of an in-place handler: checked like `in`, and a copy of it
// unless XLA aliased the two.
ffi::Error init_out(const char* fn, ffi::AnyBuffer in, ffi::AnyBuffer out);

template <class R>
R* data(ffi::AnyBuffer b) {
  return static_cast<R*>(b.untyped_data());
}

}  // namespace qsim_native

#endif  // QSIM_FFI_COMMON_H_
