// Fused KAN layer kernels for the CPU.
//
//   y[n, o] = bias[o] + sum_i ( b(x[n,i]) * base_w[i,o] + sum_r B_r(x[n,i]) * coef[i, s+r, o] )
//
// Only the k+1 B-splines B_s..B_{s+k} are nonzero at x[n,i] (local support), so the work per
// sample and input is k+1 rows of coef, whatever the grid size. The basis is recomputed in the
// backward pass instead of being stored: only x is saved for backward. Outside the spline
// domain the end polynomial pieces continue for one interval, then the spline goes on linearly.
//
// Shapes: x (N, in), knots (in, G+2k+1), coef (in, G+k, out), base_w (in, out), bias (out).
// The ops take the raw parameters: coef and base_w above are coef * mask * scale_sp and
// mask * scale_base of each edge, formed here.
// Registered as torch.ops.kanopy.spline_forward / spline_backward.
//
// The numerical core is in spline_core.h; this file binds it to torch tensors.
//
// Layout of the work: samples are taken in blocks of kBlock; for one input and one block the
// basis is computed in a loop over samples that the compiler vectorises (the order k is a
// template parameter, so the recurrences unroll; `#pragma GCC ivdep`, not `omp simd`, which
// stops GCC from vectorising loops with private arrays), then coefficient rows are combined
// with vector loops over the outputs.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "spline_core.h"

namespace {

using namespace kanopy;

Dims dims_of(const at::Tensor& x, const at::Tensor& knots, const at::Tensor& coef, int64_t k) {
  TORCH_CHECK(x.dim() == 2 && knots.dim() == 2 && coef.dim() == 3, "kanopy: bad ranks");
  TORCH_CHECK(k >= 1 && k <= kMaxOrder, "kanopy: spline order out of range");
  const int64_t lanes = x.scalar_type() == at::kDouble ? kLanes<double> : kLanes<float>;
  const Dims d = make_dims(x.size(0), x.size(1), knots.size(1), coef.size(2), k, lanes);
  TORCH_CHECK(knots.size(0) == d.in && coef.size(0) == d.in && coef.size(1) == d.K && d.G >= 1,
              "kanopy: shape mismatch");
  return d;
}

// t with its last dimension zero-padded to width (contiguous; t itself when already so)
at::Tensor pad_last(const at::Tensor& t, int64_t width) {
  if (t.size(-1) == width) return t.contiguous();
  auto sizes = t.sizes().vec();
  sizes.back() = width;
  auto out = at::zeros(sizes, t.options());
  out.narrow(-1, 0, t.size(-1)).copy_(t);
  return out;
}

const auto torch_parallel_for = [](int64_t begin, int64_t end, int64_t grain, const auto& fn) {
  at::parallel_for(begin, end, grain, fn);
};

template <typename T, typename F>
void by_order(int64_t k, F&& f) {
  switch (k) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    default: TORCH_CHECK(false, "kanopy: spline order out of range");
  }
}

// coef * (mask * scale_sp) per edge, zero-padded to d.outp outputs: (in, K, outp)
at::Tensor effective_coef(const at::Tensor& coef, const at::Tensor& scale_sp, const at::Tensor& mask,
                          const Dims& d) {
  return pad_last(coef * (mask * scale_sp).unsqueeze(1), d.outp);
}

// The layer's output; mask and scales are applied here, not as separate torch ops.
at::Tensor spline_forward(const at::Tensor& x_, const at::Tensor& knots_, const at::Tensor& coef,
                          const at::Tensor& scale_sp, const at::Tensor& scale_base, const at::Tensor& mask,
                          const at::Tensor& bias, int64_t k, bool uniform, int64_t base_kind) {
  const auto x = x_.contiguous(), knots = knots_.contiguous();
  const Dims d = dims_of(x, knots, coef, k);
  const auto C = effective_coef(coef, scale_sp, mask, d);
  const auto W = pad_last(mask * scale_base, d.outp), B = pad_last(bias, d.outp);
  auto y = at::empty({d.N, d.out}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanopy_spline_forward", [&] {
    by_order<scalar_t>(k, [&](auto order) {
      forward_impl<scalar_t, decltype(order)::value>(
          torch_parallel_for, d, x.data_ptr<scalar_t>(), knots.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(),
          W.data_ptr<scalar_t>(), B.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), uniform, base_kind);
    });
  });
  return y;
}

