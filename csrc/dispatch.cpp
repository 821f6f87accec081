// Argument checks, gate geometry, run-time choice of instruction set, and the
// split of the work over threads (see qsim_native.h).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define QSIM_HAVE_GETPID 1
#endif

#include "qsim_native.h"

namespace qsim_native {
namespace {

// ------------------------------------------------------------ threads ------

// Fewer amplitudes than this (times a cost factor for big matrices) run on the
// calling thread: waking workers costs more than the work.
constexpr int64_t kParallelMinWork = int64_t(1) << 16;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until done() or for about kSpinMicros; true if done() became true. Waking a
// sleeping thread costs tens of microseconds, so workers and the caller spin a
// little first (the next gate usually follows at once), but not long: with few
// cores a spinning thread takes a core from XLA's own work between calls.
constexpr int kSpinMicros = 100;

template <class F>
bool spin_until(F&& done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() > end) return done();
  }
}

int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end != v && x > 0 && x < 4096) ? int(x) : 0;
}

int default_threads() {
  if (int n = env_int("QSIM_NUM_THREADS")) return n;
  if (int n = env_int("OMP_NUM_THREADS")) return n;
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? int(n) : 1;
}

using TaskFn = void (*)(void* ctx, int task);

// A fixed set of workers; the caller runs tasks too. One parallel region at a
// time: a second concurrent caller runs its tasks itself. Tasks are claimed
// under the mutex (they are few and coarse), so a late worker can never pick
// up a task of the wrong region.
class ThreadPool {
 public:
  explicit ThreadPool(int size) : size_(size) {
    for (int i = 1; i < size; ++i) std::thread([this] { loop(); }).detach();
  }

  int size() const { return size_; }

  void run(int ntasks, TaskFn fn, void* ctx) {
    if (ntasks <= 1 || size_ <= 1 || !busy_.try_lock()) {
      for (int t = 0; t < ntasks; ++t) fn(ctx, t);
      return;
    }
    std::unique_lock<std::mutex> lk(mu_);
    fn_ = fn;
    ctx_ = ctx;
    ntasks_ = ntasks;
    next_ = 0;
    pending_ = ntasks;
    pending_seen_.store(ntasks, std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_release);
    lk.unlock();
    work_cv_.notify_all();
    lk.lock();
    claim(lk);
    lk.unlock();
    spin_until([this] { return pending_seen_.load(std::memory_order_acquire) == 0; });
    lk.lock();
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    lk.unlock();
    busy_.unlock();
  }

 private:
  // Runs tasks of the current region while any are left; `lk` is held on entry and exit.
  void claim(std::unique_lock<std::mutex>& lk) {
    while (next_ < ntasks_) {
      const TaskFn fn = fn_;
      void* const ctx = ctx_;
      const int t = next_++;
      lk.unlock();
      fn(ctx, t);
      lk.lock();
      if (--pending_ == 0) {
        pending_seen_.store(0, std::memory_order_release);
        done_cv_.notify_all();
      }
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return gen_.load(std::memory_order_acquire) != seen; });
      std::unique_lock<std::mutex> lk(mu_);
      work_cv_.wait(lk, [&] { return gen_.load(std::memory_order_relaxed) != seen; });
      seen = gen_.load(std::memory_order_relaxed);
      claim(lk);
    }
  }

  const int size_;
  std::mutex busy_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> pending_seen_{0};
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int ntasks_ = 0, next_ = 0, pending_ = 0;
};

// The process-wide pool, created on first use (and again in a forked child,
// which inherits no threads). Never destroyed: workers just wait at exit.
ThreadPool& pool() {
  static std::mutex mu;
  static ThreadPool* p = nullptr;
  static long owner = -1;
  std::lock_guard<std::mutex> lk(mu);
#if defined(QSIM_HAVE_GETPID)
  const long pid = long(getpid());
#else
  const long pid = 0;
#endif
  if (p == nullptr || owner != pid) {
    p = new ThreadPool(default_threads());
    owner = pid;
  }
  return *p;
}

// ----------------------------------------------------- instruction sets ------

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

template <class R>
const IsaKernels<R>* kernels_for(int n);

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

// ------------------------------------------------------------- geometry ------

