// Operand checks and errors shared by the XLA FFI handlers (see ffi_common.h).
#include "ffi_common.h"

#include <cstring>

namespace qsim_native {
namespace {

// Product of all but the last `trailing` dimensions.
int64_t leading(ffi::AnyBuffer::Dimensions dims, size_t trailing) {
  int64_t b = 1;
  for (size_t i = 0; i + trailing < dims.size(); ++i) b *= dims[i];
  return b;
}

// n with 2^n = x, or -1.
int log2_exact(int64_t x) {
  if (x < 1 || (x & (x - 1)) != 0) return -1;
  int n = 0;
  while ((int64_t(1) << n) < x) ++n;
  return n;
}

}  // namespace

ffi::Error invalid(const std::string& what) { return ffi::Error::InvalidArgument(what); }

ffi::Error status(const char* err) {
  return err == nullptr ? ffi::Error::Success() : invalid(err);
}

ffi::Error check_state(const char* fn, ffi::AnyBuffer state, StateInfo* info) {
  const auto t = state.element_type();
  if (t != ffi::DataType::C64 && t != ffi::DataType::C128) {
    return invalid(std::string(fn) + ": the state must be complex64 or complex128");
  }
  const auto dims = state.dimensions();
  if (dims.size() < 1) return invalid(std::string(fn) + ": the state must have rank >= 1");
  info->n = log2_exact(dims.back());
  if (info->n < 0 || info->n > kMaxQubits) {
    return invalid(std::string(fn) + ": the state's last dimension must be 2**n");
  }
  info->batch = leading(dims, 1);
  info->f64 = t == ffi::DataType::C128;
  return ffi::Error::Success();
}

ffi::Error check_batch(const char* fn, const char* name, ffi::AnyBuffer c, const StateInfo& s,
                       size_t rank, int64_t* rows) {
  if (c.element_type() != (s.f64 ? ffi::DataType::C128 : ffi::DataType::C64)) {
    return invalid(std::string(fn) + ": " + name + " must have the state's dtype");
  }
  const auto dims = c.dimensions();
  if (dims.size() < rank) return invalid(std::string(fn) + ": " + name + " has too few dimensions");
  *rows = leading(dims, rank);
  if (*rows != 1 && *rows != s.batch) {
    return invalid(std::string(fn) + ": the batch of " + name + " must be 1 or the state's batch");
  }
  return ffi::Error::Success();
}

ffi::Error check_coef(const char* fn, const char* name, ffi::AnyBuffer c, const StateInfo& s,
                      size_t rank, int64_t dim, int64_t* stride) {
  int64_t rows;
  if (auto e = check_batch(fn, name, c, s, rank, &rows); e.failure()) return e;
  const auto dims = c.dimensions();
  for (size_t i = dims.size() - rank; i < dims.size(); ++i) {
    if (dims[i] != dim) {
      return invalid(std::string(fn) + ": " + name + " must be of size 2**len(targets)");
    }
  }
  *stride = rows == 1 ? 0 : (rank == 2 ? dim * dim : dim);
  return ffi::Error::Success();
}

ffi::Error check_targets(const char* fn, I64s targets, int* k) {
  *k = wire_count(targets);
  if (*k < 1 || *k > kMaxTargets) {
    return invalid(std::string(fn) + ": 1 to " + std::to_string(kMaxTargets) + " targets");
  }
  return ffi::Error::Success();
}

int wire_count(I64s wires) { return wires.size() > 64 ? 64 : int(wires.size()); }

ffi::Error check_like(const char* fn, const char* what, ffi::AnyBuffer a, ffi::AnyBuffer b) {
  if (b.element_type() != a.element_type() || b.size_bytes() != a.size_bytes()) {
    return invalid(std::string(fn) + ": " + what + " must have one shape and dtype");
  }
  return ffi::Error::Success();
}

ffi::Error init_out(const char* fn, ffi::AnyBuffer in, ffi::AnyBuffer out) {
  if (auto e = check_like(fn, "the state and the result", in, out); e.failure()) return e;
  if (out.untyped_data() != in.untyped_data()) {
    std::memcpy(out.untyped_data(), in.untyped_data(), in.size_bytes());
  }
  return ffi::Error::Success();
}

}  // namespace qsim_native
