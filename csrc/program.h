// A whole gate program in one XLA FFI call: compile time independent of its length.
//
// XLA:CPU compiles each unrolled gate in about 10 ms, and a lax.scan over a
// switch of gate kinds copies the state at every step. A "program" is instead
// a static list of steps (an int64 attribute, `code`) plus one flat array of
// their coefficients (an operand, traced or constant): the handler loops over
// the steps and calls the kernels of qsim_native.h on the state in place.
//
// `code` holds one variable-length record per step:
//   kind (0 dense, 1 diagonal, 2 permutation), k (targets), nc (controls),
//   offset (complex elements into the coefficient row; dense: 4^k, diagonal:
//   2^k, permutation: unused), targets[k], controls[nc], and for a
//   permutation perm[2^k] (out[j] = in[perm[j]]).
// A linear step (kind 5: a network of CNOTs and SWAPs, linear_step.cpp) is
//   5, k, 0, 0, wires[k], cols[k]: out[a] = in[M a] over GF(2) on the k wires'
//   bits, cols[j] the k-bit image of position j (k up to kMaxQubits).
// Fused steps (kind 3 dense, 4 diagonal) carry their members instead of a
// block: kind, K, 0, 0, wires[K], r, then r member records laid out as above
// (kinds 0-2) whose targets and controls are POSITIONS 0..K-1 in the block
// (0 = wires[0] = most significant). The block is multiplied out at run time,
// so traced parameters need no per-block XLA ops; its cotangent is spread back
// onto the members' coefficients by the chain rule.
// Coefficients are (cb, total) complex with cb = 1 (shared by every state) or
// the state batch.
//
// Units: program_parse.cpp (code -> Program), program_cache.cpp (parse once per
// distinct code), fused_block.cpp (block algebra), program_run.cpp (the runner:
// gate by gate over the batch, each gate split over the threads),
// program_batch.cpp (small states: state by state, the batch split over the
// threads), program_lanes.cpp (states of a few qubits: W at once, one per vector
// lane), program_ffi.cpp (the handlers, described there).
#ifndef QSIM_PROGRAM_H_
#define QSIM_PROGRAM_H_

#include <complex>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "qsim_native.h"

namespace qsim_native {

enum StepKind : int64_t {
  kDense = 0, kDiagonal = 1, kPermutation = 2, kFusedDense = 3, kFusedDiagonal = 4, kLinear = 5
};

inline bool is_fused(int64_t kind) { return kind == kFusedDense || kind == kFusedDiagonal; }

// One record's fields; the pointers point into Program::code.
struct Gate {
  int64_t kind, k, nc, offset;
  const int64_t* targets;
  const int64_t* controls;
  const int64_t* perm;  // permutations: perm[2^k]; linear steps: cols[k]
};

// A gate inside a fused block of K positions, with where it sits in the block.
struct Member : Gate {
  int nb;                               // rows of the block where targets are 0, controls 1
  int64_t bases[1 << kMaxTargets];      // those rows
  int64_t pat[1 << kMaxTargets];        // offset of each target pattern a
};

// A plain gate, or a fused block on `targets` (k wires) made of `members`.
// Two or more consecutive one-qubit dense steps (plain, or fused blocks on one
// wire) on distinct wires form a layer, which the runners apply together (Layer,
// qsim_native.h); each member knows its layer's first step and size.
struct Step : Gate {
  std::vector<Member> members;
  size_t layer_first = 0, layer_size = 0;  // layer_size 0: not in a layer
};

struct LanePlan;   // program_lanes.cpp
struct LinearMap;  // below

// A parsed `code`: immutable once built, shared by every call that runs it (the
// lanes runner keeps its expanded plans here, built on first use under lanes_mu).
struct Program {
  Program() = default;
  Program(const Program&) = delete;  // the steps point into `code`
  Program& operator=(const Program&) = delete;

