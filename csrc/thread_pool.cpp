// The worker threads: a fixed pool, created on first use, that runs the tasks
// of one parallel region at a time (see run_tasks in qsim_native.h).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

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

}  // namespace

void run_tasks(int ntasks, TaskFn fn, void* ctx) { pool().run(ntasks, fn, ctx); }

int num_threads() { return pool().size(); }

}  // namespace qsim_native
