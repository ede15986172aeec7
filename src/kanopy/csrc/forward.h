// The layer's forward, y = bias + sum_i (base + spline) of every edge, and the regulariser's
// per-edge |phi| sums when asked (l1). Entry point forward_impl picks the path (README.md,
// "Dispatch"): forward_one_output (one output, vectorised over samples), super-blocks of
// samples grouped by interval with rows_update (several outputs), or forward_by_slice (wide
// layers on fine grids: output slices over large sample blocks).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "basis.h"
#include "layout.h"
#include "simd.h"
#include "split.h"

namespace kanopy {

// Sample blocks of the forward paths (README.md, "Tuning constants"): a super-block's output
// rows (super_len x outp values) fill at most kSuperBytes, the L1 data cache, and it holds at
// most kMaxSuperBlocks blocks of kBlock samples; forward_by_slice's large blocks hold at most
// kSliceBasis basis values (in x block_len), between kMinSliceBlocks blocks and
// kMaxSliceSamples samples.
constexpr int64_t kSuperBytes = 32768;
constexpr int64_t kMaxSuperBlocks = 8;
constexpr int64_t kSliceBasis = 1 << 18;
constexpr int64_t kMinSliceBlocks = 8;
constexpr int64_t kMaxSliceSamples = 4096;

// rows[b] += phi_b = sum_r vals[b][r] * Crow[r] (+ base[b] * Wi) over the `members` of one
// interval, for CH vectors of outputs (the pointers start at the first): the interval's rows
// are loaded once into registers. Rows of the output are row_stride apart, coefficient rows
// c_stride. Wi null: no base branch. kAbs: also absum += |phi_b| over the members (the
// regulariser's edge sums; phi is then formed apart before it is added).
template <typename T, int K, int CH, bool kAbs>
__attribute__((always_inline)) inline void interval_rows_update(T* __restrict rows, int64_t row_stride,
                                                                const T* __restrict Crow, int64_t c_stride,
                                                                const T* __restrict Wi, const T* vals,
                                                                const T* base, const int32_t* members,
                                                                int32_t count, T* __restrict absum) {
  constexpr int lanes = kLanes<T>;
  Vec<T> Cr[CH][K + 1], Wc[CH], A[CH];
#pragma GCC unroll 8
  for (int c = 0; c < CH; ++c) {
    Wc[c] = Wi ? load(Wi + c * lanes) : Vec<T>{};
    A[c] = Vec<T>{};
#pragma GCC unroll 8
    for (int r = 0; r <= K; ++r) Cr[c][r] = load(Crow + r * c_stride + c * lanes);
  }
  for (int32_t q = 0; q < count; ++q) {
    const int64_t b = members[q];
    T* y = rows + b * row_stride;
    const T* a = vals + b * (K + 1);
    const T bv = base[b];
#pragma GCC unroll 8
    for (int c = 0; c < CH; ++c) {
      if constexpr (kAbs) {
        Vec<T> phi = bv * Wc[c];
#pragma GCC unroll 8
        for (int r = 0; r <= K; ++r) phi += a[r] * Cr[c][r];
        store(y + c * lanes, load(y + c * lanes) + phi);
        A[c] += vabs<T>(phi);
      } else {
        Vec<T> acc = load(y + c * lanes) + bv * Wc[c];
#pragma GCC unroll 8
        for (int r = 0; r <= K; ++r) acc += a[r] * Cr[c][r];
        store(y + c * lanes, acc);
      }
    }
  }
  if constexpr (kAbs) {
#pragma GCC unroll 8
    for (int c = 0; c < CH; ++c) store(absum + c * lanes, load(absum + c * lanes) + A[c]);
  }
}

// interval_rows_update over `chunks` vectors of outputs, a register block at a time; absum
// given: with the |phi| sums
template <typename T, int K>
inline void rows_update(int64_t chunks, T* rows, int64_t row_stride, const T* Crow, int64_t c_stride, const T* Wi,
                        const T* vals, const T* base, const int32_t* members, int32_t count, T* absum) {
  constexpr int lanes = kLanes<T>;
  auto blocks = [&](auto abs) {
    constexpr bool kAbs = decltype(abs)::value;
    constexpr int RB = kAbs ? kRowsBlockAbs<K> : kRowsBlock<K>;
    for (int64_t c = 0; c < chunks; c += RB)
      with_block<RB>(chunks - c, [&](auto ch) {
        interval_rows_update<T, K, decltype(ch)::value, kAbs>(rows + c * lanes, row_stride, Crow + c * lanes, c_stride,
                                                             Wi ? Wi + c * lanes : nullptr, vals, base, members, count,
                                                             kAbs ? absum + c * lanes : nullptr);
      });
  };
  if (absum)
    blocks(std::true_type{});
  else
    blocks(std::false_type{});
}

// Buffers of the calling thread reused across calls (fresh large allocations fault their pages
// in on every call).
template <typename T>
struct SliceWork {
  std::vector<T> vals, base, abs_parts;
  std::vector<int32_t> order, count;
};
template <typename T>
SliceWork<T>& slice_work() {
  static thread_local SliceWork<T> w;
  return w;
}

// Forward for wide layers on fine grids, where a small block of samples holds under two per
// interval and every block would stream all the coefficients from memory. Here a large block
// of samples is taken at once: first, per input, its basis and its samples grouped by interval
// (counting sort); then each task owns a slice of the output vectors and a part of the block,
// and sweeps all inputs: an input's coefficient rows for the slice serve every sample of the
// part from registers, interval by interval, a register block at a time, and the part's output
// tile stays in L2. The coefficients are read once per block and slice, not once per sample.
// l1 given: also the |phi| sums of every edge (in, outp), by parts fixed by the data size.
template <typename T, int K, typename ParallelFor>
void forward_by_slice(ParallelFor&& parallel_for, const Dims& d, const Geometry<T, K>& geo, const T* X, const T* C,
                      const T* W, const T* B, T* Y, int64_t base_kind, int64_t threads, T* l1) {
  constexpr int lanes = kLanes<T>;
  constexpr int kBlockVectors = kRowsBlock<K>;
  // Samples per block: the basis buffer (in x block_len x (K+1)) bounded; a multiple of kBlock.
  const int64_t block_len = std::min<int64_t>(
      std::clamp<int64_t>(kSliceBasis / d.in, kMinSliceBlocks * kBlock, kMaxSliceSamples) / kBlock * kBlock,
      (d.N + kBlock - 1) / kBlock * kBlock);
  // Outputs per slice: all of them up to 2 KB (256 float64), in register blocks. Each slice
  // reads the whole basis again, and more samples per part mean more samples per interval for
  // the rows in registers: so slices as wide and parts as long as leave a task for every
  // thread. (Measured with 64-byte vectors at 1024 x 256 -> 256, float64, G=100: slices of
  // 2 KB x 512 samples 17 ms; 1 KB x 512, 27 ms; 512 B x 1024, 31 ms.)
  constexpr int64_t kSliceVectors = std::max<int64_t>(kBlockVectors, 2048 / kVectorBytes / kBlockVectors * kBlockVectors);
  const int64_t slice_chunks = std::min<int64_t>((d.chunks + kBlockVectors - 1) / kBlockVectors * kBlockVectors, kSliceVectors);
  const int64_t slices = (d.chunks + slice_chunks - 1) / slice_chunks;
  // with the |phi| sums the parts are fixed by the data size (their partial sums are added in order)
  const int64_t tasks = l1 ? kGroups : threads;
  const int64_t want_parts = std::max<int64_t>(1, (tasks + slices - 1) / slices);
  const int64_t part_len = std::max<int64_t>(kBlock, (block_len / want_parts + kBlock - 1) / kBlock * kBlock);
  const int64_t parts = (block_len + part_len - 1) / part_len;
  auto& work = slice_work<T>();
  work.vals.resize(d.in * block_len * (K + 1));
  work.base.resize(d.in * block_len);
  work.order.resize(d.in * block_len);
  work.count.resize(d.in * parts * (d.G + 1));
  if (l1) work.abs_parts.assign(parts * d.in * d.outp, T(0));  // (parts, in, outp)
  for (int64_t n0 = 0; n0 < d.N; n0 += block_len) {
    const int64_t n = std::min(block_len, d.N - n0);
    // 1. per input: basis of the block, and each part's samples grouped by interval
    parallel_for(0, d.in, 1, [&](int64_t i0, int64_t i1) {
      std::vector<int32_t> start(block_len), next(d.G);
      for (int64_t i = i0; i < i1; ++i) {
        samples_basis<T, K>(geo, X, d.in, i, n0, n, base_kind, work.vals.data() + i * block_len * (K + 1),
                            work.base.data() + i * block_len, start.data());
        for (int64_t p = 0; p < parts; ++p) {
          const int64_t lo = std::min(n, p * part_len), hi = std::min(n, lo + part_len);
          int32_t* count = work.count.data() + (i * parts + p) * (d.G + 1);
          group_by_interval(start.data() + lo, hi - lo, d.G, count, next.data(), work.order.data() + i * block_len + lo);
        }
      }
    });
    // 2. per (slice, part): all inputs into the part's output tile
    parallel_for(0, slices * parts, 1, [&](int64_t t0, int64_t t1) {
      static thread_local std::vector<T> tile;  // kept: a fresh one would fault its pages in per call
      tile.resize(part_len * slice_chunks * lanes);
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t sl = task / parts, p = task % parts;
        const int64_t lo = std::min(n, p * part_len), hi = std::min(n, lo + part_len);
        if (lo == hi) continue;
        const int64_t c0 = sl * slice_chunks, ch = std::min(slice_chunks, d.chunks - c0);
        const int64_t width = ch * lanes;  // outputs of the slice (padded)
        for (int64_t b = lo; b < hi; ++b) std::copy(B + c0 * lanes, B + c0 * lanes + width, tile.data() + (b - lo) * width);
        for (int64_t i = 0; i < d.in; ++i) {
          const T* Ci = C + i * d.n_coef * d.outp + c0 * lanes;
          const T* Wi = base_kind != kZero ? W + i * d.outp + c0 * lanes : nullptr;
          T* absum = l1 ? work.abs_parts.data() + (p * d.in + i) * d.outp + c0 * lanes : nullptr;
          const int32_t* count = work.count.data() + (i * parts + p) * (d.G + 1);
          const int32_t* order = work.order.data() + i * block_len + lo;
          // members are indices within the part; vals and base shifted to the part's start
          const T* vals = work.vals.data() + (i * block_len + lo) * (K + 1);
          const T* base = work.base.data() + i * block_len + lo;
          for (int64_t m = 0; m < d.G; ++m) {
            if (count[m] == count[m + 1]) continue;
            rows_update<T, K>(ch, tile.data(), width, Ci + m * d.outp, d.outp, Wi, vals, base, order + count[m],
                              count[m + 1] - count[m], absum);
          }
        }
        for (int64_t b = lo; b < hi; ++b) {
          const int64_t o0 = c0 * lanes, o1 = std::min(d.out, o0 + width);
          if (o1 > o0) std::copy(tile.data() + (b - lo) * width, tile.data() + (b - lo) * width + (o1 - o0), Y + (n0 + b) * d.out + o0);
        }
      }
    });
  }
  if (l1) add_partials(work.abs_parts.data(), parts, d.in * d.outp, l1);
}