  std::vector<int64_t> code;
  std::vector<Step> steps;
  int64_t coef_end = 0;  // coefficients the steps read: a row must hold at least this many
  mutable std::mutex lanes_mu;
  mutable std::vector<std::pair<int64_t, std::shared_ptr<const LanePlan>>> lane_plans;
  // The linear steps' maps, built on first use (program_linear_map), under linear_mu.
  mutable std::mutex linear_mu;
  mutable std::vector<std::pair<int64_t, std::shared_ptr<const LinearMap>>> linear_maps;
};

// Parses code[0, len) into a Program, checking every record; nullptr and *err
// (without the handler's name) for a bad one (program_parse.cpp).
std::shared_ptr<const Program> parse_program(const int64_t* code, size_t len, std::string* err);

// parse_program, once per distinct code: a bounded, thread-safe cache keyed by
// the code's contents (program_cache.cpp).
std::shared_ptr<const Program> cached_program(const int64_t* code, size_t len, std::string* err);

// ---------------------------------------------------- linear steps (linear_step.cpp) ------
// out[i] = in[F(i)] with F(i) the XOR of table[t][byte t of i] over the index bytes.
struct LinearMap {
  int n = 0, chunks = 0;
  std::vector<int64_t> table;  // chunks x 256
};

// Whether a linear step's matrix (cols) is invertible over GF(2).
bool linear_invertible(const Gate& g);
// nullptr, or why linear step g cannot act on n-qubit states.
const char* check_linear(const Gate& g, int n);
// The map of linear step g on n-qubit states, or of its inverse (= its transpose).
LinearMap linear_map(const Gate& g, int n, bool inverse);
// linear_map of step s of p, built once per (step, n, inverse) and kept with the
// program: building the tables costs a small state's call as much as its gather
// (n = 12, batch 1: a quarter of the kernels' time).
std::shared_ptr<const LinearMap> program_linear_map(const Program& p, const Step& s, int n,
                                                    bool inverse);
// Applies the map to one state in place; work holds 2^n complex.
template <class R>
void apply_linear(const LinearMap& m, R* state, R* work);
// The same shared over at most ntasks tasks of the thread pool once the state and
// its second buffer outgrow one core's L2 (kStreamQubits where the L2 size is not
// known): below, the slices would move them between the cores' caches, slower
// than one thread.
template <class R>
void apply_linear_threaded(const LinearMap& m, R* state, R* work, int ntasks);
// out <- the map applied to in (one state, 2^n complex each), over the threads the same way.
template <class R>
void gather_linear_threaded(const LinearMap& m, const R* in, R* out, int ntasks);

// ------------------------------------------------- fused blocks (fused_block.cpp) ------
using C = std::complex<double>;

// The block of fused step s for one coefficient row: dense (2^K x 2^K) or diagonal (2^K).
template <class R>
void fused_block(const Step& s, const R* row, C* B);

// Adds the block cotangent ctB (JAX's convention) of one row, spread onto the
// members by the chain rule, to their coefficients in ct_row.
template <class R>
void fused_ct(const Step& s, const R* row, const C* ctB, R* ct_row);
// fused_block and fused_ct for a block on one wire (k = 1; the block and its
// cotangent are 2x2 also for a fused diagonal), in real arithmetic.
template <class R>
void fused_block2(const Step& s, const R* row, C* B);
template <class R>
void fused_ct2(const Step& s, const R* row, const C* ctB, R* ct_row);

enum class Direction { kForward = 0, kInverse = 1, kTranspose = 2 };

// f(), with running out of memory and failing to start the worker threads as the
// runners' messages (nothing may throw through the FFI boundary).
template <class F>
const char* guarded(F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return "qsim native: out of memory for kernel scratch";
  } catch (const std::system_error&) {
    return "qsim native: could not start worker threads";
  }
}

// ---------------------------------------------- reused scratch (program_run.cpp) ------
// Scratch of `bytes` (64-byte aligned) for one use on the calling thread. Up to
// kReuseBytes it is a thread-local buffer kept between calls (slot: uses that may
// be live at once): a fresh allocation per call costs its page faults and zeroing
// every time, a sizeable share of a small state's call. Larger ones are allocated.
constexpr size_t kReuseBytes = size_t(64) << 20;
enum ScratchSlot : int {
  kScratchLinear = 0, kScratchTasks = 1, kScratchLinearG = 2, kScratchSlots = 3
};
class ReusedScratch {
 public:
  ReusedScratch(int slot, size_t bytes);
  char* get() const { return p_; }

 private:
  std::unique_ptr<char[]> own_;
  char* p_;
};

// ------------------------------------------------------ layers (program_run.cpp) ------
// The wires of the layer of steps [first, first + size), and its members'
// 2x2 matrices (8 reals each; a fused member's block multiplied out) from
// coefficient row `row`, as U^dagger (kInverse), U^T (kTranspose) or U.
void layer_wires(const Program& p, size_t first, size_t size, int64_t* wires);
template <class R>
void layer_mats(const Program& p, size_t first, size_t size, const R* row, Direction dir,
                R* out);
// The same for the adjoint sweep: U^dagger into inv and U^T into tr, each block
// multiplied out once.
template <class R>
void layer_sweep_mats(const Program& p, size_t first, size_t size, const R* row, R* inv, R* tr);
// Adds a layer member's 2x2 sums (8 doubles, JAX's convention) to ct_row: at its
// offset, or spread onto a fused member's own members by the chain rule.
template <class R>
void layer_ct(const Step& s, const R* row, const double* sums, R* ct_row);

