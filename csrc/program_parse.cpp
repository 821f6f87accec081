// The step parser: a program's `code` attribute (format in program.h) into
// Steps, every record checked once. Where each fused member sits in its block
// is worked out here too, so running a block only multiplies.
#include <algorithm>
#include <limits>

#include "program.h"

namespace qsim_native {
namespace {

// Block-index bit of member position q (position 0 = most significant of K).
inline int64_t bit_of(int64_t q, int64_t K) { return int64_t(1) << (K - 1 - q); }

// Rows of a K-position block where the member's targets are 0 and its controls 1,
// and the offset of each target pattern a (a's first bit = the member's first target).
void member_layout(Member* m, int64_t K) {
  const int64_t dim = int64_t(1) << K, mdim = int64_t(1) << m->k;
  int64_t tmask = 0, cmask = 0;
  for (int64_t i = 0; i < m->k; ++i) tmask |= bit_of(m->targets[i], K);
  for (int64_t i = 0; i < m->nc; ++i) cmask |= bit_of(m->controls[i], K);
  m->nb = 0;
  for (int64_t i = 0; i < dim; ++i) {
    if ((i & tmask) == 0 && (i & cmask) == cmask) m->bases[m->nb++] = i;
  }
  for (int64_t a = 0; a < mdim; ++a) {
    int64_t off = 0;
    for (int64_t i = 0; i < m->k; ++i) {
      if ((a >> (m->k - 1 - i)) & 1) off |= bit_of(m->targets[i], K);
    }
    m->pat[a] = off;
  }
}

// A linear step's record: k distinct wires (any number), then k columns that
// form an invertible matrix over GF(2).
std::string read_linear(const int64_t*& p, const int64_t* end, Gate* g) {
  if (g->k < 1 || g->k > kMaxQubits || g->nc != 0) return "a linear step needs 1 to 62 wires";
  if (end - p < 4 + 2 * g->k) return "truncated step record";
  g->targets = p + 4;
  g->controls = p + 4 + g->k;
  g->perm = p + 4 + g->k;
  for (int64_t i = 0; i < g->k; ++i) {
    if (g->perm[i] < 0 || g->perm[i] >= (int64_t(1) << g->k)) return "linear step column out of range";
    for (int64_t j = 0; j < i; ++j) {
      if (g->targets[i] == g->targets[j]) return "linear step wires must be distinct";
    }
  }
  if (!linear_invertible(*g)) return "a linear step's matrix must be invertible over GF(2)";
  p += 4 + 2 * g->k;
  return "";
}

// Reads the fields of the record at p into g and moves p past them; "" or what
// is wrong. block > 0: a member of a fused block of that many positions.
std::string read_gate(const int64_t*& p, const int64_t* end, int64_t block, Gate* g,
                      int64_t* coef_end) {
  if (end - p < 4) return "truncated step record";
  *g = Gate{p[0], p[1], p[2], p[3], nullptr, nullptr, nullptr};
  const bool fused = is_fused(g->kind);
  if (g->kind < kDense || g->kind > kLinear || ((fused || g->kind == kLinear) && block)) {
    return "bad step kind";
  }
  if (g->kind == kLinear) return read_linear(p, end, g);
  if (g->k < 1 || g->k > kMaxTargets) return "1 to " + std::to_string(kMaxTargets) + " targets";
  if (g->nc < 0 || g->nc > kMaxQubits || (fused && g->nc)) return "bad control count";
  const int64_t dim = int64_t(1) << g->k;
  const int64_t len = 4 + g->k + g->nc + (g->kind == kPermutation ? dim : 0);
  if (end - p < len) return "truncated step record";
  g->targets = p + 4;
  g->controls = p + 4 + g->k;
  if (block) {  // member positions: distinct, inside the block
    int64_t seen = 0;
    for (int64_t i = 0; i < g->k + g->nc; ++i) {
      const int64_t q = g->targets[i];  // controls follow targets in the record
      if (q < 0 || q >= block || ((seen >> q) & 1)) {
        return "fused member positions must be distinct and inside the block";
      }
      seen |= int64_t(1) << q;
    }
  }
  if (g->kind == kPermutation) {
    g->perm = p + 4 + g->k + g->nc;
    uint64_t seen = 0;
    for (int64_t j = 0; j < dim; ++j) {
      if (g->perm[j] < 0 || g->perm[j] >= dim || ((seen >> g->perm[j]) & 1)) {
        return "perm must be a permutation of range(2**k)";
      }
      seen |= uint64_t(1) << g->perm[j];
    }
  } else if (!fused) {
    const int64_t size = g->kind == kDense ? dim * dim : dim;
    if (g->offset < 0 || g->offset > std::numeric_limits<int64_t>::max() - size) {
      return "coefficient offset out of range";
    }
    *coef_end = std::max(*coef_end, g->offset + size);
  }
  p += len;
  return "";
}

// One step: a plain record, or a fused header followed by its members.
std::string read_step(const int64_t*& p, const int64_t* end, Step* s, int64_t* coef_end) {
  if (std::string e = read_gate(p, end, 0, s, coef_end); !e.empty()) return e;
  if (!is_fused(s->kind)) return "";
  if (end - p < 1) return "truncated step record";
  const int64_t r = *p++;
  if (r < 1) return "a fused step needs members";
  for (int64_t j = 0; j < r; ++j) {
    Member m;
    if (std::string e = read_gate(p, end, s->k, &m, coef_end); !e.empty()) return e;
    if (s->kind == kFusedDiagonal && m.kind != kDiagonal) {
      return "a fused diagonal step has diagonal members only";
    }
    member_layout(&m, s->k);
    s->members.push_back(m);
  }
  return "";
}

// Marks the layers: maximal runs of two or more one-qubit dense steps (plain or
// fused) on distinct wires (they commute).
void mark_layers(std::vector<Step>* steps) {
  const size_t ns = steps->size();
  auto one_qubit = [](const Step& s) {  // plain dense, or a fused block on one wire
    return (s.kind == kDense || is_fused(s.kind)) && s.k == 1 && s.nc == 0 &&
           s.targets[0] >= 0 && s.targets[0] < kMaxQubits;
  };
  for (size_t i = 0; i < ns;) {
    size_t j = i;
    uint64_t used = 0;
    while (j < ns && one_qubit((*steps)[j]) && !((used >> (*steps)[j].targets[0]) & 1)) {
      used |= uint64_t(1) << (*steps)[j].targets[0];
      ++j;
    }
    if (j - i >= 2) {
      for (size_t k = i; k < j; ++k) {
        (*steps)[k].layer_first = i;
        (*steps)[k].layer_size = j - i;
      }
    }
    i = std::max(j, i + 1);
  }
}

}  // namespace

std::shared_ptr<const Program> parse_program(const int64_t* code, size_t len, std::string* err) {
  auto prog = std::make_shared<Program>();
  prog->code.assign(code, code + len);
  const int64_t* p = prog->code.data();
  const int64_t* end = p + len;
  while (p < end) {
    Step s;
    *err = read_step(p, end, &s, &prog->coef_end);
    if (!err->empty()) return nullptr;
    prog->steps.push_back(std::move(s));
  }
  mark_layers(&prog->steps);
  return prog;
}

}  // namespace qsim_native
