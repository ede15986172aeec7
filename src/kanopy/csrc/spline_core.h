// Torch-free core of the fused KAN layer kernels (see spline.cpp for the contract).
// Kept apart so that it can be benchmarked and tested without building against torch:
// parallel loops are passed in as `parallel_for(begin, end, grain, fn(lo, hi))`.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

#include "simd.h"

namespace kanopy {

constexpr int kMaxOrder = 5;
constexpr int kBlock = 32;  // samples per block
constexpr int kBasisLanes = 8;  // >= kMaxOrder + 1: one short vector holds a point's basis

enum BaseKind : int64_t { kZero = 0, kIdentity = 1, kSilu = 2, kTanh = 3 };

typedef double Basis8D __attribute__((vector_size(8 * sizeof(double))));
typedef float Basis8F __attribute__((vector_size(8 * sizeof(float))));
template <typename T>
using BasisVec = std::conditional_t<std::is_same_v<T, double>, Basis8D, Basis8F>;

// Per-input lookup data, built once per call: O(in * G * k^3), small next to the main work.
//
// Uniform knots need only the domain and spacing. For general knots, every domain interval
// j carries the polynomial coefficients (in u = (x - t_j) / (t_{j+1} - t_j)) of its k+1
// nonzero B-splines and of their x-derivatives, so a point costs an interval lookup and a
// Horner evaluation on one short vector, whatever the knots.
template <typename T, int K>
struct Geometry {
  int64_t in, M, G, nb;
  bool uniform;
  std::vector<T> lo, hi, inv_h;      // (in): domain, 1 / spacing (uniform knots)
  std::vector<int32_t> bucket;       // (in, nb+1): domain interval at the left end of each bucket
  std::vector<T> inv_bucket;         // (in): buckets per unit length
  std::vector<T> left, inv_w;        // (in, G): t_j and 1 / (t_{j+1} - t_j) of domain interval j
  std::vector<T> poly, dpoly;        // (in, G, K+1, 8) and (in, G, K, 8): [power][basis function]
  // uniform knots: x-derivatives of the k+1 basis functions on any interval as polynomials in
  // the local coordinate f, for unit spacing (times inv_h[i] for input i): (K, 8)
  T unit_dpoly[K * kBasisLanes] = {};

  Geometry(const T* t, int64_t in_, int64_t M_, bool uniform_)
      : in(in_), M(M_), G(M_ - 2 * K - 1), nb(2 * (M_ - 2 * K - 1)), uniform(uniform_), lo(in_), hi(in_),
        inv_h(in_) {
    for (int64_t i = 0; i < in; ++i) {
      const T* ti = t + i * M;
      lo[i] = ti[K];
      hi[i] = ti[G + K];
      // spacing from the whole domain, not one gap: in float32 a single gap carries the
      // rounding of two knots, and j gaps of it drift from the stored knots as j grows
      inv_h[i] = T(G) / (ti[G + K] - ti[K]);
    }
    if (uniform) {
      double unit[2 * K + 2];  // integer knots: interval K is [K, K+1), of unit width
      for (int q = 0; q < 2 * K + 2; ++q) unit[q] = q;
      double N[K + 1][K + 1];
      piece_polynomials(unit, K, N);
      for (int r = 0; r <= K; ++r)
        for (int p = 0; p < K; ++p) unit_dpoly[p * kBasisLanes + r] = T((p + 1) * N[r][p + 1]);
      return;
    }
    bucket.assign(in * (nb + 1), 0);
    inv_bucket.assign(in, T(0));
    left.assign(in * G, T(0));
    inv_w.assign(in * G, T(0));
    poly.assign(in * G * (K + 1) * kBasisLanes, T(0));
    dpoly.assign(in * G * K * kBasisLanes, T(0));
    for (int64_t i = 0; i < in; ++i) {
      const T* ti = t + i * M;
      // bucket b covers [lo + b/ib, lo + (b+1)/ib); store the interval holding its left end
      inv_bucket[i] = T(nb) / (hi[i] - lo[i]);
      int64_t m = 0;
      for (int64_t b = 0; b <= nb; ++b) {
        const T edge = lo[i] + T(b) / inv_bucket[i];
        while (m < G - 1 && ti[K + m + 1] <= edge) ++m;
        bucket[i * (nb + 1) + b] = static_cast<int32_t>(m);
      }
      for (m = 0; m < G; ++m) interval_polynomials(ti, i, m);
    }
  }

  // Polynomial de Boor on interval j = K + m: N_d[r] = B_{j-d+r,d} as polynomials in u, with
  //   B_{q,d} = (x - t_q) / (t_{q+d} - t_q) B_{q,d-1} + (t_{q+d+1} - x) / (t_{q+d+1} - t_{q+1}) B_{q+1,d-1}
  // and x = t_j + w u, so each factor is linear in u. Exact; no fitting.
  void interval_polynomials(const T* t, int64_t i, int64_t m) {
    const int64_t j = K + m;
    const double w = double(t[j + 1]) - t[j];
    double N[K + 1][K + 1];  // [r][power]
    piece_polynomials(t, j, N);
    const int64_t cell = i * G + m;
    left[cell] = t[j];
    inv_w[cell] = T(1.0 / w);
    T* P = poly.data() + cell * (K + 1) * kBasisLanes;
    T* D = dpoly.data() + cell * K * kBasisLanes;
    for (int r = 0; r <= K; ++r) {
      for (int p = 0; p <= K; ++p) P[p * kBasisLanes + r] = T(N[r][p]);
      for (int p = 0; p < K; ++p) D[p * kBasisLanes + r] = T((p + 1) * N[r][p + 1] / w);
    }
  }