// Checks the wires and fills G for vectors of 2^L amplitudes. Returns an error or nullptr.
const char* build_geometry(Geometry* G, int n, int L, const int64_t* targets, int k,
                           const int64_t* controls, int nc) {
  if (n < 0 || n > kMaxQubits) return "qsim native: the state size must be 2**n with n <= 62";
  if (k < 1 || k > kMaxTargets) return "qsim native: 1 to 5 target wires are supported";
  if (nc < 0 || k + nc > n) return "qsim native: more wires than qubits";
  std::memset(G, 0, sizeof(Geometry));
  uint64_t used = 0;
  for (int i = 0; i < k + nc; ++i) {
    const int64_t w = i < k ? targets[i] : controls[i - k];
    if (w < 0 || w >= n) return "qsim native: wire out of range";
    if (used & (uint64_t(1) << w)) return "qsim native: repeated wire";
    used |= uint64_t(1) << w;
  }
  G->n = n;
  G->L = L;
  G->k = k;
  for (int q = 0; q < k; ++q) {
    const int p = n - 1 - int(targets[q]);
    G->tpos[q] = p;
    if (p >= L) {
      G->hrank[q] = G->kh++;
      G->fixed_pos[G->nfixed++] = p;
    } else {
      G->hrank[q] = -1;
      G->lane_tmask |= 1 << p;
    }
  }
  for (int c = 0; c < nc; ++c) {
    const int p = n - 1 - int(controls[c]);
    if (p >= L) {
      G->ctrl_hi |= int64_t(1) << p;
      G->fixed_pos[G->nfixed++] = p;
    } else {
      G->lane_ctrl |= 1 << p;
    }
  }
  std::sort(G->fixed_pos, G->fixed_pos + G->nfixed);
  G->nt = 0;
  for (int t = 0; t < (1 << L); ++t) {  // every subset of the low-target lane bits
    if ((t & ~G->lane_tmask) == 0) G->t_xor[G->nt++] = t;
  }
  G->lane_mode = (G->lane_tmask | G->lane_ctrl) != 0;
  G->groups = int64_t(1) << (n - L - G->nfixed);
  G->run = G->nfixed > 0 ? int64_t(1) << (G->fixed_pos[0] - L) : G->groups;
  for (int h = 0; h < (1 << G->kh); ++h) {
    int64_t off = 0;
    for (int q = 0; q < k; ++q) {
      if (G->hrank[q] >= 0 && ((h >> (G->kh - 1 - G->hrank[q])) & 1)) off |= int64_t(1) << G->tpos[q];
    }
    G->reg_off[h] = off;
  }
  return nullptr;
}

// ---------------------------------------------------------------- jobs ------

enum class Kind { kDense, kDiagonal, kPermutation, kDenseVjp, kDiagonalVjp };

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
  Kind kind;
  const IsaKernels<R>* isa;
  Geometry G;
  R* state;            // batch x 2^n (the cotangent for VJPs)
  const R* x;          // VJPs: the forward input
  const R* coef;       // U or d (interleaved)
  int64_t coef_stride; // reals between batch members' coefficients (0: shared)
  const int* perm;
  int64_t batch;
  int64_t state_reals;  // 2 * 2^n
  int64_t chunk;        // flat (batch, group) items per task
  Scratch* scratch;
  // VJPs
  size_t acc_offset;    // where a task's double accumulators sit in its scratch
  int64_t acc_reals;    // 2 * (matrix size)
  int64_t b_fixed;      // >= 0: tasks split the groups of this one batch member
  int64_t b_per_task;   // otherwise: batch members per task
  R* ct;                // batch x matrix size output
};

template <class R>
void run_range(const Job<R>& J, void* scratch, int64_t b, int64_t g0, int64_t g1, double* acc) {
  R* s = J.state + b * J.state_reals;
  const R* c = J.coef + b * J.coef_stride;
  switch (J.kind) {
    case Kind::kDense: J.isa->dense(J.G, s, c, scratch, g0, g1); break;
    case Kind::kDiagonal: J.isa->diagonal(J.G, s, c, scratch, g0, g1); break;
    case Kind::kPermutation: J.isa->permutation(J.G, s, J.perm, scratch, g0, g1); break;
    case Kind::kDenseVjp:
      J.isa->dense_vjp(J.G, s, J.x + b * J.state_reals, c, scratch, acc, g0, g1);
      break;
    case Kind::kDiagonalVjp:
      J.isa->diagonal_vjp(J.G, s, J.x + b * J.state_reals, c, scratch, acc, g0, g1);
      break;
  }
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
  const int64_t want = std::min<int64_t>(pool().size(), work / kParallelMinWork);
  return int(std::max<int64_t>(1, std::min(want, max_tasks)));
}

