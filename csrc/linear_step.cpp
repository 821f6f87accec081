// Linear steps (kind 5, program.h): a whole network of CNOTs and SWAPs in one pass.
//
// A CNOT chain across n wires is n - 1 permutation passes over the state, each
// as dear as a one-qubit gate where the state sits in cache. Every product of
// CNOTs and SWAPs maps basis index i to an index linear in i over GF(2), so the
// network is out[i] = in[F(i)] with F(i) the XOR of F's image of each set bit
// of i. F is looked up a byte of the index at a time (256-entry tables), and
// the state is gathered from a copy of itself: two passes, whatever the length
// of the network.
#include <cstring>
#include <memory>
#include <mutex>

#include "program.h"

namespace qsim_native {
namespace {

// Bit position of wire w in an n-qubit index (wire 0 is the most significant).
inline int64_t wire_bit(int64_t w, int n) { return int64_t(1) << (n - 1 - w); }

// The images of the n index bits under the step's map (forward: out[i] = in[F(i)]).
void images(const Gate& g, int n, uint64_t* img) {
  for (int p = 0; p < n; ++p) img[p] = uint64_t(1) << p;
  for (int64_t j = 0; j < g.k; ++j) {
    uint64_t v = 0;
    for (int64_t i = 0; i < g.k; ++i) {
      if ((g.perm[j] >> (g.k - 1 - i)) & 1) v |= uint64_t(wire_bit(g.targets[i], n));
    }
    img[n - 1 - g.targets[j]] = v;
  }
}

// The inverse of the linear map with bit images img (invertible: checked by the
// parser), by Gauss-Jordan elimination over GF(2): returns false if singular.
bool invert(const uint64_t* img, int n, uint64_t* inv) {
  // Rows of [A | I] with A's columns the images: row r holds bit r of every image.
  uint64_t a[64], b[64];
  for (int r = 0; r < n; ++r) {
    a[r] = 0;
    for (int c = 0; c < n; ++c) a[r] |= ((img[c] >> r) & 1) << c;
    b[r] = uint64_t(1) << r;
  }
  for (int c = 0; c < n; ++c) {
    int piv = -1;
    for (int r = c; r < n; ++r) {
      if ((a[r] >> c) & 1) {
        piv = r;
        break;
      }
    }
    if (piv < 0) return false;
    std::swap(a[c], a[piv]);
    std::swap(b[c], b[piv]);
    for (int r = 0; r < n; ++r) {
      if (r != c && ((a[r] >> c) & 1)) {
        a[r] ^= a[c];
        b[r] ^= b[c];
      }
    }
  }
  for (int c = 0; c < n; ++c) {  // column c of the inverse: bit r of row r
    inv[c] = 0;
    for (int r = 0; r < n; ++r) inv[c] |= ((b[r] >> c) & 1) << r;
  }
  return true;
}

}  // namespace

bool linear_invertible(const Gate& g) {
  uint64_t img[64], inv[64];
  const int k = int(g.k);
  for (int p = 0; p < k; ++p) img[p] = uint64_t(g.perm[k - 1 - p]);  // index bit p = position k-1-p
  return invert(img, k, inv);
}

const char* check_linear(const Gate& g, int n) {
  for (int64_t i = 0; i < g.k; ++i) {
    if (g.targets[i] < 0 || g.targets[i] >= n) return "qsim native: wire out of range";
  }
  return nullptr;
}

LinearMap linear_map(const Gate& g, int n, bool inverse) {
  uint64_t img[64], inv[64];
  images(g, n, img);
  if (inverse) {
    invert(img, n, inv);
    std::memcpy(img, inv, sizeof(img));
  }
  LinearMap m;
  m.n = n;
  m.chunks = (n + 7) / 8;
  m.table.assign(size_t(m.chunks) * 256, 0);
  for (int t = 0; t < m.chunks; ++t) {
    for (int v = 0; v < 256; ++v) {
      uint64_t f = 0;
      for (int b = 0; b < 8 && 8 * t + b < n; ++b) {
        if ((v >> b) & 1) f ^= img[8 * t + b];
      }
      m.table[size_t(t) * 256 + size_t(v)] = int64_t(f);
    }
  }
  return m;
}

// The most maps one program keeps (2 KiB per byte of the index each: at most 4 MiB
// a program); further ones are built on every call, as all were before.
constexpr size_t kMaxProgramMaps = 256;

std::shared_ptr<const LinearMap> program_linear_map(const Program& p, const Step& s, int n,
                                                    bool inverse) {
  const int64_t key = ((int64_t(&s - p.steps.data()) * 64 + n) << 1) | int64_t(inverse);
  {
    std::lock_guard<std::mutex> lk(p.linear_mu);
    for (const auto& [k, m] : p.linear_maps) {
      if (k == key) return m;
    }
  }
  auto m = std::make_shared<const LinearMap>(linear_map(s, n, inverse));
  std::lock_guard<std::mutex> lk(p.linear_mu);
  if (p.linear_maps.size() < kMaxProgramMaps) p.linear_maps.emplace_back(key, m);
  return m;
}

template <class R>
void linear_gather(const int64_t* table, int n, const R* in, R* out, int64_t a0, int64_t a1) {
  const int chunks = (n + 7) / 8;
  const int64_t lo = a1 - a0 < 256 ? a1 - a0 : 256;
  for (int64_t hi = a0; hi < a1; hi += 256) {
    int64_t base = 0;
    for (int t = 1; t < chunks; ++t) base ^= table[t * 256 + ((hi >> (8 * t)) & 255)];
    R* o = out + 2 * hi;
    for (int64_t l = 0; l < lo; ++l) {  // one move of the whole amplitude
      std::memcpy(o + 2 * l, in + 2 * (base ^ table[l]), 2 * sizeof(R));
    }
  }
}

template <class R>
void apply_linear(const LinearMap& m, R* state, R* work) {
  const int64_t dim = int64_t(1) << m.n;
  std::memcpy(work, state, size_t(dim) * 2 * sizeof(R));
  layer_kernels_for<R>(m.n)->linear(m.table.data(), m.n, work, state, 0, dim);
}

namespace {

// A linear step on one large state, over the threads: the copy, then the gather,
// each in slices of the state.
template <class R>
struct LinearCall {
  const IsaKernels<R>* isa;
  const LinearMap* m;
  const R* from;
  R* to;
  int64_t slice;  // amplitudes per task
  bool copy;      // this phase copies from -> to (else gathers through the map)
};

template <class R>
void linear_task(void* ctx, int t) {
  const LinearCall<R>& c = *static_cast<const LinearCall<R>*>(ctx);
  const int64_t a0 = int64_t(t) * c.slice, a1 = a0 + c.slice;
  if (c.copy) {
    std::memcpy(c.to + 2 * a0, c.from + 2 * a0, size_t(c.slice) * 2 * sizeof(R));
  } else {
    c.isa->linear(c.m->table.data(), c.m->n, c.from, c.to, a0, a1);
  }
}

// Tasks for a state of 2^n amplitudes (amp_bytes each) over at most ntasks: a power
// of two, whole slices of 256 amplitudes. One while the state and the buffer it
// gathers into fit one core's L2 (slices would move them between the cores'
// caches: slower than one thread), or below kStreamQubits where L2 is unknown.
// AMD EPYC (512 KiB L2), HEA n=16 value-and-grad, 6 rounds alternated: median
// 3.8-4.2 ms one thread, 3.2-3.9 ms two.
int linear_tasks(int n, int amp_bytes, int ntasks) {
  const int64_t l2 = l2_cache_bytes();
  if (l2 > 0 ? 2 * (int64_t(amp_bytes) << n) < l2 : n < kStreamQubits) return 1;
  const int64_t dim = int64_t(1) << n;
  int tasks = 1;
  while (2 * tasks <= ntasks && dim / (2 * tasks) >= 256) tasks *= 2;
  return tasks;
}

}  // namespace

template <class R>
void apply_linear_threaded(const LinearMap& m, R* state, R* work, int ntasks) {
  const int tasks = linear_tasks(m.n, int(2 * sizeof(R)), ntasks);
  if (tasks <= 1) {
    apply_linear(m, state, work);
    return;
  }
  LinearCall<R> c{layer_kernels_for<R>(m.n), &m, state, work, (int64_t(1) << m.n) / tasks, true};
  run_tasks(tasks, &linear_task<R>, &c);
  c = {c.isa, &m, work, state, c.slice, false};
  run_tasks(tasks, &linear_task<R>, &c);
}

template <class R>
void gather_linear_threaded(const LinearMap& m, const R* in, R* out, int ntasks) {
  const int tasks = linear_tasks(m.n, int(2 * sizeof(R)), ntasks);
  const int64_t dim = int64_t(1) << m.n;
  if (tasks <= 1) {
    layer_kernels_for<R>(m.n)->linear(m.table.data(), m.n, in, out, 0, dim);
    return;
  }
  LinearCall<R> c{layer_kernels_for<R>(m.n), &m, in, out, dim / tasks, false};
  run_tasks(tasks, &linear_task<R>, &c);
}

template void linear_gather<float>(const int64_t*, int, const float*, float*, int64_t, int64_t);
template void linear_gather<double>(const int64_t*, int, const double*, double*, int64_t, int64_t);
template void apply_linear_threaded<float>(const LinearMap&, float*, float*, int);
template void apply_linear_threaded<double>(const LinearMap&, double*, double*, int);
template void gather_linear_threaded<float>(const LinearMap&, const float*, float*, int);
template void gather_linear_threaded<double>(const LinearMap&, const double*, double*, int);
template void apply_linear<float>(const LinearMap&, float*, float*);
template void apply_linear<double>(const LinearMap&, double*, double*);

}  // namespace qsim_native