  // N[r][power]: the k+1 B-splines nonzero on [t_j, t_j+1) as polynomials in u
  template <typename Knot>
  static void piece_polynomials(const Knot* t, int64_t j, double (&N)[K + 1][K + 1]) {
    const double tj = t[j], w = double(t[j + 1]) - tj;
    for (auto& row : N)
      for (double& c : row) c = 0.0;
    N[0][0] = 1.0;
    for (int d = 1; d <= K; ++d) {
      double Q[K + 2][K + 1] = {};  // Q[r] = N_{d-1}[r-1], zero at both ends
      for (int r = 0; r < d; ++r)
        for (int p = 0; p <= K; ++p) Q[r + 1][p] = N[r][p];
      for (int r = 0; r <= d; ++r) {
        const int64_t q = j - d + r;
        const double den1 = double(t[q + d]) - t[q], den2 = double(t[q + d + 1]) - t[q + 1];
        const double a0 = (tj - t[q]) / den1, a1 = w / den1;
        const double b0 = (double(t[q + d + 1]) - tj) / den2, b1 = -w / den2;
        for (int p = 0; p <= K; ++p) {
          double c = a0 * Q[r][p] + b0 * Q[r + 1][p];
          if (p > 0) c += a1 * Q[r][p - 1] + b1 * Q[r + 1][p - 1];
          N[r][p] = c;
        }
      }
    }
  }
};

// uniform knots, local coordinate f in [0, 1], unrolled at compile time so that the loop over
// samples vectorises:  N_d[r] = ((f + d - r) Q[r] + (r + 1 - f) Q[r + 1]) / d,
// N_d[r] = B_{j-d+r,d}, Q the previous degree with a zero at each end.
template <typename T, int D>
inline void raise_cardinal(const T f, T* N, T* Q) {
  Q[0] = T(0);
#pragma GCC unroll 8
  for (int r = 0; r < D; ++r) Q[r + 1] = N[r];
  Q[D + 1] = T(0);
  constexpr T inv_d = T(1) / T(D);
#pragma GCC unroll 8
  for (int r = 0; r <= D; ++r) N[r] = ((f + T(D - r)) * Q[r] + (T(r + 1) - f) * Q[r + 1]) * inv_d;
}

template <typename T, int K, int D = 1>
inline void cardinal(const T f, T* N, T* Q) {
  if constexpr (D <= K) {
    raise_cardinal<T, D>(f, N, Q);
    cardinal<T, K, D + 1>(f, N, Q);
  }
}

// Basis of order K at the n samples xv[0..n) of input i: value r of sample b in v[r * kBlock + b],
// its x-derivative in dv[r * kBlock + b], the index of basis function r = 0 in start[b], and
// if asked the local coordinate in that interval where the pieces are evaluated in local[b]
// (f for uniform knots, u for general ones).
// Outside the domain the end polynomial pieces continue for one interval (to xc), then the
// values continue linearly: v(x) = v(xc) + dv(xc) (x - xc).
template <typename T, int K>
void block_basis(const T* __restrict xv, int n, const Geometry<T, K>& g, int64_t i, T* __restrict v,
                 T* __restrict dv, int32_t* __restrict start, T* __restrict local = nullptr) {
  const T lo = g.lo[i], hi = g.hi[i];
  if (g.uniform) {  // vectorised over samples
    const T ih = g.inv_h[i];
    const int32_t last = static_cast<int32_t>(g.G - 1);
    const T reach_lo = lo - T(1) / ih, reach_hi = hi + T(1) / ih;  // end pieces reach one interval out
#pragma GCC ivdep
    for (int b = 0; b < n; ++b) {
      const T x0 = xv[b];
      const T xl = x0 > lo ? x0 : lo;
      const T xd = xl < hi ? xl : hi;  // inside the domain: picks the interval
      int32_t j = static_cast<int32_t>((xd - lo) * ih);  // >= 0: truncation is floor
      j = j < last ? j : last;
      const T xr = x0 > reach_lo ? x0 : reach_lo;
      const T xc = xr < reach_hi ? xr : reach_hi;  // where the polynomial piece is evaluated
      const T f = (xc - lo) * ih - T(j);  // in [-1, 2]: the end pieces continue
      T N[K + 2], Q[K + 3];
      N[0] = T(1);
      cardinal<T, K>(f, N, Q);
      const T dx = x0 - xc;  // zero inside the domain
#pragma GCC unroll 8
      for (int r = 0; r <= K; ++r) {
        const T s = (Q[r] - Q[r + 1]) * ih;
        dv[r * kBlock + b] = s;
        v[r * kBlock + b] = N[r] + s * dx;
      }
      start[b] = j;
      if (local) local[b] = f;
    }
    return;
  }
  // general knots: one short vector per sample (the k+1 basis functions in its lanes)
  const int32_t* bk = g.bucket.data() + i * (g.nb + 1);
  const T ib = g.inv_bucket[i];
  const int64_t cells = i * g.G;
  const T* t = g.left.data() + cells;
  // the end pieces reach one interval beyond the domain
  const T reach_lo = lo - T(1) / g.inv_w[cells], reach_hi = hi + T(1) / g.inv_w[cells + g.G - 1];
  for (int b = 0; b < n; ++b) {
    const T x0 = xv[b];
    const T xl = x0 > lo ? x0 : lo;
    const T xd = xl < hi ? xl : hi;  // inside the domain: picks the interval
    int64_t q = static_cast<int64_t>((xd - lo) * ib);
    q = q < g.nb ? q : g.nb;
    int32_t m = bk[q];  // a step either way absorbs rounding at the bucket edges
    while (m > 0 && t[m] > xd) --m;
    while (m < g.G - 1 && t[m + 1] <= xd) ++m;
    const T xr = x0 > reach_lo ? x0 : reach_lo;
    const T xc = xr < reach_hi ? xr : reach_hi;
    const T u = (xc - t[m]) * g.inv_w[cells + m];  // in [-1, 2] at the ends
    const T* P = g.poly.data() + (cells + m) * (K + 1) * kBasisLanes;
    const T* D = g.dpoly.data() + (cells + m) * K * kBasisLanes;
    BasisVec<T> val, der, c;
    std::memcpy(&val, P + K * kBasisLanes, sizeof(val));
#pragma GCC unroll 8
    for (int p = K - 1; p >= 0; --p) {
      std::memcpy(&c, P + p * kBasisLanes, sizeof(c));
      val = val * u + c;
    }
    std::memcpy(&der, D + (K - 1) * kBasisLanes, sizeof(der));
#pragma GCC unroll 8
    for (int p = K - 2; p >= 0; --p) {
      std::memcpy(&c, D + p * kBasisLanes, sizeof(c));
      der = der * u + c;
    }
    val += der * (x0 - xc);
#pragma GCC unroll 8
    for (int r = 0; r <= K; ++r) {
      v[r * kBlock + b] = val[r];
      dv[r * kBlock + b] = der[r];
    }
    start[b] = m;
    if (local) local[b] = u;
  }
}

// exp that vectorises (std::exp does not without -ffast-math): 2^k * p(x - k ln2), with a
// Taylor polynomial accurate to about 1 ulp on |r| <= ln2 / 2.
template <typename T>
inline T vexp(T x) {
  using Bits = std::conditional_t<std::is_same_v<T, double>, int64_t, int32_t>;
  constexpr int kMant = std::is_same_v<T, double> ? 52 : 23;
  constexpr int kBias = std::is_same_v<T, double> ? 1023 : 127;
  constexpr T kMax = std::is_same_v<T, double> ? T(708) : T(87);
  x = x < kMax ? x : kMax;
  x = x > -kMax ? x : -kMax;
  const T kf = std::nearbyint(x * T(1.4426950408889634));
  const T r = (x - kf * T(0.693145751953125)) - kf * T(1.4286068203094173e-06);
  T p;
  if constexpr (std::is_same_v<T, double>) {
    p = T(1.0 / 479001600);
    p = p * r + T(1.0 / 39916800); p = p * r + T(1.0 / 3628800); p = p * r + T(1.0 / 362880);
    p = p * r + T(1.0 / 40320); p = p * r + T(1.0 / 5040); p = p * r + T(1.0 / 720);
    p = p * r + T(1.0 / 120); p = p * r + T(1.0 / 24); p = p * r + T(1.0 / 6);
    p = p * r + T(0.5); p = p * r + T(1); p = p * r + T(1);
  } else {
    p = T(1.0 / 5040);
    p = p * r + T(1.0 / 720); p = p * r + T(1.0 / 120); p = p * r + T(1.0 / 24);
    p = p * r + T(1.0 / 6); p = p * r + T(0.5); p = p * r + T(1); p = p * r + T(1);
  }
  const Bits e = (static_cast<Bits>(kf) + kBias) << kMant;
  T scale;
  std::memcpy(&scale, &e, sizeof(T));
  return p * scale;
}

template <typename T>
inline void base_block(int64_t kind, const T* __restrict x, int n, T* __restrict value, T* __restrict slope) {
  switch (kind) {
    case kIdentity:
      for (int b = 0; b < n; ++b) { value[b] = x[b]; slope[b] = T(1); }
      return;
    case kSilu:
#pragma GCC ivdep
      for (int b = 0; b < n; ++b) {
        const T s = T(1) / (T(1) + vexp(-x[b]));
        value[b] = x[b] * s;
        slope[b] = s * (T(1) + x[b] * (T(1) - s));
      }
      return;
    case kTanh:
#pragma GCC ivdep
      for (int b = 0; b < n; ++b) {  // tanh x = sign(x) (1 - e) / (1 + e), e = exp(-2|x|)
        const T a = x[b] < T(0) ? -x[b] : x[b];
        const T e = vexp(T(-2) * a);
        const T th = (T(1) - e) / (T(1) + e);
        value[b] = x[b] < T(0) ? -th : th;
        slope[b] = T(1) - th * th;
      }
      return;
    default:
      for (int b = 0; b < n; ++b) { value[b] = T(0); slope[b] = T(0); }
  }
}

// Rows of outputs are padded to whole vectors (kLanes<T> values, simd.h), so the row
// operations below are a fixed number of full-width vector FMAs even for one or five outputs.

struct Dims {
  int64_t N, in, M, K, out, G;
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

// Basis of samples n0 .. n0+n of input i, sample-major: vals[b * (K+1) + r], the base branch
// base[b], the interval start[b]; where given, also the x-derivatives dvals (like vals), the
// base branch's slope[b] and the local coordinate local[b] (see block_basis).
template <typename T, int K>
void samples_basis(const Geometry<T, K>& geo, const T* X, int64_t in, int64_t i, int64_t n0, int64_t n,
                   int64_t base_kind, T* vals, T* base, int32_t* start, T* dvals = nullptr, T* slope = nullptr,
                   T* local = nullptr) {
  alignas(64) T v[(K + 1) * kBlock], dv[(K + 1) * kBlock], xv[kBlock], bb[kBlock], sb[kBlock];
  alignas(64) int32_t st[kBlock];
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int m = static_cast<int>(std::min<int64_t>(kBlock, n - b0));
    for (int b = 0; b < m; ++b) xv[b] = X[(n0 + b0 + b) * in + i];
    block_basis<T, K>(xv, m, geo, i, v, dv, st, local ? local + b0 : nullptr);
    base_block<T>(base_kind, xv, m, bb, sb);
    for (int b = 0; b < m; ++b) {
#pragma GCC unroll 8
      for (int r = 0; r <= K; ++r) vals[(b0 + b) * (K + 1) + r] = v[r * kBlock + b];
      base[b0 + b] = bb[b];
      start[b0 + b] = st[b];
    }
    if (dvals)
      for (int b = 0; b < m; ++b) {
#pragma GCC unroll 8
        for (int r = 0; r <= K; ++r) dvals[(b0 + b) * (K + 1) + r] = dv[r * kBlock + b];
        slope[b0 + b] = sb[b];
      }
  }
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

// |v| lane by lane (the sign bit cleared)
template <typename T>
inline Vec<T> vabs(const Vec<T>& v) {
  using Int = std::conditional_t<std::is_same_v<T, double>, int64_t, int32_t>;
  typedef Int Bits __attribute__((vector_size(kVectorBytes)));
  return (Vec<T>)((Bits)v & (Bits{} + std::numeric_limits<Int>::max()));
}

// Sums over samples whose order must not depend on the number of threads (the coefficient
// gradients of layers with few inputs, the regulariser's |phi| sums): the items are cut into
// at most `groups` groups by the data size alone, each group sums into its own partial in a
// fixed order, and the partials are added in group order (add_partials). kGroups groups keep
// that many threads busy.
constexpr int64_t kGroups = 16;
struct Split {
  int64_t count, size;  // groups, items per group (the last may hold fewer)
};
inline Split split(int64_t items, int64_t groups, int64_t align = 1) {
  const int64_t g = std::clamp<int64_t>(groups, 1, std::max<int64_t>(items, 1));
  int64_t size = std::max<int64_t>(1, (items + g - 1) / g);
  size = (size + align - 1) / align * align;
  return {std::max<int64_t>(1, (items + size - 1) / size), size};
}

// Grain of a parallel loop whose items cost about `work` multiply-adds each: tasks of under
// kTaskWork are not split off (a parallel region costs microseconds, and far more when the
// cores are busy with other work). The results never depend on the split.
constexpr int64_t kTaskWork = 131072;
inline int64_t grain(int64_t work) { return std::max<int64_t>(1, kTaskWork / std::max<int64_t>(1, work)); }

// out[q] = parts[0][q] + parts[1][q] + ... (count partials of `size` values), in that order
template <typename T>
inline void add_partials(const T* parts, int64_t count, int64_t size, T* out) {
  std::copy(parts, parts + size, out);
  for (int64_t p = 1; p < count; ++p)
    for (int64_t q = 0; q < size; ++q) out[q] += parts[p * size + q];
}

// Register blocks (simd.h), in output vectors, of the loops below that hold coefficient rows:
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
  constexpr int L = kLanes<T>;
  Vec<T> Cr[CH][K + 1], Wc[CH], A[CH];
#pragma GCC unroll 8
  for (int c = 0; c < CH; ++c) {
    Wc[c] = Wi ? load(Wi + c * L) : Vec<T>{};
    A[c] = Vec<T>{};
#pragma GCC unroll 8
    for (int r = 0; r <= K; ++r) Cr[c][r] = load(Crow + r * c_stride + c * L);
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
        store(y + c * L, load(y + c * L) + phi);
        A[c] += vabs<T>(phi);
      } else {
        Vec<T> acc = load(y + c * L) + bv * Wc[c];
#pragma GCC unroll 8
        for (int r = 0; r <= K; ++r) acc += a[r] * Cr[c][r];
        store(y + c * L, acc);
      }
    }
  }
  if constexpr (kAbs) {
#pragma GCC unroll 8
    for (int c = 0; c < CH; ++c) store(absum + c * L, load(absum + c * L) + A[c]);
  }
}

