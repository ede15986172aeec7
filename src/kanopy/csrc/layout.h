// How one call's work is laid out: Dims (its sizes, with the output rows padded to whole
// vectors), group_by_interval (the counting sort of samples by spline interval that the
// forward and the backward share) and the register blocks, in output vectors, of the loops
// that hold coefficient rows in registers (from simd.h's register count).
#pragma once

#include <algorithm>
#include <cstdint>

#include "simd.h"

namespace kanopy {

// Rows of outputs are padded to whole vectors (kLanes<T> values, simd.h), so the row
// operations of forward.h and backward.h are a fixed number of full-width vector FMAs even for one or five outputs.

struct Dims {
  int64_t N, in, M, n_coef, out, G;  // n_coef = M - k - 1 = G + k per input
  int64_t outp, chunks;  // padded output width and its number of vector chunks
};

// Dims of a call; lanes = values per vector of the scalar type (kLanes<T>).
// A single output is not padded (outp = 1): those layers are vectorised over samples instead.
inline Dims make_dims(int64_t N, int64_t in, int64_t M, int64_t out, int64_t k, int64_t lanes) {
  Dims d{N, in, M, M - k - 1, out, M - 2 * k - 1, 0, 0};
  d.chunks = (out + lanes - 1) / lanes;
  d.outp = out == 1 ? 1 : d.chunks * lanes;
  return d;
}

// Counting sort of n samples by interval start[b] in [0, G): the samples of interval m are
// order[count[m] .. count[m + 1]). count has G + 1 entries, next G.
inline void group_by_interval(const int32_t* start, int64_t n, int64_t G, int32_t* count, int32_t* next,
                              int32_t* order) {
  std::fill(count, count + G + 1, 0);
  for (int64_t b = 0; b < n; ++b) ++count[start[b] + 1];
  for (int64_t m = 0; m < G; ++m) count[m + 1] += count[m];
  std::copy(count, count + G, next);
  for (int64_t b = 0; b < n; ++b) order[next[start[b]]++] = static_cast<int32_t>(b);
}

// Register blocks (simd.h), in output vectors, of the loops that hold coefficient rows:
// the forward's rows update holds K+1 rows and a base weight per vector (and an |phi|
// accumulator for the regulariser); the input gradient K polynomial coefficients and a base
// weight; the regulariser's sign pass K+1 rows, a base weight and an edge weight. The shared
// registers are the loop's temporaries and the broadcast scalars of a sample.
template <int K>
constexpr int kRowsBlock = register_block(K + 2, 1 + broadcast_registers(K + 2));
template <int K>
constexpr int kRowsBlockAbs = register_block(K + 3, 2 + broadcast_registers(K + 2));
template <int K>
constexpr int kGradBlock = register_block(K + 1, 3 + broadcast_registers(2));
template <int K>
constexpr int kSignBlock = register_block(K + 3, 2 + broadcast_registers(K + 2));

}  // namespace kanopy
