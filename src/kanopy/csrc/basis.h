// The B-spline basis of order K at samples, the first stage of every kernel: Geometry (the
// per-input lookup data of uniform or general knots), block_basis (values and x-derivatives
// of the k+1 nonzero B-splines at a block of kBlock samples, feature-major) and
// samples_basis (the same, sample-major, with the base branch, for the interval-grouped
// paths). Torch-free: tests/cpp/core_basis.cpp checks block_basis against de Boor's
// recurrence through spline_core.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "base.h"

namespace kanopy {

constexpr int kMaxOrder = 5;
constexpr int kBlock = 32;  // samples per block
constexpr int kBasisLanes = 8;  // >= kMaxOrder + 1: one short vector holds a point's basis

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
template <typename T, int Degree>
inline void raise_cardinal(const T f, T* N, T* Q) {
  Q[0] = T(0);
#pragma GCC unroll 8
  for (int r = 0; r < Degree; ++r) Q[r + 1] = N[r];
  Q[Degree + 1] = T(0);
  constexpr T inv_d = T(1) / T(Degree);
#pragma GCC unroll 8
  for (int r = 0; r <= Degree; ++r) N[r] = ((f + T(Degree - r)) * Q[r] + (T(r + 1) - f) * Q[r + 1]) * inv_d;
}

template <typename T, int K, int Degree = 1>
inline void cardinal(const T f, T* N, T* Q) {
  if constexpr (Degree <= K) {
    raise_cardinal<T, Degree>(f, N, Q);
    cardinal<T, K, Degree + 1>(f, N, Q);
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

}  // namespace kanopy