template <class R>
const char* run_job(Kind kind, R* state, const R* x, int64_t batch, int n, const R* coef,
                    int64_t coef_stride, const int* perm, R* ct, const int64_t* targets, int k,
                    const int64_t* controls, int nc) {
  if (batch < 0) return "qsim native: negative batch";
  if (n < 0 || n > kMaxQubits) return "qsim native: the state size must be 2**n with n <= 62";
  Job<R> J;
  J.kind = kind;
  J.isa = kernels_for<R>(n);
  if (const char* err = build_geometry(&J.G, n, J.isa->log_lanes, targets, k, controls, nc)) {
    return err;
  }
  if (batch == 0) return nullptr;
  J.state = state;
  J.x = x;
  J.coef = coef;
  J.coef_stride = coef_stride;
  J.perm = perm;
  J.batch = batch;
  J.state_reals = int64_t(2) << n;
  J.ct = ct;
  const int64_t amps = batch << n;
  size_t bytes = J.isa->scratch_bytes(J.G);
  try {
    if (kind == Kind::kDense || kind == Kind::kDiagonal || kind == Kind::kPermutation) {
      const int64_t items = batch * J.G.groups;
      const int ntasks = tasks_for(amps, k, items);
      J.chunk = (items + ntasks - 1) / ntasks;
      J.chunk += J.chunk & 1;  // even: pairs of groups stay whole
      Scratch scratch(ntasks, bytes);
      J.scratch = &scratch;
      pool().run(ntasks, &forward_task<R>, &J);
      return nullptr;
    }
    const int64_t dim = int64_t(1) << k;
    J.acc_reals = 2 * (kind == Kind::kDenseVjp ? dim * dim : dim);
    J.acc_offset = (bytes + 63) / 64 * 64;
    bytes = J.acc_offset + size_t(J.acc_reals) * sizeof(double);
    const int ntasks = tasks_for(amps, k, std::max<int64_t>(batch, J.G.groups));
    if (batch >= ntasks) {  // whole batch members per task
      J.b_fixed = -1;
      J.b_per_task = (batch + ntasks - 1) / ntasks;
      J.chunk = J.G.groups;
      Scratch scratch(ntasks, bytes);
      J.scratch = &scratch;
      pool().run(ntasks, &vjp_task<R>, &J);
      return nullptr;
    }
    Scratch scratch(ntasks, bytes);
    J.scratch = &scratch;
    J.chunk = (J.G.groups + ntasks - 1) / ntasks;
    J.chunk += J.chunk & 1;
    std::vector<double> total(size_t(J.acc_reals));
    for (int64_t b = 0; b < batch; ++b) {
      J.b_fixed = b;
      pool().run(ntasks, &vjp_task<R>, &J);
      std::fill(total.begin(), total.end(), 0.0);
      for (int t = 0; t < ntasks; ++t) {
        const double* acc = reinterpret_cast<const double*>(scratch.at(t) + J.acc_offset);
        for (int64_t i = 0; i < J.acc_reals; ++i) total[size_t(i)] += acc[i];
      }
      store_ct(ct + b * J.acc_reals, total.data(), J.acc_reals);
    }
    return nullptr;
  } catch (const std::bad_alloc&) {
    return "qsim native: out of memory for kernel scratch";
  } catch (const std::system_error&) {
    return "qsim native: could not start worker threads";
  }
}

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

}  // namespace

// ------------------------------------------------------------- the API ------

template <class R>
const char* apply_dense(R* state, int64_t batch, int n, const R* u, int64_t u_stride,
                        const int64_t* targets, int k, const int64_t* controls, int nc) {
  return run_job<R>(Kind::kDense, state, nullptr, batch, n, u, 2 * u_stride, nullptr, nullptr,
                    targets, k, controls, nc);
}

template <class R>
const char* apply_diagonal(R* state, int64_t batch, int n, const R* d, int64_t d_stride,
                           const int64_t* targets, int k) {
  return run_job<R>(Kind::kDiagonal, state, nullptr, batch, n, d, 2 * d_stride, nullptr, nullptr,
                    targets, k, nullptr, 0);
}

template <class R>
const char* apply_permutation(R* state, int64_t batch, int n, const int64_t* perm,
                              const int64_t* targets, int k, const int64_t* controls, int nc) {
  if (k < 1 || k > kMaxTargets) return "qsim native: 1 to 5 target wires are supported";
  int p[1 << kMaxTargets];
  if (const char* err = check_perm(perm, k, p)) return err;
  return run_job<R>(Kind::kPermutation, state, nullptr, batch, n, nullptr, 0, p, nullptr,
                    targets, k, controls, nc);
}

template <class R>
const char* dense_vjp(R* gct, const R* x, int64_t batch, int n, const R* u, int64_t u_stride,
                      R* ct_u, const int64_t* targets, int k, const int64_t* controls, int nc) {
  return run_job<R>(Kind::kDenseVjp, gct, x, batch, n, u, 2 * u_stride, nullptr, ct_u, targets,
                    k, controls, nc);
}

template <class R>
const char* diagonal_vjp(R* gct, const R* x, int64_t batch, int n, const R* d, int64_t d_stride,
                         R* ct_d, const int64_t* targets, int k) {
  return run_job<R>(Kind::kDiagonalVjp, gct, x, batch, n, d, 2 * d_stride, nullptr, ct_d,
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

const char* isa_name() { return use_avx2() ? "avx2+fma" : "scalar"; }

int num_threads() { return pool().size(); }

}  // namespace qsim_native
