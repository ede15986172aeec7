// The data term of the fused objective (kan_loss_grad) and its gradient with respect to the
// network's last-layer output, for each loss kind the kernels know. The definitions are
// losses.py's (MSE, CrossEntropy, BCE), which document them; the tests hold the two to
// rounding. Computed in double, rows in order: the (N, n_out) outputs are small next to the
// layers' work, and the sum must not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace kanopy {

// The same numbers as kernels.FusedObjective.LOSSES
enum LossKind : int64_t { kMse = 0, kCrossEntropy = 1, kBce = 2 };

// out (N, n_out): the last layer's outputs; the predictions are pred = out * sc + sh per
// output (the model's out_scale, out_shift). Targets: values (N, n_out) for kMse and kBce
// (0/1 labels or probabilities), class indices (N) in [0, n_out) for kCrossEntropy (labels).
//   kMse           mean over all N * n_out of (pred - y)^2
//   kCrossEntropy  mean over rows of logsumexp(pred_n) - pred_n[label_n]  (logits, softmax over outputs)
//   kBce           mean over all N * n_out of softplus(pred) - y * pred   (each output a logit)
// Returns the loss; writes d loss / d out into g (N, n_out).
template <typename T>
double output_loss(int64_t kind, const T* out, const T* values, const int64_t* labels, const T* sh, const T* sc,
                   int64_t N, int64_t n_out, T* g) {
  double sum = 0.0;
  if (kind == kCrossEntropy) {
    const double inv_n = 1.0 / static_cast<double>(N);
    std::vector<double> pred(n_out);
    for (int64_t n = 0; n < N; ++n) {
      const T* o = out + n * n_out;
      double top = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n_out; ++j) {
        pred[j] = double(o[j]) * double(sc[j]) + double(sh[j]);
        top = std::max(top, pred[j]);
      }
      double total = 0.0;
      for (int64_t j = 0; j < n_out; ++j) total += std::exp(pred[j] - top);
      const double lse = top + std::log(total);
      const int64_t label = labels[n];
      sum += lse - pred[label];
      T* gn = g + n * n_out;
      for (int64_t j = 0; j < n_out; ++j)  // (softmax - one-hot) * d pred / d out / N
        gn[j] = T((std::exp(pred[j] - lse) - (j == label ? 1.0 : 0.0)) * double(sc[j]) * inv_n);
    }
    return sum / static_cast<double>(N);
  }
  const double inv_count = 1.0 / static_cast<double>(N * n_out);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < n_out; ++j) {
      const int64_t q = n * n_out + j;
      if (kind == kBce) {
        const double p = double(out[q]) * double(sc[j]) + double(sh[j]), t = double(values[q]);
        sum += std::max(p, 0.0) - p * t + std::log1p(std::exp(-std::abs(p)));
        const double sigmoid = p >= 0 ? 1.0 / (1.0 + std::exp(-p)) : std::exp(p) / (1.0 + std::exp(p));
        g[q] = T((sigmoid - t) * double(sc[j]) * inv_count);
      } else {  // kMse, as before the loss kinds: the residual in T, the sum in double
        const T r = out[q] * sc[j] + sh[j] - values[q];
        sum += double(r) * double(r);
        g[q] = T(double(r * sc[j]) * 2.0 * inv_count);
      }
    }
  return sum / static_cast<double>(N * n_out);
}

}  // namespace kanopy
