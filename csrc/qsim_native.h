// qsim native CPU statevector kernels: the interface between the parts.
//
// A state is a flat array of 2^n complex amplitudes stored as interleaved
// (re, im) pairs of float or double; wire w is bit p = n-1-w of the basis
// index (wire 0 is the most significant bit). A k-qubit matrix U is 2^k x 2^k,
// row-major; its first target is the most significant bit of U's index.
//
// Units, one idea each:
//   jobs.cpp        the C++ API below: checks arguments and splits a gate's
//                   work into tasks for the thread pool;
//   geometry.cpp    where a gate's wires sit in the state (Geometry);
//   isa_select.cpp  the instruction set, chosen at run time;
//   thread_pool.cpp the worker threads;
//   isa_scalar.cpp  portable kernels (any CPU, any architecture);
//   isa_avx2.cpp    the same kernels on AVX2 + FMA vectors (x86-64 only,
//                   compiled with -mavx2 -mfma, only called when the CPU has them);
//   ffi_common.*, ffi.cpp, program_*.cpp, fused_block.cpp: the XLA FFI handlers
//                   (see ffi_common.h and program.h).
// This header is included by all of them: it holds plain data and declarations
// only (no inline functions), so that the AVX2 unit never shares code with the others.
#ifndef QSIM_NATIVE_H_
#define QSIM_NATIVE_H_

#include <cstddef>
#include <cstdint>

