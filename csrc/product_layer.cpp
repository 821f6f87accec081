// Product layers (program.h): a layer on every wire whose members all have a zero
// second column maps any state x to x[0] times the product of the members' first
// columns. The executor makes one when a state starts in |0...0>: it puts the
// projector |0><0| on every wire first, which merges into each wire's first run of
// one-qubit gates (U P has U's first column and a zero second one).
//
// Such a layer costs one write of the state forwards, not its passes of 2x2
// products; its sweep costs one read of x and g (the contractions of
// kernels_product.inc) and work on two vectors of about 2^(n/2), not its passes
// of un-applying, products and sums. The state is held as an outer product
// phi (high bits) x plo (low l bits); the factor of bit q is f[q] = (u00, u10).
#include <algorithm>
#include <array>
#include <complex>
#include <vector>

#include "program.h"

namespace qsim_native {
namespace {

using Cd = std::complex<double>;
using Pair = std::array<Cd, 2>;  // a bit's factor, or a contraction's two entries

// a b without std::complex's checks for infinities (a library call per product).
inline Cd mul(Cd a, Cd b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

// The rows hold at most 2^kProductRowBits amplitudes, so that the sweep's row
// accumulator (B) stays in L1.
constexpr int kProductRowBits = 11;

// Low bits of the outer product for n qubits and vectors of 2^L amplitudes: rows of
// about two thirds of the bits, at least a vector, at most kProductRowBits.
int low_bits(int n, int L) { return std::min(n, std::max(L, std::min(kProductRowBits, n - n / 3))); }

// v[j] = prod over q < m of F[q][bit q of j].
void kron(const Pair* F, int m, Cd* v) {
  v[0] = 1.0;
  for (int q = 0; q < m; ++q) {
    const int64_t half = int64_t(1) << q;
    for (int64_t j = 0; j < half; ++j) {
      v[j + half] = mul(v[j], F[q][1]);
      v[j] = mul(v[j], F[q][0]);
    }
  }
}

// Complex scratch for the contractions below, kept per thread between calls (a
// state's sweep would otherwise allocate a few dozen small vectors).
struct CdScratch {
  std::vector<Cd> buf;
  size_t used = 0;
  Cd* take(size_t count) {
    Cd* p = buf.data() + used;
    used += count;
    return p;
  }
};

// Complex numbers leave_one_out(m) takes from the scratch.
size_t loo_need(int m) {
  if (m <= 1) return 0;
  const int m1 = m / 2, m2 = m - m1;
  return 2 * ((size_t(1) << m1) + (size_t(1) << m2)) + std::max(loo_need(m1), loo_need(m2));
}

// out[q][a] = sum over the indices j of V (2^m) with bit q = a of V[j] times every
// factor but q's: the contraction of V with all factors but one, for each one. Halves
// the bits and recurses, so the work is about 2 2^m, not m 2^m.
void leave_one_out(const Cd* V, const Pair* F, int m, Pair* out, CdScratch* s) {
  if (m == 0) return;
  if (m == 1) {
    out[0] = {V[0], V[1]};
    return;
  }
  const int m1 = m / 2, m2 = m - m1;
  const int64_t n1 = int64_t(1) << m1, n2 = int64_t(1) << m2;
  const size_t mark = s->used;
  Cd* lo = s->take(size_t(n1));
  Cd* hi = s->take(size_t(n2));
  Cd* vlo = s->take(size_t(n1));
  Cd* vhi = s->take(size_t(n2));
  kron(F, m1, lo);
  kron(F + m1, m2, hi);
  std::fill(vlo, vlo + n1, Cd(0.0));
  for (int64_t t = 0; t < n2; ++t) {
    Cd acc = 0.0;
    for (int64_t i = 0; i < n1; ++i) {
      vlo[i] += mul(V[t * n1 + i], hi[t]);
      acc += mul(V[t * n1 + i], lo[i]);
    }
    vhi[t] = acc;
  }
  leave_one_out(vlo, F, m1, out, s);
  leave_one_out(vhi, F + m1, m2, out + m1, s);
  s->used = mark;
}

void factors_by_bit(int n, const double* f, Pair* F) {
  for (int q = 0; q < n; ++q) {
    F[q][0] = Cd(f[4 * q], f[4 * q + 1]);
    F[q][1] = Cd(f[4 * q + 2], f[4 * q + 3]);
  }
}

// A thread's buffers for one state's product layer, kept between calls (only grown):
// the factors, the outer product's two vectors (in R, phi scaled), the sweep's
// contractions and the scratch of leave_one_out.
template <class R>
struct Work {
  int n = 0, l = 0, h = 0;
  std::vector<Pair> F, out;
  std::vector<Cd> lo, hi, Ac, Bc;  // Ac, Bc: the sweep's A and B summed, in double
  std::vector<R> plo, phi, B;
  std::vector<double> A, x0s;
  CdScratch scratch;

  void prepare(int n_, int L, const double* f, Cd scale) {
    n = n_;
    l = low_bits(n, L);
    h = n - l;
    F.resize(size_t(n));
    out.resize(size_t(n));
    factors_by_bit(n, f, F.data());
    lo.resize(size_t(1) << l);
    hi.resize(size_t(1) << h);
    kron(F.data(), l, lo.data());
    kron(F.data() + l, h, hi.data());
    plo.resize(2 * lo.size());
    phi.resize(2 * hi.size());
    for (size_t j = 0; j < lo.size(); ++j) {
      plo[2 * j] = R(lo[j].real());
      plo[2 * j + 1] = R(lo[j].imag());
    }
    for (size_t j = 0; j < hi.size(); ++j) {
      const Cd v = mul(hi[j], scale);
      phi[2 * j] = R(v.real());
      phi[2 * j + 1] = R(v.imag());
    }
  }
};

template <class R>
Work<R>& work() {
  thread_local Work<R> w;
  return w;
}

// Tasks over the rows: one for a state in cache, up to four per thread for one that
// streams from memory.
int row_tasks(int n, int64_t rows, bool threaded) {
  if (!threaded || n < kStreamQubits) return 1;
  return int(std::min<int64_t>(rows, 4 * int64_t(num_threads())));
}

template <class R>
struct RowsCall {
  const IsaKernels<R>* isa;
  Work<R>* w;
  R* x;                // the forward: the state built
  const R* g;          // the sweep: x and g read
  int64_t per_task;
};

template <class R>
void build_task(void* ctx, int t) {
  const RowsCall<R>& c = *static_cast<const RowsCall<R>*>(ctx);
  const Work<R>& w = *c.w;
  const int64_t h0 = t * c.per_task, h1 = std::min(int64_t(1) << w.h, h0 + c.per_task);
  c.isa->product(w.l, w.plo.data(), w.phi.data(), c.x, h0, h1);
}

template <class R>
void sweep_task(void* ctx, int t) {
  const RowsCall<R>& c = *static_cast<const RowsCall<R>*>(ctx);
  Work<R>& w = *c.w;
  const int64_t h0 = t * c.per_task, h1 = std::min(int64_t(1) << w.h, h0 + c.per_task);
  c.isa->product_vjp(w.l, w.plo.data(), w.phi.data(), c.x, c.g, h0, h1, w.A.data(),
                     w.B.data() + (int64_t(2) << w.l) * t, w.x0s.data() + 2 * t);
}

// Splits the rows into tasks and runs fn over them; returns the number of tasks.
template <class R>
int run_rows(RowsCall<R>* c, bool threaded, TaskFn fn, bool sweep) {
  Work<R>& w = *c->w;
  const int64_t rows = int64_t(1) << w.h;
  const int want = row_tasks(w.n, rows, threaded);
  c->per_task = (rows + want - 1) / want;
  const int ntasks = int((rows + c->per_task - 1) / c->per_task);
  if (sweep) {
    w.A.resize(size_t(2 * rows));
    w.B.assign(size_t(ntasks) * (size_t(2) << w.l), R(0));
    w.x0s.assign(size_t(2 * ntasks), 0.0);
  }
  if (ntasks == 1) {
    fn(c, 0);
  } else {
    run_tasks(ntasks, fn, c);
  }
  return ntasks;
}

}  // namespace

template <class R>
bool product_factors(const R* m, bool transposed, const int64_t* wires, size_t size, int n,
                     double* f) {
  if (int64_t(size) != n) return false;
  const int c1 = transposed ? 4 : 2, c2 = 6;  // the second column: u01, u11
  const int low = transposed ? 2 : 4;         // u10
  for (size_t k = 0; k < size; ++k) {
    const R* u = m + 8 * k;
    if (u[c1] != R(0) || u[c1 + 1] != R(0) || u[c2] != R(0) || u[c2 + 1] != R(0)) return false;
    const int64_t q = n - 1 - wires[k];
    f[4 * q] = double(u[0]);
    f[4 * q + 1] = double(u[1]);
    f[4 * q + 2] = double(u[low]);
    f[4 * q + 3] = double(u[low + 1]);
  }
  return true;
}

template <class R>
void product_apply(const IsaKernels<R>* isa, int n, const double* f, R* state, bool threaded) {
  Work<R>& w = work<R>();
  w.prepare(n, isa->log_lanes, f, Cd(state[0], state[1]));
  RowsCall<R> c{isa, &w, state, nullptr, 0};
  run_rows(&c, threaded, &build_task<R>, false);
}

template <class R>
void product_sweep(const IsaKernels<R>* isa, int n, const double* f, R* x, R* g, double* v,
                   bool threaded) {
  Work<R>& w = work<R>();
  w.prepare(n, isa->log_lanes, f, 1.0);
  RowsCall<R> c{isa, &w, x, g, 0};
  const int ntasks = run_rows(&c, threaded, &sweep_task<R>, true);
  const int64_t rows = int64_t(1) << w.h, row = int64_t(2) << w.l;
  Cd x0 = 0.0;
  w.Bc.assign(size_t(1) << w.l, 0.0);
  for (int t = 0; t < ntasks; ++t) {
    x0 += Cd(w.x0s[size_t(2 * t)], w.x0s[size_t(2 * t + 1)]);
    const R* b = w.B.data() + t * row;
    for (size_t j = 0; j < w.Bc.size(); ++j) w.Bc[j] += Cd(b[2 * j], b[2 * j + 1]);
  }
  w.Ac.resize(size_t(rows));
  for (int64_t hh = 0; hh < rows; ++hh) w.Ac[size_t(hh)] = Cd(w.A[size_t(2 * hh)], w.A[size_t(2 * hh + 1)]);
  w.scratch.buf.resize(std::max(w.scratch.buf.size(), std::max(loo_need(w.l), loo_need(w.h))));
  w.scratch.used = 0;
  leave_one_out(w.Bc.data(), w.F.data(), w.l, w.out.data(), &w.scratch);
  leave_one_out(w.Ac.data(), w.F.data() + w.l, w.h, w.out.data() + w.l, &w.scratch);
  // The input was x0 |0...0> and its cotangent is s |0...0>, s the full contraction.
  const Cd s = mul(w.out[0][0], w.F[0][0]) + mul(w.out[0][1], w.F[0][1]);
  for (int q = 0; q < n; ++q) {
    for (size_t a = 0; a < 2; ++a) {
      const Cd u = mul(x0, w.out[size_t(q)][a]);
      v[4 * q + 2 * a] = u.real();
      v[4 * q + 2 * a + 1] = u.imag();
    }
  }
  const size_t reals = size_t(2) << n;
  std::fill(x, x + reals, R(0));
  std::fill(g, g + reals, R(0));
  x[0] = R(x0.real());
  x[1] = R(x0.imag());
  g[0] = R(s.real());
  g[1] = R(s.imag());
}

void product_sums(const double* v, const int64_t* wires, size_t size, int n, double* sums) {
  for (size_t k = 0; k < size; ++k) {
    const double* w = v + 4 * (n - 1 - wires[k]);
    double* o = sums + 8 * k;
    o[0] = w[0];
    o[1] = w[1];
    o[4] = w[2];
    o[5] = w[3];
    o[2] = o[3] = o[6] = o[7] = 0.0;
  }
}

template bool product_factors<float>(const float*, bool, const int64_t*, size_t, int, double*);
template bool product_factors<double>(const double*, bool, const int64_t*, size_t, int, double*);
template void product_apply<float>(const IsaKernels<float>*, int, const double*, float*, bool);
template void product_apply<double>(const IsaKernels<double>*, int, const double*, double*, bool);
template void product_sweep<float>(const IsaKernels<float>*, int, const double*, float*, float*,
                                   double*, bool);
template void product_sweep<double>(const IsaKernels<double>*, int, const double*, double*,
                                    double*, double*, bool);

}  // namespace qsim_native
