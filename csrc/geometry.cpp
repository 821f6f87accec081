// Gate geometry: where a gate's target and control wires sit in the state, as
// bit positions, vector offsets and group strides (see Geometry in qsim_native.h).
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include <algorithm>
#include <cstring>
#include <string>

#include "qsim_native.h"

namespace qsim_native {

const char* build_geometry(Geometry* G, int n, int L, const int64_t* targets, int k,
                           const int64_t* controls, int nc) {
  static const std::string bad_k =
      "qsim native: 1 to " + std::to_string(kMaxTargets) + " target wires are supported";
  if (n < 0 || n > kMaxQubits) return "qsim native: the state size must be 2**n with n <= 62";
  if (k < 1 || k > kMaxTargets) return bad_k.c_str();
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

int64_t l2_cache_bytes() {
#if defined(_SC_LEVEL2_CACHE_SIZE)
  static const int64_t bytes = [] {
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return v > 0 ? int64_t(v) : int64_t(0);
  }();
  return bytes;
#else
  return 0;
#endif
}

bool streams(int n, int amp_bytes) {
  const int64_t l2 = l2_cache_bytes();
  return n >= kStreamQubits || (l2 > 0 && (int64_t(amp_bytes) << n) >= l2);
}

namespace {

// High passes for the gates at positions >= T.
int high_passes(int n, const int64_t* wires, int m, int T) {
  int nh = 0;
  for (int i = 0; i < m; ++i) nh += n - 1 - int(wires[i]) >= T;
  return (nh + kLayerMaxRowBits - 1) / kLayerMaxRowBits;
}

// The low pass's tile bits: T, or up to kLayerWholeTileBits where a larger
// contiguous tile saves a whole high pass over the state (n = 18: 11 low gates
// and 7 high ones instead of 10 + 7 + 1).
int low_tile_bits(int n, const int64_t* wires, int m, int T) {
  const int base = high_passes(n, wires, m, T);
  for (int t = T + 1; t <= std::min(n, kLayerWholeTileBits); ++t) {
    if (high_passes(n, wires, m, t) < base) return t;
  }
  return T;
}

}  // namespace

const char* build_layer(Layer* ly, int n, const int64_t* wires, int m, int amp_bytes) {
  if (n < 1 || n > kMaxQubits) return "qsim native: the state size must be 2**n with n <= 62";
  if (m < 1 || m > n) return "qsim native: a layer needs 1 to n gates";
  uint64_t used = 0;
  for (int i = 0; i < m; ++i) {
    if (wires[i] < 0 || wires[i] >= n) return "qsim native: wire out of range";
    if (used & (uint64_t(1) << wires[i])) return "qsim native: repeated wire";
    used |= uint64_t(1) << wires[i];
  }
  ly->n = n;
  ly->m = m;
  ly->passes = 0;
  const bool whole = n <= kLayerWholeTileBits && (int64_t(amp_bytes) << n) <= kLayerWholeTileBytes;
  const int T = whole ? n : low_tile_bits(n, wires, m, std::min(n, kLayerTileBits));
  int high[kMaxQubits], nh = 0;  // gates on positions >= T, by position
  LayerPass* low = nullptr;
  for (int i = 0; i < m; ++i) {
    const int p = n - 1 - int(wires[i]);
    if (p >= T) {
      high[nh++] = i;
      continue;
    }
    if (low == nullptr) {
      low = &ly->pass[ly->passes++];
      low->m = 0;
      low->c = T;
      low->qh = 0;
      low->tiles = int64_t(1) << (n - T);
      low->row_off[0] = 0;
    }
    low->gate[low->m] = i;
    low->pos[low->m] = p;
    low->rank[low->m++] = -1;
  }
  std::sort(high, high + nh, [&](int a, int b) { return wires[a] > wires[b]; });
  for (int h0 = 0; h0 < nh; h0 += kLayerMaxRowBits) {
    LayerPass& P = ly->pass[ly->passes++];
    P.m = P.qh = std::min(kLayerMaxRowBits, nh - h0);
    const int Th = streams(n, amp_bytes) ? kLayerHighTileBits : T;
    P.c = Th - P.qh;
    P.tiles = int64_t(1) << (n - Th);
    for (int r = 0; r < P.qh; ++r) {
      const int i = high[h0 + r];
      P.gate[r] = i;
      P.pos[r] = P.hi_pos[r] = n - 1 - int(wires[i]);
      P.rank[r] = r;
    }
    for (int64_t r = 0; r < (int64_t(1) << P.qh); ++r) {
      int64_t off = 0;
      for (int k = 0; k < P.qh; ++k) {
        if ((r >> k) & 1) off |= int64_t(1) << P.hi_pos[k];
      }
      P.row_off[r] = off;
    }
  }
  return nullptr;
}

}  // namespace qsim_native
