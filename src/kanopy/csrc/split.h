// Splitting work between threads without letting the thread count into the results: Split
// (groups of items fixed by the data size, summed apart and added in order by add_partials)
// and grain (the smallest task of a parallel loop, from its work per item).
#pragma once

#include <algorithm>
#include <cstdint>

namespace kanopy {

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

}  // namespace kanopy