// Forward of a layer with one output on the blocks [b0, b1) of samples, vectorised over the
// samples of a block; absum given (in, kBlock): also |phi| of every edge, summed lane by lane.
template <typename T, int K>
void forward_one_output(const Dims& d, const Geometry<T, K>& geo, const T* X, const T* C, const T* W, const T* B,
                        T* Y, int64_t base_kind, int64_t b0, int64_t b1, T* absum) {
  alignas(64) T v[(K + 1) * kBlock], dv[(K + 1) * kBlock], xv[kBlock], base[kBlock], slope[kBlock];
  alignas(64) T acc[kBlock];
  alignas(64) int32_t start[kBlock];
  for (int64_t blk = b0; blk < b1; ++blk) {
    const int64_t n0 = blk * kBlock;
    const int n = static_cast<int>(std::min<int64_t>(kBlock, d.N - n0));
    for (int b = 0; b < n; ++b) acc[b] = B[0];
    for (int64_t i = 0; i < d.in; ++i) {
      for (int b = 0; b < n; ++b) xv[b] = X[(n0 + b) * d.in + i];
      block_basis<T, K>(xv, n, geo, i, v, dv, start);
      base_block<T>(base_kind, xv, n, base, slope);
      const T* c = C + i * d.n_coef;
      const T wi = W[i];
      auto edges = [&](auto abs) {  // acc += phi (and absum += |phi|) lane by lane
        constexpr bool kAbs = decltype(abs)::value;
        T* ab = kAbs ? absum + i * kBlock : nullptr;
#pragma GCC ivdep
        for (int b = 0; b < n; ++b) {
          T s = base[b] * wi;
#pragma GCC unroll 8
          for (int r = 0; r <= K; ++r) s += v[r * kBlock + b] * c[start[b] + r];
          acc[b] += s;
          if constexpr (kAbs) ab[b] += std::abs(s);
        }
      };
      if (absum)
        edges(std::true_type{});
      else
        edges(std::false_type{});
    }
    for (int b = 0; b < n; ++b) Y[n0 + b] = acc[b];
  }
}