namespace qsim_native {

// Dense / diagonal / permutation on up to this many wires: the one definition
// (the kernels specialise on every count up to it; messages print it).
constexpr int kMaxTargets = 5;
constexpr int kMaxQubits = 62;       // positions must fit an int64 index

// Where a gate's wires sit in the state, for one vector width (2^L complex
// amplitudes per vector). Targets at bit positions >= L ("high") select whole
// vectors; targets at positions < L ("low") select lanes inside a vector.
// Work is split into "groups": one group is the 2^kh vectors that a gate mixes,
// found by inserting the high-target bits (0) and high-control bits (1) into
// the group index. Only build_geometry fills one, so every Geometry has
// 1 <= k <= kMaxTargets, kh <= k and nt = 2^(k - kh) <= 2^L: the kernels
// specialise on these counts without checking them again.
struct Geometry {
  int n;                      // qubits
  int L;                      // log2(complex lanes per vector)
  int k;                      // targets (U is 2^k x 2^k)
  int kh;                     // high targets
  int nt;                     // 2^(low targets): lane-xor patterns
  int lane_mode;              // 0: no low targets and no low controls; 1 otherwise
  int tpos[kMaxTargets];      // bit position of each target, in U order
  int hrank[kMaxTargets];     // rank among high targets (U order), -1 if low
  int lane_ctrl;              // lane bits that must be 1 (low controls)
  int lane_tmask;             // lane bits that are low targets
  int t_xor[1 << 2];          // lane-xor masks: every subset of lane_tmask (t_xor[0] = 0)
  int nfixed;                 // high targets + high controls
  int fixed_pos[kMaxQubits];  // their bit positions, ascending
  int64_t ctrl_hi;            // OR of 1 << p over high controls
  int64_t groups;             // groups per state
  int64_t run;                // consecutive groups whose vectors are consecutive
  int64_t reg_off[1 << kMaxTargets];  // amplitude offset of each high-target pattern h
};

// A layer: one-qubit gates on distinct wires. They commute, so they run in passes,
// each over tiles of 2^kLayerTileBits amplitudes that stay in L1 while every gate
// of the pass acts on them: one pass for the gates on the low bit positions (below
// the tile's bits; contiguous tiles), then passes of at most kLayerMaxRowBits gates
// on higher positions, whose tiles are 2^qh rows (those gates' bits) of 2^c
// contiguous amplitudes. A layer of 16 gates on 16 qubits is two passes over the
// state instead of 16 (kernels_layer.inc; build_layer in geometry.cpp).
// On a state that streams from memory (`streams`: from kStreamQubits, or where it
// fills one core's L2) the high passes' tiles are 2^kLayerHighTileBits amplitudes
// (in L2): rows of 32 complex64 instead of one cache line each, which the
// prefetchers follow (5-10% on the HEA step at n = 17-20; n = 16 on a 512 KiB L2,
// single-thread layer: forward 205 -> 187 us, sweep 648 -> 606 us).
// A state of at most kLayerWholeTileBytes is one tile: every gate of the layer in
// one pass (n = 11-12 in complex64, single-thread harness: apply 1.95-2.14 -> 1.73-1.88,
// sweep 6.6-7.0 -> 5.9-6.5 ns per gate per 16 amplitudes). Larger tiles than
// 2^kLayerTileBits are slower where they do not save a pass (n = 13-16); where they
// do, the low pass takes up to 2^kLayerWholeTileBits (geometry.cpp: low_tile_bits;
// n = 18: 11 + 7 instead of 10 + 7 + 1 gates, HEA step 7.9 -> 6.4-6.8 ms on the Xeon).
constexpr int kLayerTileBits = 10;
constexpr int kLayerHighTileBits = 12;
constexpr int64_t kLayerWholeTileBytes = int64_t(32) << 10;
constexpr int kLayerWholeTileBits = 12;  // complex64 at kLayerWholeTileBytes
// States from this many qubits no longer fit one core's L2: they stream (the
// UNFUSE_MAX_QUBITS + 1 in primitives.py).
constexpr int kStreamQubits = 17;
constexpr int kLayerMaxRowBits = 7;
// The most gates one pass holds: one per low bit position, or kLayerMaxRowBits.
constexpr int kLayerMaxPassGates = kLayerWholeTileBits > kLayerMaxRowBits ? kLayerWholeTileBits : kLayerMaxRowBits;
constexpr int kLayerMaxPasses = 1 + (kMaxQubits - kLayerTileBits + kLayerMaxRowBits - 1) /
                                        kLayerMaxRowBits;

struct LayerPass {
  int m;                                   // gates in the pass
  int gate[kMaxQubits];                    // each one's index in the layer (its coefficients, sums)
  int pos[kMaxQubits];                     // and bit position
  int rank[kMaxQubits];                    // qh > 0: and row bit
  int c, qh;                               // tiles: 2^qh rows of 2^c amplitudes
  int hi_pos[kLayerMaxRowBits];            // the row bits' positions, ascending
  int64_t tiles;                           // tiles per state
  int64_t row_off[1 << kLayerMaxRowBits];  // amplitude offset of each row in its tile
};

struct Layer {
  int n, m, passes;
  LayerPass pass[kLayerMaxPasses];
};

// One core's L2 cache in bytes, 0 where the system does not say (geometry.cpp).
int64_t l2_cache_bytes();

// Whether n-qubit states of amp_bytes per amplitude stream from memory (or L3):
// from kStreamQubits, or where one state fills one core's L2.
bool streams(int n, int amp_bytes);

// Splits the layer of the m one-qubit gates on `wires` into passes for n-qubit
// states of amp_bytes per amplitude; nullptr or a static message naming the bad argument.
const char* build_layer(Layer* ly, int n, const int64_t* wires, int m, int amp_bytes = 8);

// What a prepared gate does (IsaKernels::prepare, PreparedGate).
enum Op : int {
  kOpDense = 0,     // state <- U state (controlled: only where every control is 1)
  kOpDiagonal,      // state <- diag(d) state on the targets
  kOpPermutation,   // out[j] = in[perm[j]] on the target bits (controlled likewise)
  kOpDenseVjp,      // out[i, j] += sum over the other bits of state[i] x[j] (complex, no
                    // conjugation; out is 2 * 4^k doubles), then state <- U^T state
  kOpDiagonalVjp,   // out[j] += sum state[j] x[j] (out: 2 * 2^k doubles), then state <- d state
};

// One operation of the lanes runner (program_lanes.cpp), which runs W small
// states at once (W = the reals per vector), one per lane: a tile holds their
// 2^n amplitudes as rows of two vectors (re, then im, of every state), the
// coefficients as three vectors (re, im, -im) each, and a cotangent entry as
// three accumulators (see kernels_lanes.inc).
enum LaneKind : int {
  kLaneDense = 0,  // rows base[b] + pat[i] <- sum_j M[i, j] rows base[b] + pat[j]
  kLaneDiagonal,   // rows base[b] + pat[j] <- d[j] times themselves
  kLaneGather,     // row r <- row map[r]
};
struct LaneOp {
  int kind, k;          // k: targets (D = 2^k); gathers: unused
  int tile;             // 0: acts on x, 1: on g (the sweep's cotangent)
  int vjp;              // first ct[coef + i D + j] += sums of g[i] x[j] (diagonal: g[j] x[j])
  int trans, conj;      // M[i, j] is coefficient coef + (trans ? j D + i : i D + j), conjugated
  int64_t coef;         // the first coefficient, counted in complex entries of a row
  int64_t nbase;
  const int32_t* base;  // the rows where every target is 0 and every control 1
  int32_t pat[1 << kMaxTargets];  // row offset of target pattern j (its last bit: the last target)
  const int32_t* map;   // gathers: 2^n rows
};

// A prepared gate (IsaKernels::prepare) starts with the kernel that applies it,
// chosen from its counts (targets, lane patterns, patterns that change):
// p->apply(g, p, ...) applies it to the groups [g0, g1) of ONE state. `work`
// holds work_bytes bytes, 64-byte aligned, private to the caller; x (the
// forward input) and out are read and written by the VJPs only.
template <class R>
struct PreparedGate {
  void (*apply)(const Geometry& g, const void* prep, void* work, R* state, const R* x,
                double* out, int64_t g0, int64_t g1);
};

// Kernels of one instruction set for one real type R (float or double). A gate
// is PREPARED once from its coefficients (matrix splits, lane tables, which
// patterns move) and then applied to any number of states, so the setup is not
// paid again per state.
template <class R>
struct IsaKernels {
  const char* name;
  int log_lanes;  // L: log2 of complex amplitudes per vector
  // Bytes of the prepared `op` on g, and of the work space its apply needs.
  size_t (*prep_bytes)(int op, const Geometry& g);
  size_t (*work_bytes)(int op, const Geometry& g);
  // Prepares `op` from coef (U for the dense ops, d for the diagonal ones; ignored
  // for permutations, which read perm) into `prep`: prep_bytes bytes, 64-byte
  // aligned, a PreparedGate<R> first.
  void (*prepare)(int op, const Geometry& g, const R* coef, const int* perm, void* prep);
  // The same for `prep`, prepared before for the same op and g, and new
  // coefficients: redoes only what depends on them.
  void (*refill)(int op, const Geometry& g, const R* coef, void* prep);
  // A layer pass on the tiles [t0, t1) of ONE state: every gate i of the pass
  // applies its 2x2 matrix mats[8 gate[i] ..] (row-major, interleaved).
  void (*layer)(const LayerPass& p, const R* mats, R* state, int64_t t0, int64_t t1);
  // Its adjoint sweep, the pass's gates in reverse: x <- inv x, then
  // out[8 gate + 2 (2 i + j)] += sum over the other bits of g[i] x[j] (doubles,
  // no conjugation), then g <- tr g, with inv = U^dagger and tr = U^T of each gate.
  void (*layer_vjp)(const LayerPass& p, const R* inv, const R* tr, R* x, R* g, double* out,
                    int64_t t0, int64_t t1);
  // A product state held as an outer product (kernels_product.inc): state[h 2^l + j]
  // = phi[h] plo[j] for the rows h in [h0, h1); rows of 2^l >= 2^L amplitudes.
  void (*product)(int l, const R* plo, const R* phi, R* state, int64_t h0, int64_t h1);
  // Its sweep's contractions over the rows [h0, h1): A[h] = sum_j g[h, j] plo[j]
  // (written), B[j] += sum_h g[h, j] phi[h], x0 += sum x[h, j] conj(phi[h] plo[j]).
  void (*product_vjp)(int l, const R* plo, const R* phi, const R* x, const R* g, int64_t h0,
                      int64_t h1, double* A, R* B, double* x0);
  // A linear step (program.h: LinearMap) on one state of 2^n amplitudes, out of
  // place and for the amplitudes i in [a0, a1) (multiples of 256 from n = 8):
  // out[i] <- in[F(i)], F(i) the XOR over the index bytes t of table[256 t + byte t of i].
  void (*linear)(const int64_t* table, int n, const R* in, R* out, int64_t a0, int64_t a1);
  // The lanes runner: ops[0, nops) on one tile x (and g) of lanes_width states,
  // coefficients cf, cotangent accumulators ct; work holds a tile.
  int lanes_width;
  void (*lanes_run)(const LaneOp* ops, int64_t nops, int n, R* x, R* g, const R* cf, R* ct,
                    R* work);
};

// Checks the wires and fills G for vectors of 2^L amplitudes; nullptr or a
// static message naming the bad argument (geometry.cpp).
const char* build_geometry(Geometry* G, int n, int L, const int64_t* targets, int k,
                           const int64_t* controls, int nc);

// The portable linear kernel (linear_step.cpp), one amplitude at a time.
template <class R>
void linear_gather(const int64_t* table, int n, const R* in, R* out, int64_t a0, int64_t a1);

const IsaKernels<float>* scalar_kernels_f32();
const IsaKernels<double>* scalar_kernels_f64();
#if defined(QSIM_HAVE_AVX2)
const IsaKernels<float>* avx2_kernels_f32();
const IsaKernels<double>* avx2_kernels_f64();
#endif
#if defined(QSIM_HAVE_AVX512)
// The AVX2 kernels with AVX-512 layer kernels (isa_avx512.cpp).
const IsaKernels<float>* avx512_layer_kernels_f32();
const IsaKernels<double>* avx512_layer_kernels_f64();
const IsaKernels<float>* avx512_lanes_kernels_f32();
const IsaKernels<double>* avx512_lanes_kernels_f64();
#endif
// kernels_for, with AVX-512 layer kernels when the CPU has AVX-512F (and
// QSIM_NATIVE_ISA does not ask for avx2 or scalar) and the state has 8 qubits or more.
template <class R>
const IsaKernels<R>* layer_kernels_for(int n);
template <>
const IsaKernels<float>* layer_kernels_for<float>(int n);
template <>
const IsaKernels<double>* layer_kernels_for<double>(int n);
// The kernels for states of 2^n amplitudes: AVX2 when the CPU has it and the
// state fills a vector, else scalar (isa_select.cpp).
// The lanes runner's: the widest vectors the CPU has (QSIM_NATIVE_ISA caps them).
template <class R>
const IsaKernels<R>* lanes_kernels();
template <>
const IsaKernels<float>* lanes_kernels<float>();
template <>
const IsaKernels<double>* lanes_kernels<double>();
template <class R>
const IsaKernels<R>* kernels_for(int n);
template <>
const IsaKernels<float>* kernels_for<float>(int n);
template <>
const IsaKernels<double>* kernels_for<double>(int n);

// Runs fn(ctx, t) for every t in [0, ntasks) on the process-wide pool, the
// calling thread included, and returns when all are done (thread_pool.cpp).
using TaskFn = void (*)(void* ctx, int task);
void run_tasks(int ntasks, TaskFn fn, void* ctx);

// ---- the public C++ API (jobs.cpp) ------------------------------------------
// Every function applies the operation to `batch` consecutive states of 2^n
// amplitudes, in place. `u_stride` / `d_stride` is 0 (one matrix for the whole
// batch) or the matrix size in complex elements (one matrix per state).
// They return nullptr on success, or a static message naming the bad argument.
template <class R>
const char* apply_dense(R* state, int64_t batch, int n, const R* u, int64_t u_stride,
                        const int64_t* targets, int k, const int64_t* controls, int nc);
template <class R>
const char* apply_diagonal(R* state, int64_t batch, int n, const R* d, int64_t d_stride,
                           const int64_t* targets, int k);
template <class R>
const char* apply_permutation(R* state, int64_t batch, int n, const int64_t* perm,
                              const int64_t* targets, int k, const int64_t* controls, int nc);
// Writes ct_u (batch x 2^k x 2^k complex) and replaces gct by U^T gct.
template <class R>
const char* dense_vjp(R* gct, const R* x, int64_t batch, int n, const R* u, int64_t u_stride,
                      R* ct_u, const int64_t* targets, int k, const int64_t* controls, int nc);
// Writes ct_d (batch x 2^k complex) and replaces gct by d * gct.
template <class R>
const char* diagonal_vjp(R* gct, const R* x, int64_t batch, int n, const R* d, int64_t d_stride,
                         R* ct_d, const int64_t* targets, int k);

// Instruction set in use ("avx2+fma" or "scalar") and worker threads.
const char* isa_name();
int num_threads();

}  // namespace qsim_native

// Exported symbols (the library is built with hidden visibility).
#if defined(_WIN32)
#define QSIM_EXPORT extern "C" __declspec(dllexport)
#else
#define QSIM_EXPORT extern "C" __attribute__((visibility("default")))
#endif

#endif  // QSIM_NATIVE_H_
