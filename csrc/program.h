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
// distinct code), fused_block.cpp (block algebra), program_run.cpp (the runner),
// program_ffi.cpp (the handlers, described there).
#ifndef QSIM_PROGRAM_H_
#define QSIM_PROGRAM_H_

#include <complex>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "qsim_native.h"

namespace qsim_native {

enum StepKind : int64_t {
  kDense = 0, kDiagonal = 1, kPermutation = 2, kFusedDense = 3, kFusedDiagonal = 4
};

inline bool is_fused(int64_t kind) { return kind == kFusedDense || kind == kFusedDiagonal; }

// One record's fields; the pointers point into Program::code.
struct Gate {
  int64_t kind, k, nc, offset;
  const int64_t* targets;
  const int64_t* controls;
  const int64_t* perm;  // permutations only
};

// A gate inside a fused block of K positions, with where it sits in the block.
struct Member : Gate {
  int nb;                               // rows of the block where targets are 0, controls 1
  int64_t bases[1 << kMaxTargets];      // those rows
  int64_t pat[1 << kMaxTargets];        // offset of each target pattern a
};

// A plain gate, or a fused block on `targets` (k wires) made of `members`.
struct Step : Gate {
  std::vector<Member> members;
};

// A parsed `code`: immutable once built, shared by every call that runs it.
struct Program {
  Program() = default;
  Program(const Program&) = delete;  // the steps point into `code`
  Program& operator=(const Program&) = delete;

  std::vector<int64_t> code;
  std::vector<Step> steps;
  int64_t coef_end = 0;  // coefficients the steps read: a row must hold at least this many
};

// Parses code[0, len) into a Program, checking every record; nullptr and *err
// (without the handler's name) for a bad one (program_parse.cpp).
std::shared_ptr<const Program> parse_program(const int64_t* code, size_t len, std::string* err);

// parse_program, once per distinct code: a bounded, thread-safe cache keyed by
// the code's contents (program_cache.cpp).
std::shared_ptr<const Program> cached_program(const int64_t* code, size_t len, std::string* err);

// ------------------------------------------------- fused blocks (fused_block.cpp) ------
using C = std::complex<double>;

// The block of fused step s for one coefficient row: dense (2^K x 2^K) or diagonal (2^K).
template <class R>
void fused_block(const Step& s, const R* row, C* B);

// Adds the block cotangent ctB (JAX's convention) of one row, spread onto the
// members by the chain rule, to their coefficients in ct_row.
template <class R>
void fused_ct(const Step& s, const R* row, const C* ctB, R* ct_row);

// ------------------------------------------------------ the runner (program_run.cpp) ------
struct Shapes {
  int64_t batch, cb, total;  // states, coefficient rows (1 or batch), coefficients per row
  int n;                     // qubits
};

enum class Direction { kForward = 0, kInverse = 1, kTranspose = 2 };

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

}  // namespace qsim_native

#endif  // QSIM_PROGRAM_H_
