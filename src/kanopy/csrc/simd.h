// Vector width and register blocking of the kernels, from the instruction set they are
// compiled for (the compiler's target macros: -march=native unless KANOPY_MARCH says
// otherwise, see _extension.py).
//
//   target                        vector bytes   vector registers
//   AVX-512 (__AVX512F__)              64              32
//   AVX2 + FMA, AVX (__AVX__)          32              16
//   AArch64 NEON, SVE                  16              32   (SVE at NEON width: GCC's
//                                                            fixed-size vectors cannot follow
//                                                            SVE's run-time length)
//   anything else (SSE2, 32-bit ARM)   16              16
//
// -DKANOPY_SIMD_BYTES=16|32|64 (from the KANOPY_SIMD_BYTES environment variable) forces the
// width, e.g. to test the narrow code on an AVX-512 machine; the register count stays the
// target's. Wider than the target's registers, GCC splits each vector into several.
//
// Everything that depends on the width is derived from kVectorBytes and kRegisters here:
// rows of outputs are padded to whole vectors (kLanes<T> values), and each register-blocked
// loop holds as many output vectors as its registers allow (register_block), so that on a
// 16-register AVX2 target the blocks shrink instead of spilling.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace kanopy {

#if defined(__AVX512F__)
#define KANOPY_ISA "AVX-512"
#elif defined(__AVX2__) && defined(__FMA__)
#define KANOPY_ISA "AVX2+FMA"
#elif defined(__AVX__)
#define KANOPY_ISA "AVX"
#elif defined(__aarch64__) && defined(__ARM_FEATURE_SVE)
#define KANOPY_ISA "SVE (NEON width)"
#elif defined(__ARM_NEON)
#define KANOPY_ISA "NEON"
#elif defined(__SSE2__)
#define KANOPY_ISA "SSE2"
#else
#define KANOPY_ISA "generic"
#endif

#if defined(__AVX512F__)
constexpr bool kAvx512 = true;
#else
constexpr bool kAvx512 = false;
#endif
#if defined(__AVX__)
constexpr bool kAvx = true;
#else
constexpr bool kAvx = false;
#endif
#if defined(__aarch64__)
constexpr bool kAarch64 = true;
#else
constexpr bool kAarch64 = false;
#endif

constexpr int kNativeBytes = kAvx512 ? 64 : kAvx ? 32 : 16;
constexpr int kRegisters = kAvx512 || kAarch64 ? 32 : 16;
constexpr bool kBroadcastOperands = kAvx512;  // FMAs take a scalar from memory ({1toN}): no register

#if defined(KANOPY_SIMD_BYTES)
static_assert(KANOPY_SIMD_BYTES == 16 || KANOPY_SIMD_BYTES == 32 || KANOPY_SIMD_BYTES == 64,
              "KANOPY_SIMD_BYTES must be 16, 32 or 64");
constexpr int kVectorBytes = KANOPY_SIMD_BYTES;
#else
constexpr int kVectorBytes = kNativeBytes;
#endif

typedef double VecD __attribute__((vector_size(kVectorBytes)));
typedef float VecF __attribute__((vector_size(kVectorBytes)));
template <typename T>
using Vec = std::conditional_t<std::is_same_v<T, double>, VecD, VecF>;
template <typename T>
constexpr int kLanes = kVectorBytes / sizeof(T);

// Widest register block instantiated: each block size is a separate copy of a loop, and past
// four vectors a loop is bound by its loads and FMAs anyway.
constexpr int kMaxBlock = 4;

// Output vectors a register-blocked loop holds at once, when each takes `per_vector` registers
// and the loop `shared` more (its temporaries), within the target's registers.
constexpr int register_block(int per_vector, int shared) {
  const int fit = (kRegisters - shared) / per_vector;
  return fit < 1 ? 1 : fit > kMaxBlock ? kMaxBlock : fit;
}

// Registers for `n` scalars that multiply whole vectors (a sample's basis values): none where
// FMAs broadcast from memory, else one each.
constexpr int broadcast_registers(int n) { return kBroadcastOperands ? 0 : n; }

// f(std::integral_constant<int, c>) for c = min(n, Max) >= 1: a loop over vector blocks calls
// the instance for its remaining width.
template <int Max, typename F>
inline void with_block(int64_t n, F&& f) {
  if constexpr (Max > 1) {
    if (n < Max) return with_block<Max - 1>(n, f);
  }
  f(std::integral_constant<int, Max>{});
}

template <typename T>
inline Vec<T> load(const T* p) {  // unaligned
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void store(T* p, const Vec<T>& v) { std::memcpy(p, &v, sizeof(v)); }

// sum of the lanes as a tree (log2 depth, not a chain of kLanes dependent additions)
template <typename T, int Count = kLanes<T>>
inline T hsum(const T* p) {
  if constexpr (Count == 1) {
    return p[0];
  } else {
    typedef T Half __attribute__((vector_size(Count * sizeof(T) / 2)));
    Half a, b;
    std::memcpy(&a, p, sizeof(Half));
    std::memcpy(&b, p + Count / 2, sizeof(Half));
    const Half s = a + b;
    T lanes[Count / 2];
    std::memcpy(lanes, &s, sizeof(Half));
    return hsum<T, Count / 2>(lanes);
  }
}

template <typename T>
inline T hsum(const Vec<T>& v) {
  T lanes[kLanes<T>];
  std::memcpy(lanes, &v, sizeof(v));
  return hsum<T, kLanes<T>>(lanes);
}

// |v| lane by lane (the sign bit cleared)
template <typename T>
inline Vec<T> vabs(const Vec<T>& v) {
  using Int = std::conditional_t<std::is_same_v<T, double>, int64_t, int32_t>;
  typedef Int Bits __attribute__((vector_size(kVectorBytes)));
  return (Vec<T>)((Bits)v & (Bits{} + std::numeric_limits<Int>::max()));
}

}  // namespace kanopy
