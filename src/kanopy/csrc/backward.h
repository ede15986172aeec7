// The layer's backward: backward_by_input (the parameter gradients, and d loss / d x with
// them; tasks own (input, group of samples), backward_by_interval per task) and
// input_grad_only (d loss / d x alone). With the regulariser, interval_sign_grad adds its
// share to the output gradient each edge sees. Entry points are called by spline.cpp's
// layer_backward.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "basis.h"
#include "layout.h"
#include "simd.h"
#include "split.h"

namespace kanopy {

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
  constexpr int lanes = kLanes<T>;
  Vec<T> E[CH][K], Wc[CH];
#pragma GCC unroll 8
  for (int c = 0; c < CH; ++c) {
    Wc[c] = with_base ? load(Wi + c * lanes) : Vec<T>{};
    Vec<T> rows[K + 1];
#pragma GCC unroll 8
    for (int r = 0; r <= K; ++r) rows[r] = load(Crow + r * outp + c * lanes);
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
      sum += acc * load(g + c * lanes);
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
  constexpr int lanes = kLanes<T>;
  constexpr int RB = kGradBlock<K>;
  const bool with_base = base_kind != kZero;
  T* direct = d.chunks <= RB ? GX : nullptr;  // one block: no partial sums
  for (int64_t c = 0; c < d.chunks; c += RB)
    with_block<RB>(d.chunks - c, [&](auto ch) {
      interval_input_grad_part<T, K, decltype(ch)::value>(d.outp, Crow + c * lanes, Wi + c * lanes, GY + c * lanes, D, scale,
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
  constexpr int lanes = kLanes<T>;
  Vec<T> Cr[CH][K + 1], Wc[CH], Sc[CH];
#pragma GCC unroll 8
  for (int c = 0; c < CH; ++c) {
    Wc[c] = load(Wi + c * lanes);
    Sc[c] = load(ws + c * lanes);
#pragma GCC unroll 8
    for (int r = 0; r <= K; ++r) Cr[c][r] = load(Crow + r * outp + c * lanes);
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
      const Vec<T> g = load(GY + b * outp + c * lanes) + ((phi > zero ? Sc[c] : zero) - (phi < zero ? Sc[c] : zero));
      store(geff + b * outp + c * lanes, g);
    }
  }
}

// Per-input access for the backward by interval: prepare(i, C_i, W_i) writes input i's
// effective coefficient rows (n_coef x outp) and base weights (outp), finish(i, gc_i, gw_i) takes
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
// samples of a pass (kPassSamples at most) are grouped by the spline interval they fall in (counting sort), so that
// the coefficient gradient of an interval's k+1 rows is summed in registers over its samples
// and written once, instead of a load and a store of each row for every sample.
// Ci (n_coef, outp) and Wi (outp): the input's effective coefficient rows and base weights; their
// gradients are added to gc (n_coef, outp) and gw (outp); GX[n * in + i] is written. ws (outp) or
// null: the regulariser's weight of each edge's |phi| (interval_sign_grad).
template <typename T, int K>
void backward_by_interval(const Dims& d, const Geometry<T, K>& geo, const T* GY, const T* X, const T* Ci,
                          const T* Wi, const T* ws, int64_t i, int64_t s0, int64_t s1, T* gc, T* gw, T* GX,
                          int64_t base_kind) {
  constexpr int64_t kPassSamples = 2048;  // samples per pass (bounds the buffers)
  constexpr int lanes = kLanes<T>;
  const int64_t pass_len = std::max<int64_t>(1, std::min<int64_t>(kPassSamples, s1 - s0));
  auto& work = interval_work<T>();
  work.vals.resize((K + 1) * pass_len), work.dvals.resize((K + 1) * pass_len), work.base.resize(pass_len);
  work.slope.resize(pass_len), work.local.resize(pass_len);
  work.start.resize(pass_len), work.order.resize(pass_len), work.count.resize(d.G + 1), work.next.resize(d.G);
  if (GX) work.psum.resize(pass_len);
  if (ws && d.outp > 1) work.geff.resize(pass_len * d.outp);
  const T *vals = work.vals.data(), *dvals = work.dvals.data(), *base = work.base.data(), *slope = work.slope.data();
  const int32_t *order = work.order.data(), *count = work.count.data();
  for (int64_t n0 = s0; n0 < s1; n0 += pass_len) {
    const int64_t n = std::min(pass_len, s1 - n0);
    const T* gy = GY + n0 * d.outp;  // the pass's output gradient
    // 1. basis, slopes and base branch of every sample of the pass
    samples_basis<T, K>(geo, X, d.in, i, n0, n, base_kind, work.vals.data(), work.base.data(), work.start.data(),
                        work.dvals.data(), work.slope.data(), work.local.data());
    // 2. samples grouped by interval
    group_by_interval(work.start.data(), n, d.G, work.count.data(), work.next.data(), work.order.data());
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
          T g = gy[b];
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
      const T* Gm = gy;  // the output gradient the edges see
      if (ws) {
        constexpr int RB = kSignBlock<K>;
        for (int64_t c = 0; c < d.chunks; c += RB)
          with_block<RB>(d.chunks - c, [&](auto ch) {
            interval_sign_grad<T, K, decltype(ch)::value>(d.outp, Ci + row + c * lanes, Wi + c * lanes, ws + c * lanes,
                                                          gy + c * lanes, vals, base, members, hi - lo,
                                                          work.geff.data() + c * lanes);
          });
        Gm = work.geff.data();
      }
      for (int64_t c = 0; c < d.chunks; ++c) {
        const int64_t o = c * lanes;
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
        interval_input_grad<T, K>(d, Ci + row, Wi, Gm, D, scale, work.local.data(), slope, members, hi - lo, base_kind,
                                  GX + n0 * d.in + i, work.psum.data());
      }
    }
  }
}

// Backward with the parameter gradients: tasks own (input, group of samples). The groups are
// fixed by the data size (split: one group per input when there are inputs enough for
// kGroups threads, else up to kGroups / in groups of at least kMinGroupSamples samples); each group's
// gradients are summed in a buffer of their own and the groups added in order, so that the
// result does not depend on the number of threads. Per input, its coefficients and gradients
// go through io; WS (in, outp) or null: the regulariser's edge weights (backward_by_interval).
constexpr int64_t kMinGroupSamples = 256;
template <typename T, int K, typename ParallelFor>
void backward_by_input(ParallelFor&& parallel_for, const Dims& d, const T* GY, const T* X, const T* Tk,
                       const InputIO<T>& io, const T* WS, T* GX, bool uniform, int64_t base_kind) {
  const Geometry<T, K> geo(Tk, d.in, d.M, uniform);
  const Split groups = split(d.N, (kGroups + d.in - 1) / d.in, kMinGroupSamples);
  const int64_t n_groups = groups.count, c_size = d.n_coef * d.outp, g_size = c_size + d.outp;  // one input's gradients
  std::vector<T> partial(n_groups > 1 ? d.in * n_groups * g_size : 0);  // (in, n_groups, g_size)
  const int64_t task_work = groups.size * (K + 1) * d.outp * (GX ? 3 : 2);  // coefficient (and input) gradients
  parallel_for(0, d.in * n_groups, grain(task_work), [&](int64_t t0, int64_t t1) {
    auto& work = interval_work<T>();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i = t / n_groups, q = t % n_groups;
      work.params.resize(g_size);
      io.prepare(i, work.params.data(), work.params.data() + c_size);
      T* g = n_groups > 1 ? partial.data() + t * g_size : (work.grads.resize(g_size), work.grads.data());
      std::fill(g, g + g_size, T(0));
      backward_by_interval<T, K>(d, geo, GY, X, work.params.data(), work.params.data() + c_size, WS ? WS + i * d.outp : nullptr,
                                 i, q * groups.size, std::min(d.N, (q + 1) * groups.size), g, g + c_size, GX, base_kind);
      if (n_groups == 1) io.finish(i, g, g + c_size);
    }
  });
  if (n_groups > 1)
    parallel_for(0, d.in, grain(n_groups * g_size), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T* g = partial.data() + i * n_groups * g_size;
        for (int64_t q = 1; q < n_groups; ++q)
          for (int64_t v = 0; v < g_size; ++v) g[v] += g[q * g_size + v];
        io.finish(i, g, g + c_size);
      }
    });
}

// d loss / d x alone (no parameter gradients): every (sample, input) is independent. Tasks own
// blocks of samples; per input and block the basis is computed once. GY is the padded (N, outp)
// output gradient; C (in, n_coef, outp), W (in, outp) the effective parameters.
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
        const T* Ci = C + i * d.n_coef * d.outp;
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
