// Parse once: the parsed Program of every recently run `code`, so that a
// compiled program's calls after the first skip the parser. An attribute's
// address says nothing once the executable that owned it is freed (another
// may reuse the memory), so entries are found by the code's contents (hash,
// then an exact comparison).
// Entries are immutable and shared: one dropped from the cache lives on until
// the calls running it return. Memory is bounded: the least recently used
// entries go beyond kMaxEntries or kMaxBytes, and a program bigger than
// kMaxBytes on its own is parsed on every call instead.
#include <algorithm>
#include <list>
#include <mutex>

#include "program.h"

namespace qsim_native {
namespace {

constexpr size_t kMaxEntries = 64;
constexpr size_t kMaxBytes = size_t(64) << 20;

uint64_t hash_code(const int64_t* code, size_t len) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
  for (size_t i = 0; i < len; ++i) {
    h = (h ^ uint64_t(code[i])) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  return h;
}

size_t footprint(const Program& p) {
  size_t bytes = sizeof(Program) + p.code.size() * sizeof(int64_t) + p.steps.size() * sizeof(Step);
  for (const Step& s : p.steps) bytes += s.members.size() * sizeof(Member);
  return bytes;
}

struct Entry {
  uint64_t hash;
  size_t bytes;
  std::shared_ptr<const Program> program;
};

class Cache {
 public:
  // The entry for this code, made most recently used; nullptr if none.
  std::shared_ptr<const Program> find(uint64_t hash, const int64_t* code, size_t len) {
    std::lock_guard<std::mutex> lk(mu_);
    return find_locked(hash, code, len);
  }

  // Adds a freshly parsed program (or returns the equal one another thread added first).
  std::shared_ptr<const Program> add(uint64_t hash, std::shared_ptr<const Program> prog) {
    const size_t bytes = footprint(*prog);
    if (bytes > kMaxBytes) return prog;
    std::lock_guard<std::mutex> lk(mu_);
    if (auto known = find_locked(hash, prog->code.data(), prog->code.size())) return known;
    lru_.push_front(Entry{hash, bytes, prog});
    bytes_ += bytes;
    while (lru_.size() > kMaxEntries || bytes_ > kMaxBytes) {
      bytes_ -= lru_.back().bytes;
      lru_.pop_back();
    }
    return prog;
  }

 private:
  std::shared_ptr<const Program> find_locked(uint64_t hash, const int64_t* code, size_t len) {
    for (auto it = lru_.begin(); it != lru_.end(); ++it) {
      const std::vector<int64_t>& known = it->program->code;
      if (it->hash == hash && known.size() == len && std::equal(known.begin(), known.end(), code)) {
        lru_.splice(lru_.begin(), lru_, it);
        return it->program;
      }
    }
    return nullptr;
  }

  std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  size_t bytes_ = 0;
};

// Never destroyed: a handler may still run while the process exits.
Cache& cache() {
  static Cache* const c = new Cache;
  return *c;
}

}  // namespace

std::shared_ptr<const Program> cached_program(const int64_t* code, size_t len, std::string* err) {
  const uint64_t hash = hash_code(code, len);
  if (auto prog = cache().find(hash, code, len)) return prog;
  auto prog = parse_program(code, len, err);
  return prog ? cache().add(hash, std::move(prog)) : nullptr;
}

}  // namespace qsim_native