// ------------------------------------------ product layers (product_layer.cpp) ------
// A layer on all n wires whose members all have a zero second column (the executor's
// projector |0><0| on every wire merged into each wire's first gates) maps any state
// x to x[0] times the product of the members' first columns.
// Whether the `size` members' matrices m (8 reals each: U, or U^T when transposed) on
// `wires` make one; if so f[4 q ..] holds (u00, u10) of the member on bit q = n-1-wire.
template <class R>
bool product_factors(const R* m, bool transposed, const int64_t* wires, size_t size, int n,
                     double* f);
// The layer's forward on one state: state <- state[0] times the product.
template <class R>
void product_apply(const IsaKernels<R>* isa, int n, const double* f, R* state, bool threaded);
// Its sweep on one state, from the layer's output x and cotangent g: x <- x0 |0...0>
// (the input recovered), g <- its cotangent, and v[4 q + 2 a ..] = sum over the
// other bits of g[i with bit q = a] times x0 and every other bit's factor (the sums
// of the member on bit q are (v[a], 0) in row a). threaded: rows over the pool.
template <class R>
void product_sweep(const IsaKernels<R>* isa, int n, const double* f, R* x, R* g, double* v,
                   bool threaded);
// The layer members' 2x2 sums (8 doubles each, as layer_ct takes them) from v.
void product_sums(const double* v, const int64_t* wires, size_t size, int n, double* sums);

// ------------------------------------------------------ the runner (program_run.cpp) ------
struct Shapes {
  int64_t batch, cb, total;  // states, coefficient rows (1 or batch), coefficients per row
  int n;                     // qubits
};

// kForward: U_S ... U_1; kInverse: U_1^dagger ... U_S^dagger (unitary steps);
// kTranspose: U_1^T ... U_S^T (the state cotangent of the forward). In place on
// `batch` states; nullptr or a message from the kernels.
template <class R>
const char* run_program(const Program& p, R* state, const R* coefs, const Shapes& sh,
                        Direction dir);

// The adjoint sweep: from the forward's output x and its cotangent g, walks the
// steps backwards un-applying each (x <- U^dagger x) and, when want_ct, adding
// ct[b, offset..] += sum over the other bits of g[i] x[j]; g <- U^T g. On return
// x is the input, g its cotangent and ct (batch, total) the coefficients'.
template <class R>
const char* run_adjoint(const Program& p, R* x, R* g, const R* coefs, R* ct, const Shapes& sh,
                        bool want_ct);

// One coefficient row's share of the runner (program_run.cpp), for both runners.
// The plain gate a step amounts to: a fused step is a dense or diagonal gate on
// its wires whose coefficients (its block) start at offset 0.
Gate plain_gate(const Step& s);
// The coefficients of step s in row `row`: row + 2 * offset for a plain step,
// else its block, multiplied out into `block` (4^k or 2^k complex).
template <class R>
const R* step_coefs(const Step& s, const R* row, R* block);
// Whether the coefficients c of plain gate g are used as they are in direction dir.
bool coefs_as_is(const Gate& g, Direction dir);
// Else: c conjugated (kInverse) and, for dense gates, transposed (both), into out.
template <class R>
void transform_coefs(const Gate& g, const R* c, Direction dir, R* out);

// ---------------------------------------- small states, whole batches (program_batch.cpp) ------
// Whether run_batch / run_batch_adjoint take these states: small enough that
// one core runs a state's whole program in its own caches.
bool batch_runner_takes(const Shapes& sh);

// run_program and run_adjoint for such states: every step is resolved and
// prepared once per call (once per state where the states have their own
// coefficients), then each state runs the whole program on one thread, and
// the batch is split over the threads.
template <class R>
const char* run_batch(const Program& p, R* state, const R* coefs, const Shapes& sh,
                      Direction dir);
template <class R>
const char* run_batch_adjoint(const Program& p, R* x, R* g, const R* coefs, R* ct,
                              const Shapes& sh, bool want_ct);

// ------------------------------- tiny states, W at a time (program_lanes.cpp) ------
// Whether run_lanes / run_lanes_adjoint take these states: a batch of states of
// a few qubits (QSIM_NATIVE_LANES=0 turns the runner off).
bool lanes_runner_takes(const Shapes& sh);

// run_program and run_adjoint for such states: the program expanded once into
// ops on tiles of W states, one per vector lane (kernels_lanes.inc).
template <class R>
const char* run_lanes(const Program& p, R* state, const R* coefs, const Shapes& sh,
                      Direction dir);
template <class R>
const char* run_lanes_adjoint(const Program& p, R* x, R* g, const R* coefs, R* ct,
                              const Shapes& sh, bool want_ct);

}  // namespace qsim_native

#endif  // QSIM_PROGRAM_H_