// Forward: tasks own blocks of samples (or, for wide layers on fine grids, slices of the
// outputs); output rows are accumulated in a padded buffer and copied out once. l1 given
// (in, outp): also the sum over samples of |phi| of every edge (the sparsity regulariser's
// edge sizes), in an order fixed by the data size (split).
template <typename T, int K, typename ParallelFor>
void forward_impl(ParallelFor&& parallel_for, const Dims& d, const T* X, const T* Tk, const T* C, const T* W, const T* B, T* Y,
                  bool uniform, int64_t base_kind, int64_t threads, T* l1 = nullptr) {
  const Geometry<T, K> geo(Tk, d.in, d.M, uniform);
  const int64_t blocks = (d.N + kBlock - 1) / kBlock;
  const int64_t work = std::max<int64_t>(1, kBlock * d.in * (K + 2) * d.outp);
  if (d.outp == 1) {  // one output: vectorised over the samples of a block
    if (!l1) {
      parallel_for(0, blocks, grain(work), [&](int64_t b0, int64_t b1) {
        forward_one_output<T, K>(d, geo, X, C, W, B, Y, base_kind, b0, b1, nullptr);
      });
      return;
    }
    const Split g = split(blocks, kGroups);
    std::vector<T> parts(g.count * d.in * kBlock, T(0));  // (groups, in, kBlock)
    parallel_for(0, g.count, grain(g.size * work), [&](int64_t g0, int64_t g1) {
      for (int64_t q = g0; q < g1; ++q)
        forward_one_output<T, K>(d, geo, X, C, W, B, Y, base_kind, q * g.size, std::min(blocks, (q + 1) * g.size),
                                 parts.data() + q * d.in * kBlock);
    });
    std::vector<T> lane_sums(d.in * kBlock);
    add_partials(parts.data(), g.count, d.in * kBlock, lane_sums.data());
    for (int64_t i = 0; i < d.in; ++i) {
      T s = T(0);
      for (int b = 0; b < kBlock; ++b) s += lane_sums[i * kBlock + b];
      l1[i] = s;
    }
    return;
  }
  // Several outputs: a task owns a super-block of super_len samples whose output rows stay in L1.
  // Per input, the samples are grouped by spline interval (counting sort) and each group is
  // served with the interval's k+1 coefficient rows held in registers, a register block of
  // output vectors at a time. That pays when intervals hold a few samples each; otherwise
  // (wide layers on fine grids) forward_by_slice takes larger blocks of samples against slices
  // of the outputs.
  const int64_t super_len = std::clamp<int64_t>((kSuperBytes / (d.outp * int64_t(sizeof(T)))) / kBlock * kBlock, kBlock,
                                                 kMaxSuperBlocks * kBlock);
  if (super_len < 2 * d.G) {
    forward_by_slice<T, K>(parallel_for, d, geo, X, C, W, B, Y, base_kind, threads, l1);
    return;
  }
  const int64_t supers = (d.N + super_len - 1) / super_len;
  const int64_t super_work = super_len * d.in * (K + 2) * d.outp;
  // super-blocks [s0, s1); absum given (in, outp): |phi| sums added to it
  auto run = [&](int64_t s0, int64_t s1, T* absum) {
    std::vector<T> rows(super_len * d.outp), vals((K + 1) * super_len), base(super_len);
    std::vector<int32_t> start(super_len), order(super_len), count(d.G + 1), next(d.G);
    for (int64_t sup = s0; sup < s1; ++sup) {
      const int64_t n0 = sup * super_len;
      const int64_t n = std::min<int64_t>(super_len, d.N - n0);
      for (int64_t b = 0; b < n; ++b) std::copy(B, B + d.outp, rows.data() + b * d.outp);
      for (int64_t i = 0; i < d.in; ++i) {
        samples_basis<T, K>(geo, X, d.in, i, n0, n, base_kind, vals.data(), base.data(), start.data());
        group_by_interval(start.data(), n, d.G, count.data(), next.data(), order.data());
        const T* Ci = C + i * d.n_coef * d.outp;
        const T* Wi = base_kind != kZero ? W + i * d.outp : nullptr;
        for (int64_t m = 0; m < d.G; ++m) {
          const int32_t lo = count[m], hi = count[m + 1];
          if (lo == hi) continue;
          rows_update<T, K>(d.chunks, rows.data(), d.outp, Ci + m * d.outp, d.outp, Wi, vals.data(), base.data(),
                            order.data() + lo, hi - lo, absum ? absum + i * d.outp : nullptr);
        }
      }
      for (int64_t b = 0; b < n; ++b)
        std::copy(rows.data() + b * d.outp, rows.data() + b * d.outp + d.out, Y + (n0 + b) * d.out);
    }
  };
  if (!l1) {
    parallel_for(0, supers, grain(super_work), [&](int64_t s0, int64_t s1) { run(s0, s1, nullptr); });
    return;
  }
  const Split g = split(supers, kGroups);
  std::vector<T> parts(g.count * d.in * d.outp, T(0));  // (groups, in, outp)
  parallel_for(0, g.count, grain(g.size * super_work), [&](int64_t g0, int64_t g1) {
    for (int64_t q = g0; q < g1; ++q)
      run(q * g.size, std::min(supers, (q + 1) * g.size), parts.data() + q * d.in * d.outp);
  });
  add_partials(parts.data(), g.count, d.in * d.outp, l1);
}

}  // namespace kanopy
