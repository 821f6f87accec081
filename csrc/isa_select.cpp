// The instruction set, chosen once at run time: AVX2 + FMA when the library
// was built with it and the CPU has both (QSIM_NATIVE_ISA=scalar forces the
// portable kernels), else scalar; layers on AVX-512F where the CPU has it too
// (QSIM_NATIVE_ISA=avx2 keeps them on AVX2).
#include <cstdlib>
#include <string>

#include "qsim_native.h"

namespace qsim_native {
namespace {

bool use_avx2() {
#if defined(QSIM_HAVE_AVX2)
  static const bool yes = [] {
    const char* force = std::getenv("QSIM_NATIVE_ISA");
    if (force != nullptr && std::string(force) == "scalar") return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
#else
  return false;
#endif
}

bool use_avx512() {
#if defined(QSIM_HAVE_AVX512)
  static const bool yes = [] {
    const char* force = std::getenv("QSIM_NATIVE_ISA");
    if (force != nullptr && (std::string(force) == "scalar" || std::string(force) == "avx2")) {
      return false;
    }
    __builtin_cpu_init();
    return use_avx2() && __builtin_cpu_supports("avx512f");
  }();
  return yes;
#else
  return false;
#endif
}

// Below this many qubits a state is a handful of 512-bit vectors, most gates act
// on lanes inside one and the per-gate setup outweighs the wider arithmetic (n=4,
// batch 256: 1.07 ms on AVX-512, 0.82 ms on AVX2; n=10: 6.2 against 7.2-7.9 ms).
constexpr int kAvx512LayerMinQubits = 8;

}  // namespace

template <>
const IsaKernels<float>* layer_kernels_for<float>(int n) {
#if defined(QSIM_HAVE_AVX512)
  if (use_avx512() && n >= kAvx512LayerMinQubits) return avx512_layer_kernels_f32();
#endif
  return kernels_for<float>(n);
}

template <>
const IsaKernels<double>* layer_kernels_for<double>(int n) {
#if defined(QSIM_HAVE_AVX512)
  if (use_avx512() && n >= kAvx512LayerMinQubits) return avx512_layer_kernels_f64();
#endif
  return kernels_for<double>(n);
}

template <>
const IsaKernels<float>* lanes_kernels<float>() {
#if defined(QSIM_HAVE_AVX512)
  if (use_avx512()) return avx512_lanes_kernels_f32();
#endif
  return kernels_for<float>(kMaxQubits);
}

template <>
const IsaKernels<double>* lanes_kernels<double>() {
#if defined(QSIM_HAVE_AVX512)
  if (use_avx512()) return avx512_lanes_kernels_f64();
#endif
  return kernels_for<double>(kMaxQubits);
}

template <>
const IsaKernels<float>* kernels_for<float>(int n) {
#if defined(QSIM_HAVE_AVX2)
  if (use_avx2() && n >= avx2_kernels_f32()->log_lanes) return avx2_kernels_f32();
#endif
  (void)n;
  return scalar_kernels_f32();
}

template <>
const IsaKernels<double>* kernels_for<double>(int n) {
#if defined(QSIM_HAVE_AVX2)
  if (use_avx2() && n >= avx2_kernels_f64()->log_lanes) return avx2_kernels_f64();
#endif
  (void)n;
  return scalar_kernels_f64();
}

const char* isa_name() {
  return use_avx512() ? "avx512f+avx2+fma" : use_avx2() ? "avx2+fma" : "scalar";
}

}  // namespace qsim_native
