// Torch-free test of the kernels' core (src/kanopy/csrc/spline_core.h): the B-spline basis
// and its x-derivative that every fused kernel starts from, for orders 1..5, uniform and
// general knots, float64 and float32, checked against the Cox-de Boor recurrence evaluated
// here independently in long double. Built and run by tests/test_cpp_core.py; prints one
// line per case and exits non-zero on the first disagreement.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

#include "spline_core.h"

namespace {

// B_{q,d}(x) on knots t by the recurrence (the half-open support [t_q, t_{q+d+1})).
long double cox_de_boor(const std::vector<long double>& t, int q, int d, long double x) {
  if (d == 0) return (t[q] <= x && x < t[q + 1]) ? 1.0L : 0.0L;
  long double out = 0.0L;
  const long double a = t[q + d] - t[q], b = t[q + d + 1] - t[q + 1];
  if (a > 0) out += (x - t[q]) / a * cox_de_boor(t, q, d - 1, x);
  if (b > 0) out += (t[q + d + 1] - x) / b * cox_de_boor(t, q + 1, d - 1, x);
  return out;
}

// d/dx B_{q,d}(x) = d B_{q,d-1} / (t_{q+d} - t_q) - d B_{q+1,d-1} / (t_{q+d+1} - t_{q+1})
long double cox_de_boor_slope(const std::vector<long double>& t, int q, int d, long double x) {
  long double out = 0.0L;
  const long double a = t[q + d] - t[q], b = t[q + d + 1] - t[q + 1];
  if (a > 0) out += d / a * cox_de_boor(t, q, d - 1, x);
  if (b > 0) out -= d / b * cox_de_boor(t, q + 1, d - 1, x);
  return out;
}

// G intervals on [-1, 1] extended by K on each side: uniform, or with jittered inner knots
std::vector<long double> knots(int G, int K, bool uniform, std::mt19937_64& rng) {
  const long double h = 2.0L / G;
  std::vector<long double> t(G + 2 * K + 1);
  for (int q = 0; q < static_cast<int>(t.size()); ++q) t[q] = -1.0L + (q - K) * h;
  if (!uniform) {
    std::uniform_real_distribution<double> jitter(-0.3, 0.3);
    for (int q = 1; q < static_cast<int>(t.size()) - 1; ++q)
      if (q != K && q != G + K) t[q] += jitter(rng) * h;  // the domain's ends stay put
  }
  return t;
}

template <typename T, int K>
int check(bool uniform, double tolerance, std::mt19937_64& rng) {
  constexpr int G = 7, n = 29;  // n < kBlock: one block
  const auto exact = knots(G, K, uniform, rng);
  std::vector<T> knot(exact.begin(), exact.end());
  const std::vector<long double> t(knot.begin(), knot.end());  // the reference sees the kernel's knots
  const kanopy::Geometry<T, K> geo(knot.data(), 1, static_cast<int64_t>(knot.size()), uniform);
  std::uniform_real_distribution<double> inside(-1.0, 1.0);
  std::vector<T> x(n);
  for (auto& v : x) v = T(inside(rng));
  x[0] = T(-1);  // the domain's left end and a point on an inner knot
  x[1] = T(t[K + 3]);
  std::vector<T> v((K + 1) * kanopy::kBlock), dv((K + 1) * kanopy::kBlock);
  std::vector<int32_t> start(n);
  kanopy::block_basis<T, K>(x.data(), n, geo, 0, v.data(), dv.data(), start.data());
  double worst = 0.0, worst_slope = 0.0;
  for (int b = 0; b < n; ++b) {
    const long double xb = x[b];
    for (int q = 0; q < G + K; ++q) {  // every basis function: the nonzero ones must be the k+1 given
      const int r = q - start[b];
      const long double value = (r >= 0 && r <= K) ? v[r * kanopy::kBlock + b] : 0.0L;
      const long double slope = (r >= 0 && r <= K) ? dv[r * kanopy::kBlock + b] : 0.0L;
      worst = std::max(worst, double(std::fabs(value - cox_de_boor(t, q, K, xb))));
      // at a knot the recurrence's slope is the right-hand one, like the kernel's interval
      // (order 1: the slope jumps at a knot, and within rounding of one either side is right)
      bool at_knot = false;
      for (long double tq : t) at_knot |= std::fabs(xb - tq) <= 8 * std::numeric_limits<T>::epsilon();
      if (!(K == 1 && at_knot))
        worst_slope = std::max(worst_slope, double(std::fabs(slope - cox_de_boor_slope(t, q, K, xb)) / G));
    }
  }
  const bool ok = worst <= tolerance && worst_slope <= tolerance;
  std::printf("%s order %d, %s knots, %-7s: max |B - de Boor| %.2e, max |B' - de Boor'| h %.2e  %s\n",
              ok ? "ok  " : "FAIL", K, uniform ? "uniform" : "general", sizeof(T) == 8 ? "float64" : "float32", worst,
              worst_slope, KANOPY_ISA);
  return ok ? 0 : 1;
}

template <typename T>
int check_orders(double tolerance, std::mt19937_64& rng) {
  int failures = 0;
  for (bool uniform : {true, false}) {
    failures += check<T, 1>(uniform, tolerance, rng);
    failures += check<T, 2>(uniform, tolerance, rng);
    failures += check<T, 3>(uniform, tolerance, rng);
    failures += check<T, 4>(uniform, tolerance, rng);
    failures += check<T, 5>(uniform, tolerance, rng);
  }
  return failures;
}

}  // namespace

int main() {
  std::mt19937_64 rng(12345);
  int failures = check_orders<double>(1e-13, rng);
  failures += check_orders<float>(2e-5, rng);
  std::printf("%d failures\n", failures);
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