// Returns (grad_x, grad_coef, grad_scale_sp, grad_scale_base); undefined where not asked for.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> spline_backward(
    const at::Tensor& grad_y, const at::Tensor& x_, const at::Tensor& knots_, const at::Tensor& coef,
    const at::Tensor& scale_sp, const at::Tensor& scale_base, const at::Tensor& mask, int64_t k, bool uniform,
    int64_t base_kind, bool need_x, bool need_params) {
  const auto x = x_.contiguous(), knots = knots_.contiguous();
  const Dims d = dims_of(x, knots, coef, k);
  const auto GY = pad_last(grad_y, d.outp), C = effective_coef(coef, scale_sp, mask, d);
  const auto W = pad_last(mask * scale_base, d.outp);
  const int64_t threads = at::get_num_threads();
  const int64_t blocks = (d.N + kBlock - 1) / kBlock;
  // split by inputs when there are enough of them, else by samples into private copies
  const int64_t copies = (!need_params || d.in >= threads || blocks < 2 * threads) ? 1 : threads;
  at::Tensor grad_x, gc, gw;
  if (need_x) grad_x = at::empty({d.N, d.in}, x.options());
  if (need_params) {
    gc = at::zeros({copies, d.in, d.K, d.outp}, x.options());
    gw = at::zeros({copies, d.in, d.outp}, x.options());
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanopy_spline_backward", [&] {
    by_order<scalar_t>(k, [&](auto order) {
      backward_impl<scalar_t, decltype(order)::value>(
          torch_parallel_for, d, GY.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), knots.data_ptr<scalar_t>(),
          C.data_ptr<scalar_t>(), W.data_ptr<scalar_t>(), need_x ? grad_x.data_ptr<scalar_t>() : nullptr,
          need_params ? gc.data_ptr<scalar_t>() : nullptr, need_params ? gw.data_ptr<scalar_t>() : nullptr,
          uniform, base_kind, copies);
    });
  });
  at::Tensor grad_coef, grad_sp, grad_sb;
  if (need_params) {
    // gradients of the effective coefficients / base weights, back to the raw parameters
    auto g_eff = (copies == 1 ? gc[0] : gc.sum(0)).narrow(-1, 0, d.out);
    auto g_w = (copies == 1 ? gw[0] : gw.sum(0)).narrow(-1, 0, d.out);
    grad_coef = g_eff * (mask * scale_sp).unsqueeze(1);
    grad_sp = (g_eff * coef).sum(1) * mask;
    grad_sb = g_w * mask;
  }
  return {grad_x, grad_coef, grad_sp, grad_sb};
}

// Mean squared error of a stack of sum-node layers and its gradient with respect to every
// layer's coef, scale_sp, scale_base and bias, in one call: the training objective of a plain
// KAN without building an autograd graph. Per layer l the lists hold that layer's tensors;
// the inputs are normalised by (X - in_shift) / in_scale and the outputs mapped by
// out * out_scale + out_shift, as in KAN.forward.
// Returns (mse, [grad_coef_0, grad_scale_sp_0, grad_scale_base_0, grad_bias_0, grad_coef_1, ...]).
std::tuple<at::Tensor, std::vector<at::Tensor>> kan_mse_grad(
    const at::Tensor& X, const at::Tensor& y, const std::vector<at::Tensor>& knots,
    const std::vector<at::Tensor>& coef, const std::vector<at::Tensor>& scale_sp,
    const std::vector<at::Tensor>& scale_base, const std::vector<at::Tensor>& mask,
    const std::vector<at::Tensor>& bias, const std::vector<int64_t>& uniform, int64_t k, int64_t base_kind,
    const at::Tensor& in_shift, const at::Tensor& in_scale, const at::Tensor& out_shift,
    const at::Tensor& out_scale) {
  const size_t L = coef.size();
  TORCH_CHECK(L >= 1 && knots.size() == L && scale_sp.size() == L && scale_base.size() == L &&
                  mask.size() == L && bias.size() == L && uniform.size() == L,
              "kanopy: one entry per layer in every list");
  std::vector<at::Tensor> acts;  // input of each layer
  acts.push_back(((X - in_shift) / in_scale).contiguous());
  for (size_t l = 0; l < L; ++l)
    acts.push_back(spline_forward(acts[l], knots[l], coef[l], scale_sp[l], scale_base[l], mask[l], bias[l], k,
                                  uniform[l] != 0, base_kind));
  const auto residual = acts[L] * out_scale + out_shift - y;
  const auto mse = residual.square().mean();
  at::Tensor g = (residual * out_scale) * (2.0 / static_cast<double>(residual.numel()));
  std::vector<at::Tensor> grads(4 * L);
  for (size_t l = L; l-- > 0;) {
    auto [gx, gc, gsp, gsb] = spline_backward(g, acts[l], knots[l], coef[l], scale_sp[l], scale_base[l], mask[l],
                                              k, uniform[l] != 0, base_kind, l > 0, true);
    grads[4 * l] = gc;
    grads[4 * l + 1] = gsp;
    grads[4 * l + 2] = gsb;
    grads[4 * l + 3] = g.sum(0);
    g = gx;
  }
  return {mse, grads};
}

}  // namespace

TORCH_LIBRARY(kanopy, m) {
  m.def("spline_forward", &spline_forward);
  m.def("spline_backward", &spline_backward);
  m.def("kan_mse_grad", &kan_mse_grad);
}
