// The sparsity regulariser of the KAN paper and its derivative, for the fused objective
// (kan_loss_grad). The definition is regularization.py's, which documents it; the tests hold
// the two to rounding. Computed in double: the inputs are (in, out) numbers per layer.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace kanopy {

// For a (in, out), the mean |phi_ij| of every edge over the samples:
//   reg = lamb_l1 * sum_ij a_ij + lamb_entropy * (E_in + E_out),
//   E_in = mean_j H(a_.j / (sum_i a_ij + tiny)),  E_out = mean_i H(a_i. / (sum_j a_ij + tiny)),
//   H(p) = -sum p log2(p + 1e-4);
// returns reg and writes da = d reg / d a (in, out). tiny: the smallest normal number of the
// model's dtype (a dead node's shares are zeros, not NaN).
inline double sparsity(const double* a, int64_t in, int64_t out, double lamb_l1, double lamb_entropy, double tiny,
                       double* da) {
  constexpr double kEps = 1e-4;
  const double ln2 = std::log(2.0);
  auto h = [&](double p) { return -p * std::log2(p + kEps); };
  auto dh = [&](double p) { return -std::log2(p + kEps) - p / ((p + kEps) * ln2); };
  std::vector<double> col(out, tiny), row(in, tiny);  // the nodes' sums of incoming / outgoing edges
  double l1 = 0.0;
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < out; ++j) {
      col[j] += a[i * out + j];
      row[i] += a[i * out + j];
      l1 += a[i * out + j];
    }
  // E_in and its derivative: d/da_kj = (H'(p_kj) - sum_i H'(p_ij) p_ij) / (out * col_j)
  double e_in = 0.0, e_out = 0.0;
  std::vector<double> col_mean(out, 0.0), row_mean(in, 0.0);  // sum of H'(p) p per node
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < out; ++j) {
      const double p = a[i * out + j] / col[j], q = a[i * out + j] / row[i];
      e_in += h(p);
      e_out += h(q);
      col_mean[j] += dh(p) * p;
      row_mean[i] += dh(q) * q;
    }
  e_in /= double(out);
  e_out /= double(in);
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < out; ++j) {
      const double p = a[i * out + j] / col[j], q = a[i * out + j] / row[i];
      const double d_in = (dh(p) - col_mean[j]) / (double(out) * col[j]);
      const double d_out = (dh(q) - row_mean[i]) / (double(in) * row[i]);
      da[i * out + j] = lamb_l1 + lamb_entropy * (d_in + d_out);
    }
  return lamb_l1 * l1 + lamb_entropy * (e_in + e_out);
}

// The coefficient terms of one layer, c (in, n_coef, out) its raw coefficients:
//   lamb_coef * sum_ij mean_m |c_imj| + lamb_coefdiff * sum_ij mean_m |c_i,m+1,j - c_imj|;
// returns them and, g given, adds weight * their gradient to g (in, n_coef, out). sign(0) = 0, as
// autograd's.
template <typename T>
double coefficient_terms(const T* c, int64_t in, int64_t n_coef, int64_t out, double lamb_coef, double lamb_coefdiff,
                         double weight, T* g) {
  auto sign = [](double v) { return double((v > 0) - (v < 0)); };
  double total = 0.0;
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < out; ++j) {
      const T* ci = c + i * n_coef * out + j;
      T* gi = g ? g + i * n_coef * out + j : nullptr;
      if (lamb_coef != 0.0) {
        double s = 0.0;
        for (int64_t m = 0; m < n_coef; ++m) {
          s += std::abs(double(ci[m * out]));
          if (gi) gi[m * out] += T(weight * lamb_coef * sign(ci[m * out]) / double(n_coef));
        }
        total += lamb_coef * s / double(n_coef);
      }
      if (lamb_coefdiff != 0.0 && n_coef > 1) {
        double s = 0.0;
        for (int64_t m = 0; m + 1 < n_coef; ++m) {
          const double diff = double(ci[(m + 1) * out]) - double(ci[m * out]);
          s += std::abs(diff);
          if (!gi) continue;
          const T step = T(weight * lamb_coefdiff * sign(diff) / double(n_coef - 1));
          gi[(m + 1) * out] += step;
          gi[m * out] -= step;
        }
        total += lamb_coefdiff * s / double(n_coef - 1);
      }
    }
  return total;
}

}  // namespace kanopy