// interval_rows_update over `chunks` vectors of outputs, a register block at a time; absum
// given: with the |phi| sums
template <typename T, int K>
inline void rows_update(int64_t chunks, T* rows, int64_t row_stride, const T* Crow, int64_t c_stride, const T* Wi,
                        const T* vals, const T* base, const int32_t* members, int32_t count, T* absum) {
  constexpr int L = kLanes<T>;
  auto blocks = [&](auto abs) {
    constexpr bool kAbs = decltype(abs)::value;
    constexpr int B = kAbs ? kRowsBlockAbs<K> : kRowsBlock<K>;
    for (int64_t c = 0; c < chunks; c += B)
      with_block<B>(chunks - c, [&](auto ch) {
        interval_rows_update<T, K, decltype(ch)::value, kAbs>(rows + c * L, row_stride, Crow + c * L, c_stride,
                                                             Wi ? Wi + c * L : nullptr, vals, base, members, count,
                                                             kAbs ? absum + c * L : nullptr);
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
  constexpr int L = kLanes<T>;
  constexpr int kBlockVectors = kRowsBlock<K>;
  // Samples per block: the basis buffer (in x S x (K+1)) bounded; a multiple of kBlock.
  const int64_t S = std::min<int64_t>(std::clamp<int64_t>((1 << 18) / d.in, 8 * kBlock, 4096) / kBlock * kBlock,
                                      (d.N + kBlock - 1) / kBlock * kBlock);
  // Outputs per slice: all of them up to 2 KB (256 float64), in register blocks. Each slice
  // reads the whole basis again, and more samples per part mean more samples per interval for
  // the rows in registers: so slices as wide and parts as long as leave a task for every
  // thread. (Measured with 64-byte vectors at 1024 x 256 -> 256, float64, G=100: slices of
  // 2 KB x 512 samples 17 ms; 1 KB x 512, 27 ms; 512 B x 1024, 31 ms.)
  constexpr int64_t kSliceVectors = std::max<int64_t>(kBlockVectors, 2048 / kVectorBytes / kBlockVectors * kBlockVectors);
  const int64_t kSlice = std::min<int64_t>((d.chunks + kBlockVectors - 1) / kBlockVectors * kBlockVectors, kSliceVectors);
  const int64_t slices = (d.chunks + kSlice - 1) / kSlice;
  // with the |phi| sums the parts are fixed by the data size (their partial sums are added in order)
  const int64_t tasks = l1 ? kGroups : threads;
  const int64_t want_parts = std::max<int64_t>(1, (tasks + slices - 1) / slices);
  const int64_t part_len = std::max<int64_t>(kBlock, (S / want_parts + kBlock - 1) / kBlock * kBlock);
  const int64_t parts = (S + part_len - 1) / part_len;
  auto& w = slice_work<T>();
  w.vals.resize(d.in * S * (K + 1));
  w.base.resize(d.in * S);
  w.order.resize(d.in * S);
  w.count.resize(d.in * parts * (d.G + 1));
  if (l1) w.abs_parts.assign(parts * d.in * d.outp, T(0));  // (parts, in, outp)
  for (int64_t n0 = 0; n0 < d.N; n0 += S) {
    const int64_t n = std::min(S, d.N - n0);
    // 1. per input: basis of the block, and each part's samples grouped by interval
    parallel_for(0, d.in, 1, [&](int64_t i0, int64_t i1) {
      std::vector<int32_t> start(S), next(d.G);
      for (int64_t i = i0; i < i1; ++i) {
        samples_basis<T, K>(geo, X, d.in, i, n0, n, base_kind, w.vals.data() + i * S * (K + 1),
                            w.base.data() + i * S, start.data());
        for (int64_t p = 0; p < parts; ++p) {
          const int64_t lo = std::min(n, p * part_len), hi = std::min(n, lo + part_len);
          int32_t* count = w.count.data() + (i * parts + p) * (d.G + 1);
          group_by_interval(start.data() + lo, hi - lo, d.G, count, next.data(), w.order.data() + i * S + lo);
        }
      }
    });
    // 2. per (slice, part): all inputs into the part's output tile
    parallel_for(0, slices * parts, 1, [&](int64_t t0, int64_t t1) {
      static thread_local std::vector<T> tile;  // kept: a fresh one would fault its pages in per call
      tile.resize(part_len * kSlice * L);
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t sl = task / parts, p = task % parts;
        const int64_t lo = std::min(n, p * part_len), hi = std::min(n, lo + part_len);
        if (lo == hi) continue;
        const int64_t c0 = sl * kSlice, ch = std::min(kSlice, d.chunks - c0);
        const int64_t width = ch * L;  // outputs of the slice (padded)
        for (int64_t b = lo; b < hi; ++b) std::copy(B + c0 * L, B + c0 * L + width, tile.data() + (b - lo) * width);
        for (int64_t i = 0; i < d.in; ++i) {
          const T* Ci = C + i * d.K * d.outp + c0 * L;
          const T* Wi = base_kind != kZero ? W + i * d.outp + c0 * L : nullptr;
          T* absum = l1 ? w.abs_parts.data() + (p * d.in + i) * d.outp + c0 * L : nullptr;
          const int32_t* count = w.count.data() + (i * parts + p) * (d.G + 1);
          const int32_t* order = w.order.data() + i * S + lo;
          // members are indices within the part; vals and base shifted to the part's start
          const T* vals = w.vals.data() + (i * S + lo) * (K + 1);
          const T* base = w.base.data() + i * S + lo;
          for (int64_t m = 0; m < d.G; ++m) {
            if (count[m] == count[m + 1]) continue;
            rows_update<T, K>(ch, tile.data(), width, Ci + m * d.outp, d.outp, Wi, vals, base, order + count[m],
                              count[m + 1] - count[m], absum);
          }
        }
        for (int64_t b = lo; b < hi; ++b) {
          const int64_t o0 = c0 * L, o1 = std::min(d.out, o0 + width);
          if (o1 > o0) std::copy(tile.data() + (b - lo) * width, tile.data() + (b - lo) * width + (o1 - o0), Y + (n0 + b) * d.out + o0);
        }
      }
    });
  }
  if (l1) add_partials(w.abs_parts.data(), parts, d.in * d.outp, l1);
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
      const T* c = C + i * d.K;
      const T w = W[i];
      auto edges = [&](auto abs) {  // acc += phi (and absum += |phi|) lane by lane
        constexpr bool kAbs = decltype(abs)::value;
        T* ab = kAbs ? absum + i * kBlock : nullptr;
#pragma GCC ivdep
        for (int b = 0; b < n; ++b) {
          T s = base[b] * w;
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
    std::vector<T> lanes(d.in * kBlock);
    add_partials(parts.data(), g.count, d.in * kBlock, lanes.data());
    for (int64_t i = 0; i < d.in; ++i) {
      T s = T(0);
      for (int b = 0; b < kBlock; ++b) s += lanes[i * kBlock + b];
      l1[i] = s;
    }
    return;
  }
  // Several outputs: a task owns a super-block of S samples whose output rows stay in L1.
  // Per input, the samples are grouped by spline interval (counting sort) and each group is
  // served with the interval's k+1 coefficient rows held in registers, a register block of
  // output vectors at a time. That pays when intervals hold a few samples each; otherwise
  // (wide layers on fine grids) forward_by_slice takes larger blocks of samples against slices
  // of the outputs.
  const int64_t S = std::clamp<int64_t>((32768 / (d.outp * int64_t(sizeof(T)))) / kBlock * kBlock, kBlock, 8 * kBlock);
  if (S < 2 * d.G) {
    forward_by_slice<T, K>(parallel_for, d, geo, X, C, W, B, Y, base_kind, threads, l1);
    return;
  }
  const int64_t supers = (d.N + S - 1) / S;
  const int64_t super_work = S * d.in * (K + 2) * d.outp;
  // super-blocks [s0, s1); absum given (in, outp): |phi| sums added to it
  auto run = [&](int64_t s0, int64_t s1, T* absum) {
    std::vector<T> rows(S * d.outp), vals((K + 1) * S), base(S);
    std::vector<int32_t> start(S), order(S), count(d.G + 1), next(d.G);
    for (int64_t sup = s0; sup < s1; ++sup) {
      const int64_t n0 = sup * S;
      const int64_t n = std::min<int64_t>(S, d.N - n0);
      for (int64_t b = 0; b < n; ++b) std::copy(B, B + d.outp, rows.data() + b * d.outp);
      for (int64_t i = 0; i < d.in; ++i) {
        samples_basis<T, K>(geo, X, d.in, i, n0, n, base_kind, vals.data(), base.data(), start.data());
        group_by_interval(start.data(), n, d.G, count.data(), next.data(), order.data());
        const T* Ci = C + i * d.K * d.outp;
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

// Part of d loss / d x for the samples `members` of one interval, from CH vectors of outputs
// (the pointers start at the first). On the interval, the x-derivative of the edge row is a
// polynomial in the local coordinate: sum_p local^p E_p + slope * W, with
// E_p = scale * sum_r D[p][r] * (coefficient row r), formed once in registers (the
// derivatives' polynomial coefficients D are (K, 8), [power][basis function]). Per sample
// and vector that is K+1 FMAs (Horner, base branch, product) instead of K+3. The product with the output
// gradient is summed into psum[q], one vector per member (set instead when first); when the
// group is all outputs, GX is given and the sums go straight to GX[b * gx_stride].
template <typename T, int K, int CH>
__attribute__((always_inline)) inline void interval_input_grad_part(
    int64_t outp, const T* __restrict Crow, const T* __restrict Wi, const T* GY, const T* D, T scale,
    const T* local, const T* slope, const int32_t* members, int32_t count, bool with_base, bool first,
    Vec<T>* __restrict psum, T* GX, int64_t gx_stride) {
  constexpr int L = kLanes<T>;
  Vec<T> E[CH][K], Wc[CH];
#pragma GCC unroll 8
  for (int c = 0; c < CH; ++c) {
    Wc[c] = with_base ? load(Wi + c * L) : Vec<T>{};
    Vec<T> rows[K + 1];
#pragma GCC unroll 8
    for (int r = 0; r <= K; ++r) rows[r] = load(Crow + r * outp + c * L);
#pragma GCC unroll 8
    for (int p = 0; p < K; ++p) {
      Vec<T> e = Vec<T>{};
#pragma GCC unroll 8
      for (int r = 0; r <= K; ++r) e += (scale * D[p * kBasisLanes + r]) * rows[r];
      E[c][p] = e;
    }
  }
  for (int32_t q = 0; q < count; ++q) {
    const int64_t b = members[q];
    const T* g = GY + b * outp;
    const T u = local[b], sl = slope[b];
    Vec<T> sum = first ? Vec<T>{} : psum[q];
#pragma GCC unroll 8
    for (int c = 0; c < CH; ++c) {
      Vec<T> acc = E[c][K - 1];
#pragma GCC unroll 8
      for (int p = K - 2; p >= 0; --p) acc = acc * u + E[c][p];
      acc += sl * Wc[c];
      sum += acc * load(g + c * L);
    }
    if (GX)
      GX[b * gx_stride] = hsum<T>(sum);
    else
      psum[q] = sum;
  }
}

// d loss / d x for the samples `members` of one interval, over all outputs a register block of
// vectors at a time (each block's polynomial coefficients formed once in registers); GX is
// strided by d.in. psum holds a vector per member.
template <typename T, int K>
inline void interval_input_grad(const Dims& d, const T* Crow, const T* Wi, const T* GY, const T* D, T scale,
                                const T* local, const T* slope, const int32_t* members, int32_t count,
                                int64_t base_kind, T* GX, Vec<T>* psum) {
  constexpr int L = kLanes<T>;
  constexpr int B = kGradBlock<K>;
  const bool with_base = base_kind != kZero;
  T* direct = d.chunks <= B ? GX : nullptr;  // one block: no partial sums
  for (int64_t c = 0; c < d.chunks; c += B)
    with_block<B>(d.chunks - c, [&](auto ch) {
      interval_input_grad_part<T, K, decltype(ch)::value>(d.outp, Crow + c * L, Wi + c * L, GY + c * L, D, scale,
                                                          local, slope, members, count, with_base, c == 0, psum,
                                                          direct, d.in);
    });
  if (!direct)
    for (int32_t q = 0; q < count; ++q) GX[members[q] * d.in] = hsum<T>(psum[q]);
}

// The output gradient the edges of one input see on the `members` of an interval when the
// sparsity regulariser is on, for CH vectors of outputs:
//   geff[b] = GY[b] + ws * sign(phi_b),   phi_b = sum_r vals[b][r] * Crow[r] + base[b] * Wi,
// ws the loss's derivative with respect to each edge's |phi| (sign(0) = 0, as autograd's).
// Rows and weights in registers; rows of GY and geff are outp apart.
template <typename T, int K, int CH>
__attribute__((always_inline)) inline void interval_sign_grad(int64_t outp, const T* __restrict Crow,
                                                              const T* __restrict Wi, const T* __restrict ws,
                                                              const T* GY, const T* vals, const T* base,
                                                              const int32_t* members, int32_t count,
                                                              T* __restrict geff) {
  constexpr int L = kLanes<T>;
  Vec<T> Cr[CH][K + 1], Wc[CH], Sc[CH];
#pragma GCC unroll 8
  for (int c = 0; c < CH; ++c) {
    Wc[c] = load(Wi + c * L);
    Sc[c] = load(ws + c * L);
#pragma GCC unroll 8
    for (int r = 0; r <= K; ++r) Cr[c][r] = load(Crow + r * outp + c * L);
  }
  const Vec<T> zero = Vec<T>{};
  for (int32_t q = 0; q < count; ++q) {
    const int64_t b = members[q];
    const T* a = vals + b * (K + 1);
    const T bv = base[b];
#pragma GCC unroll 8
    for (int c = 0; c < CH; ++c) {
      Vec<T> phi = bv * Wc[c];
#pragma GCC unroll 8
      for (int r = 0; r <= K; ++r) phi += a[r] * Cr[c][r];
      const Vec<T> g = load(GY + b * outp + c * L) + ((phi > zero ? Sc[c] : zero) - (phi < zero ? Sc[c] : zero));
      store(geff + b * outp + c * L, g);
    }
  }
}

// Per-input access for the backward by interval: prepare(i, C_i, W_i) writes input i's
// effective coefficient rows (K x outp) and base weights (outp), finish(i, gc_i, gw_i) takes
// their gradients. Input by input, these stay in L2 instead of whole-layer arrays in memory.
template <typename T>
struct InputIO {
  std::function<void(int64_t, T*, T*)> prepare;
  std::function<void(int64_t, const T*, const T*)> finish;
};

// Buffers of the calling thread for the backward by interval, kept across calls (sized by
// the largest seen): fresh large allocations fault their pages in on every call.
template <typename T>
struct IntervalWork {
  std::vector<T> vals, base, slope, dvals, local, geff;
  std::vector<int32_t> start, order, count, next;
  std::vector<Vec<T>> psum;  // per member of an interval: partial d loss / d x
  std::vector<T> params, grads;  // one input's C, W and their gradients
};
template <typename T>
IntervalWork<T>& interval_work() {
  static thread_local IntervalWork<T> w;
  return w;
}

// Backward of input i on the samples [s0, s1), for layers with several outputs or one: the
// samples of a chunk are grouped by the spline interval they fall in (counting sort), so that
// the coefficient gradient of an interval's k+1 rows is summed in registers over its samples
// and written once, instead of a load and a store of each row for every sample.
// Ci (K, outp) and Wi (outp): the input's effective coefficient rows and base weights; their
// gradients are added to gc (K, outp) and gw (outp); GX[n * in + i] is written. ws (outp) or
// null: the regulariser's weight of each edge's |phi| (interval_sign_grad).
template <typename T, int K>
void backward_by_interval(const Dims& d, const Geometry<T, K>& geo, const T* GY, const T* X, const T* Ci,
                          const T* Wi, const T* ws, int64_t i, int64_t s0, int64_t s1, T* gc, T* gw, T* GX,
                          int64_t base_kind) {
  constexpr int64_t kChunk = 2048;  // samples per pass (bounds the buffers)
  constexpr int L = kLanes<T>;
  const int64_t S = std::max<int64_t>(1, std::min<int64_t>(kChunk, s1 - s0));
  auto& w = interval_work<T>();
  w.vals.resize((K + 1) * S), w.dvals.resize((K + 1) * S), w.base.resize(S), w.slope.resize(S), w.local.resize(S);
  w.start.resize(S), w.order.resize(S), w.count.resize(d.G + 1), w.next.resize(d.G);
  if (GX) w.psum.resize(S);
  if (ws && d.outp > 1) w.geff.resize(S * d.outp);
  const T *vals = w.vals.data(), *dvals = w.dvals.data(), *base = w.base.data(), *slope = w.slope.data();
  const int32_t *order = w.order.data(), *count = w.count.data();
  for (int64_t n0 = s0; n0 < s1; n0 += S) {
    const int64_t n = std::min(S, s1 - n0);
    const T* G = GY + n0 * d.outp;  // the chunk's output gradient
    // 1. basis, slopes and base branch of every sample of the chunk
    samples_basis<T, K>(geo, X, d.in, i, n0, n, base_kind, w.vals.data(), w.base.data(), w.start.data(),
                        w.dvals.data(), w.slope.data(), w.local.data());
    // 2. samples grouped by interval
    group_by_interval(w.start.data(), n, d.G, w.count.data(), w.next.data(), w.order.data());
    // 3. per interval: gradients of its k+1 coefficient rows, and of x
    for (int64_t m = 0; m < d.G; ++m) {
      const int32_t lo = count[m], hi = count[m + 1];
      if (lo == hi) continue;
      const int64_t row = m * d.outp;
      if (d.outp == 1) {  // one output: scalar sums (rows are single values)
        T acc[K + 1] = {}, accw = T(0);
        const T wb = Wi[0], sw = ws ? ws[0] : T(0);
        for (int32_t q = lo; q < hi; ++q) {
          const int64_t b = order[q];
          const T* a = vals + b * (K + 1);
          const T* da = dvals + b * (K + 1);
          T g = G[b];
          if (ws) {  // the regulariser's share: sw * sign(phi)
            T phi = base[b] * wb;
#pragma GCC unroll 8
            for (int r = 0; r <= K; ++r) phi += a[r] * Ci[m + r];
            g += (phi > T(0) ? sw : T(0)) - (phi < T(0) ? sw : T(0));
          }
          T dphi = base_kind != kZero ? slope[b] * wb : T(0);
#pragma GCC unroll 8
          for (int r = 0; r <= K; ++r) {
            acc[r] += a[r] * g;
            dphi += da[r] * Ci[m + r];
          }
          accw += base[b] * g;
          if (GX) GX[(n0 + b) * d.in + i] = dphi * g;
        }
#pragma GCC unroll 8
        for (int r = 0; r <= K; ++r) gc[m + r] += acc[r];
        gw[0] += accw;
        continue;
      }
      const int32_t* members = order + lo;
      const T* Gm = G;  // the output gradient the edges see
      if (ws) {
        constexpr int B = kSignBlock<K>;
        for (int64_t c = 0; c < d.chunks; c += B)
          with_block<B>(d.chunks - c, [&](auto ch) {
            interval_sign_grad<T, K, decltype(ch)::value>(d.outp, Ci + row + c * L, Wi + c * L, ws + c * L,
                                                          G + c * L, vals, base, members, hi - lo,
                                                          w.geff.data() + c * L);
          });
        Gm = w.geff.data();
      }
      for (int64_t c = 0; c < d.chunks; ++c) {
        const int64_t o = c * L;
        Vec<T> acc[K + 1] = {}, accw = Vec<T>{};
        for (int32_t q = lo; q < hi; ++q) {
          const int64_t b = order[q];
          const Vec<T> gv = load(Gm + b * d.outp + o);
          const T* a = vals + b * (K + 1);
#pragma GCC unroll 8
          for (int r = 0; r <= K; ++r) acc[r] += a[r] * gv;
          accw += base[b] * gv;
        }
#pragma GCC unroll 8
        for (int r = 0; r <= K; ++r) store(gc + row + r * d.outp + o, load(gc + row + r * d.outp + o) + acc[r]);
        if (base_kind != kZero) store(gw + o, load(gw + o) + accw);
      }
      if (GX) {
        const T* D = geo.uniform ? geo.unit_dpoly : geo.dpoly.data() + (i * d.G + m) * K * kBasisLanes;
        const T scale = geo.uniform ? geo.inv_h[i] : T(1);
        interval_input_grad<T, K>(d, Ci + row, Wi, Gm, D, scale, w.local.data(), slope, members, hi - lo, base_kind,
                                  GX + n0 * d.in + i, w.psum.data());
      }
    }
  }
}

// Backward with the parameter gradients: tasks own (input, group of samples). The groups are
// fixed by the data size (split: one group per input when there are inputs enough for
// kGroups threads, else up to kGroups / in groups of at least 256 samples); each group's
// gradients are summed in a buffer of their own and the groups added in order, so that the
// result does not depend on the number of threads. Per input, its coefficients and gradients
// go through io; WS (in, outp) or null: the regulariser's edge weights (backward_by_interval).
template <typename T, int K, typename ParallelFor>
void backward_by_input(ParallelFor&& parallel_for, const Dims& d, const T* GY, const T* X, const T* Tk,
                       const InputIO<T>& io, const T* WS, T* GX, bool uniform, int64_t base_kind) {
  const Geometry<T, K> geo(Tk, d.in, d.M, uniform);
  const Split groups = split(d.N, (kGroups + d.in - 1) / d.in, 256);
  const int64_t Q = groups.count, c_size = d.K * d.outp, g_size = c_size + d.outp;  // one input's gradients
  std::vector<T> partial(Q > 1 ? d.in * Q * g_size : 0);  // (in, Q, g_size)
  const int64_t task_work = groups.size * (K + 1) * d.outp * (GX ? 3 : 2);  // coefficient (and input) gradients
  parallel_for(0, d.in * Q, grain(task_work), [&](int64_t t0, int64_t t1) {
    auto& w = interval_work<T>();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i = t / Q, q = t % Q;
      w.params.resize(g_size);
      io.prepare(i, w.params.data(), w.params.data() + c_size);
      T* g = Q > 1 ? partial.data() + t * g_size : (w.grads.resize(g_size), w.grads.data());
      std::fill(g, g + g_size, T(0));
      backward_by_interval<T, K>(d, geo, GY, X, w.params.data(), w.params.data() + c_size, WS ? WS + i * d.outp : nullptr,
                                 i, q * groups.size, std::min(d.N, (q + 1) * groups.size), g, g + c_size, GX, base_kind);
      if (Q == 1) io.finish(i, g, g + c_size);
    }
  });
  if (Q > 1)
    parallel_for(0, d.in, grain(Q * g_size), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T* g = partial.data() + i * Q * g_size;
        for (int64_t q = 1; q < Q; ++q)
          for (int64_t v = 0; v < g_size; ++v) g[v] += g[q * g_size + v];
        io.finish(i, g, g + c_size);
      }
    });
}

// d loss / d x alone (no parameter gradients): every (sample, input) is independent. Tasks own
// blocks of samples; per input and block the basis is computed once. GY is the padded (N, outp)
// output gradient; C (in, K, outp), W (in, outp) the effective parameters.
template <typename T, int K, typename ParallelFor>
void input_grad_only(ParallelFor&& parallel_for, const Dims& d, const T* GY, const T* X, const T* Tk, const T* C,
                     const T* W, T* GX, bool uniform, int64_t base_kind) {
  const Geometry<T, K> geo(Tk, d.in, d.M, uniform);
  const int64_t blocks = (d.N + kBlock - 1) / kBlock;
  const int64_t work = std::max<int64_t>(1, kBlock * d.in * (K + 2) * d.outp);
  parallel_for(0, blocks, grain(work), [&](int64_t blk0, int64_t blk1) {
    alignas(64) T v[(K + 1) * kBlock], dv[(K + 1) * kBlock], xv[kBlock], base[kBlock], slope[kBlock];
    alignas(64) int32_t start[kBlock];
    for (int64_t blk = blk0; blk < blk1; ++blk) {
      const int64_t n0 = blk * kBlock;
      const int n = static_cast<int>(std::min<int64_t>(kBlock, d.N - n0));
      for (int64_t i = 0; i < d.in; ++i) {
        for (int b = 0; b < n; ++b) xv[b] = X[(n0 + b) * d.in + i];
        block_basis<T, K>(xv, n, geo, i, v, dv, start);
        base_block<T>(base_kind, xv, n, base, slope);  // zeros for kZero
        const T* Ci = C + i * d.K * d.outp;
        const T* Wi = W + i * d.outp;
        if (d.outp == 1) {  // one output: vectorised over samples
          const T* g = GY + n0;
#pragma GCC ivdep
          for (int b = 0; b < n; ++b) {
            T s = slope[b] * Wi[0];
#pragma GCC unroll 8
            for (int r = 0; r <= K; ++r) s += dv[r * kBlock + b] * Ci[start[b] + r];
            GX[(n0 + b) * d.in + i] = s * g[b];
          }
          continue;
        }
        for (int b = 0; b < n; ++b) {  // d phi / dx row, then one dot with the output gradient
          const T* g = GY + (n0 + b) * d.outp;
          const int64_t row = static_cast<int64_t>(start[b]) * d.outp;
          Vec<T> s = Vec<T>{};
          for (int64_t c = 0; c < d.chunks; ++c) {
            const int64_t o = c * kLanes<T>;
            Vec<T> acc = base_kind != kZero ? slope[b] * load(Wi + o) : Vec<T>{};
#pragma GCC unroll 8
            for (int r = 0; r <= K; ++r) acc += dv[r * kBlock + b] * load(Ci + row + r * d.outp + o);
            s += acc * load(g + o);
          }
          GX[(n0 + b) * d.in + i] = hsum<T>(s);
        }
      }
    }
  });
}

}  // namespace kanopy
