// The base branch b(x) of every edge (kanopy.functions: zero, identity, silu, tanh) and its
// slope over a block of samples, in loops that vectorise (vexp: an exp without -ffast-math).
// BaseKind is the integer the Python side passes (kernels._FUSED_BASE).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace kanopy {

enum BaseKind : int64_t { kZero = 0, kIdentity = 1, kSilu = 2, kTanh = 3 };

// exp that vectorises (std::exp does not without -ffast-math): 2^k * p(x - k ln2), with a
// Taylor polynomial accurate to about 1 ulp on |r| <= ln2 / 2. k is rounded by adding
// 1.5 * 2^mantissa (the integer lands in the low mantissa bits) and 2^k is built from those
// bits with a shift: no float -> int64 conversion, which AVX2 and NEON lack for vectors (with
// one the loop is scalarised; AVX2 measured 8x slower than AVX-512 per sample).
template <typename T>
inline T vexp(T x) {
  using Bits = std::conditional_t<std::is_same_v<T, double>, int64_t, int32_t>;
  constexpr int kMant = std::is_same_v<T, double> ? 52 : 23;
  constexpr int kBias = std::is_same_v<T, double> ? 1023 : 127;
  constexpr T kMax = std::is_same_v<T, double> ? T(708) : T(87);
  constexpr T kShift = std::is_same_v<T, double> ? T(6755399441055744.0) : T(12582912.0f);  // 1.5 * 2^kMant
  x = x < kMax ? x : kMax;
  x = x > -kMax ? x : -kMax;
  const T shifted = x * T(1.4426950408889634) + kShift;  // k in the low mantissa bits, rounded to nearest
  const T kf = shifted - kShift;
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
  // the low mantissa bits of shifted + bias hold k + bias (in [1, 2 bias - 1]); shifted left
  // by kMant they are the exponent field of 2^k, and nothing else survives the shift
  const T biased = shifted + T(kBias);
  Bits e;
  std::memcpy(&e, &biased, sizeof(T));
  e <<= kMant;
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

}  // namespace kanopy
