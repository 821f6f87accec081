// The public C++ API of qsim_native.h: checks a gate's arguments, builds its
// Geometry for the chosen instruction set, prepares the gate (once when every
// state shares its coefficients) and splits the work over the thread pool:
// forward kernels by (batch, group) ranges, VJPs by batch members or by group
// ranges with per-task partial sums.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <system_error>
#include <vector>

#include "qsim_native.h"

namespace qsim_native {
namespace {

// Fewer amplitudes than this (times a cost factor for big matrices) run on the
// calling thread: waking workers costs more than the work.
constexpr int64_t kParallelMinWork = int64_t(1) << 16;

// 64-byte aligned per-task scratch.
class Scratch {
 public:
  Scratch(int ntasks, size_t bytes) : stride_((bytes + 63) / 64 * 64) {
    buf_.reset(new char[stride_ * size_t(ntasks) + 64]);
    base_ = buf_.get() + (64 - reinterpret_cast<uintptr_t>(buf_.get()) % 64) % 64;
  }
  char* at(int task) const { return base_ + stride_ * size_t(task); }

 private:
  size_t stride_;
  std::unique_ptr<char[]> buf_;
  char* base_;
};

template <class R>
struct Job {
  int op;              // an Op of qsim_native.h
  const IsaKernels<R>* isa;
  Geometry G;
  R* state;            // batch x 2^n (the cotangent for VJPs)
  const R* x;          // VJPs: the forward input
  const R* coef;       // U or d (interleaved)
  int64_t coef_stride; // reals between batch members' coefficients (0: shared)
  int perm[1 << kMaxTargets];  // permutations
  int64_t batch;
  int64_t state_reals;  // 2 * 2^n
  int64_t chunk;        // flat (batch, group) items per task
  const void* shared;   // the prepared gate when every state shares it, else nullptr
  size_t work_offset;   // a task's scratch: its prepared gate (per state), then its work space
  Scratch* scratch;
  // VJPs
  size_t acc_offset;    // where a task's double accumulators sit in its scratch
  int64_t acc_reals;    // 2 * (matrix size)
  int64_t b_fixed;      // >= 0: tasks split the groups of this one batch member
  int64_t b_per_task;   // otherwise: batch members per task
  R* ct;                // batch x matrix size output
};

template <class R>
void run_range(const Job<R>& J, char* scratch, int64_t b, int64_t g0, int64_t g1, double* acc) {
  const void* prep = J.shared;
  if (prep == nullptr) {
    J.isa->prepare(J.op, J.G, J.coef + b * J.coef_stride, J.perm, scratch);
    prep = scratch;
  }
  const R* x = J.x != nullptr ? J.x + b * J.state_reals : nullptr;
  static_cast<const PreparedGate<R>*>(prep)->apply(J.G, prep, scratch + J.work_offset,
                                                   J.state + b * J.state_reals, x, acc, g0, g1);
}

template <class R>
void store_ct(R* dst, const double* acc, int64_t reals) {
  for (int64_t i = 0; i < reals; ++i) dst[i] = R(acc[i]);
}

// Forward kernels: task t takes flat items [t * chunk, (t + 1) * chunk).
template <class R>
void forward_task(void* ctx, int t) {
  const Job<R>& J = *static_cast<const Job<R>*>(ctx);
  const int64_t items = J.batch * J.G.groups;
  int64_t i = int64_t(t) * J.chunk;
  const int64_t end = std::min(items, i + J.chunk);
  while (i < end) {
    const int64_t b = i / J.G.groups, g0 = i % J.G.groups;
    const int64_t g1 = std::min(J.G.groups, g0 + (end - i));
    run_range(J, J.scratch->at(t), b, g0, g1, nullptr);
    i += g1 - g0;
  }
}

// VJP kernels: either a slice of one batch member's groups (partial sums per
// task, added up by the caller) or whole batch members (written directly).
template <class R>
void vjp_task(void* ctx, int t) {
  const Job<R>& J = *static_cast<const Job<R>*>(ctx);
  char* scratch = J.scratch->at(t);
  double* acc = reinterpret_cast<double*>(scratch + J.acc_offset);
  if (J.b_fixed >= 0) {
    std::fill(acc, acc + J.acc_reals, 0.0);
    const int64_t g0 = std::min(J.G.groups, int64_t(t) * J.chunk);
    const int64_t g1 = std::min(J.G.groups, g0 + J.chunk);
    if (g0 < g1) run_range(J, scratch, J.b_fixed, g0, g1, acc);
    return;
  }
  const int64_t b0 = int64_t(t) * J.b_per_task, b1 = std::min(J.batch, b0 + J.b_per_task);
  for (int64_t b = b0; b < b1; ++b) {
    std::fill(acc, acc + J.acc_reals, 0.0);
    run_range(J, scratch, b, 0, J.G.groups, acc);
    store_ct(J.ct + b * J.acc_reals, acc, J.acc_reals);
  }
}

// Threads to use for `amplitudes` amplitudes of work with 2^k x 2^k matrices.
int tasks_for(int64_t amplitudes, int k, int64_t max_tasks) {
  const int64_t cost = k >= 3 ? int64_t(1) << (k - 2) : 1;  // flops grow as 2^k
  const int64_t work = amplitudes * cost;
  if (work < kParallelMinWork) return 1;
  const int64_t want = std::min<int64_t>(num_threads(), work / kParallelMinWork);
  return int(std::max<int64_t>(1, std::min(want, max_tasks)));
}

// Copies perm (2^k entries, k already checked) into out as ints.
const char* check_perm(const int64_t* perm, int k, int* out) {
  const int dim = 1 << k;
  uint64_t seen = 0;
  for (int j = 0; j < dim; ++j) {
    if (perm[j] < 0 || perm[j] >= dim || (seen >> perm[j]) & 1) {
      return "qsim native: perm must be a permutation of range(2**k)";
    }
    seen |= uint64_t(1) << perm[j];
    out[j] = int(perm[j]);
  }
  return nullptr;
}

// Forward kernels over (batch, group) items.
template <class R>
void run_forward(Job<R>* J, int k, size_t bytes) {
  const int64_t items = J->batch * J->G.groups;
  const int ntasks = tasks_for(J->batch << J->G.n, k, items);
  J->chunk = (items + ntasks - 1) / ntasks;
  J->chunk += J->chunk & 1;  // even: pairs of groups stay whole
  Scratch scratch(ntasks, bytes);
  J->scratch = &scratch;
  run_tasks(ntasks, &forward_task<R>, J);
}

// VJP kernels: whole batch members per task, or every task on one member at a time.
template <class R>
void run_vjp(Job<R>* J, int k, size_t bytes) {
  const int64_t dim = int64_t(1) << k;
  J->acc_reals = 2 * (J->op == kOpDenseVjp ? dim * dim : dim);
  J->acc_offset = (bytes + 63) / 64 * 64;
  bytes = J->acc_offset + size_t(J->acc_reals) * sizeof(double);
  const int ntasks = tasks_for(J->batch << J->G.n, k, std::max<int64_t>(J->batch, J->G.groups));
  Scratch scratch(ntasks, bytes);
  J->scratch = &scratch;
  if (J->batch >= ntasks) {
    J->b_fixed = -1;
    J->b_per_task = (J->batch + ntasks - 1) / ntasks;
    J->chunk = J->G.groups;
    run_tasks(ntasks, &vjp_task<R>, J);
    return;
  }
  J->chunk = (J->G.groups + ntasks - 1) / ntasks;
  J->chunk += J->chunk & 1;
  std::vector<double> total(size_t(J->acc_reals));
  for (int64_t b = 0; b < J->batch; ++b) {
    J->b_fixed = b;
    run_tasks(ntasks, &vjp_task<R>, J);
    std::fill(total.begin(), total.end(), 0.0);
    for (int t = 0; t < ntasks; ++t) {
      const double* acc = reinterpret_cast<const double*>(scratch.at(t) + J->acc_offset);
      for (int64_t i = 0; i < J->acc_reals; ++i) total[size_t(i)] += acc[i];
    }
    store_ct(J->ct + b * J->acc_reals, total.data(), J->acc_reals);
  }
}

template <class R>
const char* run_job(int op, R* state, const R* x, int64_t batch, int n, const R* coef,
                    int64_t coef_stride, const int64_t* perm, R* ct, const int64_t* targets,
                    int k, const int64_t* controls, int nc) {
  if (batch < 0) return "qsim native: negative batch";
  if (n < 0 || n > kMaxQubits) return "qsim native: the state size must be 2**n with n <= 62";
  Job<R> J;
  J.op = op;
  J.isa = kernels_for<R>(n);
  if (const char* err = build_geometry(&J.G, n, J.isa->log_lanes, targets, k, controls, nc)) {
    return err;
  }
  if (op == kOpPermutation) {
    if (const char* err = check_perm(perm, k, J.perm)) return err;
  }
  if (batch == 0) return nullptr;
  J.state = state;
  J.x = x;
  J.coef = coef;
  J.coef_stride = coef_stride;
  J.batch = batch;
  J.state_reals = int64_t(2) << n;
  J.ct = ct;
  const size_t prep = (J.isa->prep_bytes(op, J.G) + 63) / 64 * 64;
  try {
    Scratch shared(1, coef_stride == 0 ? prep : 0);
    J.shared = nullptr;
    J.work_offset = 0;
    if (coef_stride == 0) {  // one preparation for every state
      J.isa->prepare(op, J.G, coef, J.perm, shared.at(0));
      J.shared = shared.at(0);
    } else {
      J.work_offset = prep;
    }
    const size_t bytes = J.work_offset + J.isa->work_bytes(op, J.G);
    if (op == kOpDenseVjp || op == kOpDiagonalVjp) {
      run_vjp(&J, k, bytes);
    } else {
      run_forward(&J, k, bytes);
    }
    return nullptr;
  } catch (const std::bad_alloc&) {
    return "qsim native: out of memory for kernel scratch";
  } catch (const std::system_error&) {
    return "qsim native: could not start worker threads";
  }
}

}  // namespace

template <class R>
const char* apply_dense(R* state, int64_t batch, int n, const R* u, int64_t u_stride,
                        const int64_t* targets, int k, const int64_t* controls, int nc) {
  return run_job<R>(kOpDense, state, nullptr, batch, n, u, 2 * u_stride, nullptr, nullptr,
                    targets, k, controls, nc);
}

template <class R>
const char* apply_diagonal(R* state, int64_t batch, int n, const R* d, int64_t d_stride,
                           const int64_t* targets, int k) {
  return run_job<R>(kOpDiagonal, state, nullptr, batch, n, d, 2 * d_stride, nullptr, nullptr,
                    targets, k, nullptr, 0);
}

template <class R>
const char* apply_permutation(R* state, int64_t batch, int n, const int64_t* perm,
                              const int64_t* targets, int k, const int64_t* controls, int nc) {
  return run_job<R>(kOpPermutation, state, nullptr, batch, n, nullptr, 0, perm, nullptr,
                    targets, k, controls, nc);
}

template <class R>
const char* dense_vjp(R* gct, const R* x, int64_t batch, int n, const R* u, int64_t u_stride,
                      R* ct_u, const int64_t* targets, int k, const int64_t* controls, int nc) {
  return run_job<R>(kOpDenseVjp, gct, x, batch, n, u, 2 * u_stride, nullptr, ct_u, targets,
                    k, controls, nc);
}

template <class R>
const char* diagonal_vjp(R* gct, const R* x, int64_t batch, int n, const R* d, int64_t d_stride,
                         R* ct_d, const int64_t* targets, int k) {
  return run_job<R>(kOpDiagonalVjp, gct, x, batch, n, d, 2 * d_stride, nullptr, ct_d,
                    targets, k, nullptr, 0);
}

#define QSIM_INSTANTIATE(R)                                                                     \
  template const char* apply_dense<R>(R*, int64_t, int, const R*, int64_t, const int64_t*, int, \
                                      const int64_t*, int);                                     \
  template const char* apply_diagonal<R>(R*, int64_t, int, const R*, int64_t, const int64_t*,   \
                                         int);                                                  \
  template const char* apply_permutation<R>(R*, int64_t, int, const int64_t*, const int64_t*,   \
                                            int, const int64_t*, int);                          \
  template const char* dense_vjp<R>(R*, const R*, int64_t, int, const R*, int64_t, R*,          \
                                    const int64_t*, int, const int64_t*, int);                  \
  template const char* diagonal_vjp<R>(R*, const R*, int64_t, int, const R*, int64_t, R*,       \
                                       const int64_t*, int);
QSIM_INSTANTIATE(float)
QSIM_INSTANTIATE(double)
#undef QSIM_INSTANTIATE

}  // namespace qsim_native
