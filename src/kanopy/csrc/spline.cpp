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
// Registered as torch.ops.kanopy: spline_layer (the layer with its autograd node),
// kan_loss_grad / kan_lbfgs_step (a plain KAN's training objective: MSE, cross-entropy or
// binary cross-entropy, the sparsity regulariser included, and an L-BFGS step on it), simd_info. README.md maps who calls them.
//
// The numerical core is in torch-free headers (spline_core.h lists them: basis.h, forward.h,
// backward.h...; vector width and register blocks: simd.h; the regulariser: sparsity.h;
// L-BFGS: lbfgs.h); this file binds it to torch tensors. Results do not depend on the number
// of threads: every sum over samples runs in an order fixed by the data size (split.h).
//
// Layout of the work: samples are taken in blocks of kBlock; for one input and one block the
// basis is computed in a loop over samples that the compiler vectorises (the order k is a
// template parameter, so the recurrences unroll; `#pragma GCC ivdep`, not `omp simd`, which
// stops GCC from vectorising loops with private arrays), then coefficient rows are combined
// with vector loops over the outputs.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <sys/mman.h>

#include <cstdlib>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "backward.h"
#include "basis.h"
#include "forward.h"
#include "layout.h"
#include "lbfgs.h"
#include "loss.h"
#include "simd.h"
#include "sparsity.h"

namespace {

using namespace kanopy;

Dims dims_of(const at::Tensor& x, const at::Tensor& knots, const at::Tensor& coef, int64_t k) {
  TORCH_CHECK(x.dim() == 2 && knots.dim() == 2 && coef.dim() == 3, "kanopy: bad ranks");
  TORCH_CHECK(k >= 1 && k <= kMaxOrder, "kanopy: spline order out of range");
  const int64_t lanes = x.scalar_type() == at::kDouble ? kLanes<double> : kLanes<float>;
  const Dims d = make_dims(x.size(0), x.size(1), knots.size(1), coef.size(2), k, lanes);
  TORCH_CHECK(knots.size(0) == d.in && coef.size(0) == d.in && coef.size(1) == d.n_coef && d.G >= 1,
              "kanopy: shape mismatch");
  return d;
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

// The effective parameters of a call, zero-padded to d.outp outputs, built by plain loops
// (small tensor ops cost more than the kernels at science scale):
//   C (in, n_coef, outp) = coef * mask * scale_sp,  W (in, outp) = mask * scale_base,  B (outp) = bias.
template <typename T>
struct Packed {
  std::vector<T> C, W, B;
};

// Scratch reused by the calls of one thread (packed parameters, padded output gradient):
// large fresh allocations are mapped anew by malloc, and every call
// would fault their pages in again (several % of a step for a 256x256 layer on a fine grid).
// Kept per thread, sized by the largest layer seen.
template <typename T>
struct Scratch {
  Packed<T> packed;
  std::vector<T> padded;
};

template <typename T>
Scratch<T>& scratch() {
  static thread_local Scratch<T> s;
  return s;
}

// Work per task for parallel loops over inputs of plain element-wise passes
constexpr int64_t kPassGrain = 16384;

// A fresh tensor for a large output (a fine-grid layer's coefficient gradient): malloc maps
// allocations over 32 MB anew on every call, and faulting them in 4 KB pages took a third of a
// float64 backward (1024 x 256 -> 256, G=100: 13,000 faults per call). Here the memory is
// 2 MB aligned and marked for transparent huge pages, so it faults in 2 MB at a time.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  constexpr size_t kHuge = size_t(1) << 21;
  int64_t numel = 1;
  for (const int64_t n : sizes) numel *= n;
  const size_t bytes = size_t(numel) * options.dtype().itemsize();
  if (bytes < 8 * kHuge) return at::empty(sizes, options);
  void* data = nullptr;
  const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  if (posix_memalign(&data, kHuge, rounded) != 0) return at::empty(sizes, options);
  madvise(data, rounded, MADV_HUGEPAGE);  // advice only: without THP this is a plain allocation
  return at::from_blob(data, sizes, [](void* p) { std::free(p); }, options);
}

// Raw parameters of one call, contiguous, as read by the per-input packing and gradients.
template <typename T>
struct RawParams {
  at::Tensor coef, sp, sb, mask;  // kept alive: contiguous copies when the inputs were not
  const T *c, *s, *w, *m;
  RawParams(const at::Tensor& coef_, const at::Tensor& sp_, const at::Tensor& sb_, const at::Tensor& mask_,
            const Dims& d)
      : coef(coef_.contiguous()), sp(sp_.contiguous()), sb(sb_.contiguous()), mask(mask_.contiguous()) {
    TORCH_CHECK(sp.numel() == d.in * d.out && sb.numel() == d.in * d.out && mask.numel() == d.in * d.out,
                "kanopy: scale/mask shape mismatch");
    c = coef.data_ptr<T>(), s = sp.data_ptr<T>(), w = sb.data_ptr<T>(), m = mask.data_ptr<T>();
  }

  // input i's effective rows C_i (n_coef, outp) = coef * mask * scale_sp and W_i (outp) = mask * scale_base
  void pack_input(const Dims& d, int64_t i, T* Ci, T* Wi) const {
    const T *mi = m + i * d.out, *si = s + i * d.out, *wi = w + i * d.out;
    for (int64_t o = 0; o < d.out; ++o) Wi[o] = mi[o] * wi[o];
    std::fill(Wi + d.out, Wi + d.outp, T(0));
    for (int64_t r = 0; r < d.n_coef; ++r) {
      T* dst = Ci + r * d.outp;
      const T* src = c + (i * d.n_coef + r) * d.out;
      for (int64_t o = 0; o < d.out; ++o) dst[o] = src[o] * mi[o] * si[o];
      std::fill(dst + d.out, dst + d.outp, T(0));
    }
  }

  // gradients of input i's raw parameters from those of its effective ones (gc (n_coef, outp),
  // gw (outp)); sum_sp is scratch of d.out values
  void unpack_grad(const Dims& d, int64_t i, const T* gc, const T* gw, T* g_coef, T* g_sp, T* g_sb,
                   T* sum_sp) const {
    const T *mi = m + i * d.out, *si = s + i * d.out;
    std::fill(sum_sp, sum_sp + d.out, T(0));
    for (int64_t r = 0; r < d.n_coef; ++r) {  // rows of outputs: contiguous inner loops
      const int64_t row = i * d.n_coef + r;
      T* gco = g_coef + row * d.out;
      const T* co = c + row * d.out;
      const T* g = gc + r * d.outp;
      for (int64_t o = 0; o < d.out; ++o) {
        gco[o] = g[o] * mi[o] * si[o];
        sum_sp[o] += g[o] * co[o];
      }
    }
    for (int64_t o = 0; o < d.out; ++o) {
      g_sp[i * d.out + o] = sum_sp[o] * mi[o];
      g_sb[i * d.out + o] = gw[o] * mi[o];
    }
  }
};

template <typename T>
void pack(const RawParams<T>& raw, const at::Tensor* bias_, const Dims& d, Packed<T>& p) {
  p.C.resize(d.in * d.n_coef * d.outp);
  p.W.resize(d.in * d.outp);
  p.B.assign(d.outp, T(0));
  at::parallel_for(0, d.in, std::max<int64_t>(1, kPassGrain / (d.n_coef * d.outp)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) raw.pack_input(d, i, p.C.data() + i * d.n_coef * d.outp, p.W.data() + i * d.outp);
  });
  if (bias_) {
    const auto bias = bias_->contiguous();
    TORCH_CHECK(bias.numel() == d.out, "kanopy: bias shape mismatch");
    std::copy(bias.data_ptr<T>(), bias.data_ptr<T>() + d.out, p.B.begin());
  }
}

// The layer's output; mask and scales are applied here, not as separate torch ops. l1 given
// (in, outp, of the dtype): also the sum over the samples of |phi| of every edge.
at::Tensor layer_forward(const at::Tensor& x_, const at::Tensor& knots_, const at::Tensor& coef,
                         const at::Tensor& scale_sp, const at::Tensor& scale_base, const at::Tensor& mask,
                         const at::Tensor& bias, int64_t k, bool uniform, int64_t base_kind, void* l1) {
  const auto x = x_.contiguous(), knots = knots_.contiguous();
  const Dims d = dims_of(x, knots, coef, k);
  auto y = at::empty({d.N, d.out}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanopy_layer_forward", [&] {
    auto& p = scratch<scalar_t>().packed;
    pack<scalar_t>(RawParams<scalar_t>(coef, scale_sp, scale_base, mask, d), &bias, d, p);
    by_order<scalar_t>(k, [&](auto order) {
      forward_impl<scalar_t, decltype(order)::value>(
          torch_parallel_for, d, x.data_ptr<scalar_t>(), knots.data_ptr<scalar_t>(), p.C.data(), p.W.data(),
          p.B.data(), y.data_ptr<scalar_t>(), uniform, base_kind, at::get_num_threads(),
          static_cast<scalar_t*>(l1));
    });
  });
  return y;
}

// Backward of one layer into the given tensors (undefined where not asked for): grad_x
// (N, in); grad_coef (in, n_coef, out), grad_sp, grad_sb (in, out). WS (in, outp) or null: the
// sparsity regulariser's weight of each edge's |phi| (see kan_loss_grad).
template <typename T>
void layer_backward(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& knots, const RawParams<T>& raw,
                    const Dims& d, int64_t k, bool uniform, int64_t base_kind, const T* WS, at::Tensor& grad_x,
                    at::Tensor& grad_coef, at::Tensor& grad_sp, at::Tensor& grad_sb) {
  auto& work = scratch<T>();
  const T* GY = grad_y.data_ptr<T>();
  if (d.outp != d.out) {  // grad_y with rows padded to outp
    auto& padded = work.padded;
    padded.assign(d.N * d.outp, T(0));
    for (int64_t n = 0; n < d.N; ++n) std::copy(GY + n * d.out, GY + (n + 1) * d.out, padded.data() + n * d.outp);
    GY = padded.data();
  }
  T* GX = grad_x.defined() ? grad_x.data_ptr<T>() : nullptr;
  if (grad_coef.defined()) {  // tasks own inputs (and groups of samples): pack and unpack input by input
    T *g_coef = grad_coef.data_ptr<T>(), *g_sp = grad_sp.data_ptr<T>(), *g_sb = grad_sb.data_ptr<T>();
    InputIO<T> io;
    io.prepare = [&](int64_t i, T* Ci, T* Wi) { raw.pack_input(d, i, Ci, Wi); };
    io.finish = [&](int64_t i, const T* gc, const T* gw) {
      thread_local std::vector<T> sum_sp;
      sum_sp.resize(d.out);
      raw.unpack_grad(d, i, gc, gw, g_coef, g_sp, g_sb, sum_sp.data());
    };
    by_order<T>(k, [&](auto order) {
      backward_by_input<T, decltype(order)::value>(torch_parallel_for, d, GY, x.data_ptr<T>(), knots.data_ptr<T>(),
                                                   io, WS, GX, uniform, base_kind);
    });
  } else if (GX) {
    auto& p = work.packed;
    pack<T>(raw, nullptr, d, p);
    by_order<T>(k, [&](auto order) {
      input_grad_only<T, decltype(order)::value>(torch_parallel_for, d, GY, x.data_ptr<T>(), knots.data_ptr<T>(),
                                                 p.C.data(), p.W.data(), GX, uniform, base_kind);
    });
  }
}

// The layer's gradients for SplineLayer's backward: (grad_x, grad_coef, grad_scale_sp,
// grad_scale_base), undefined where not asked for.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> layer_gradients(
    const at::Tensor& grad_y_, const at::Tensor& x_, const at::Tensor& knots_, const at::Tensor& coef_,
    const at::Tensor& scale_sp_, const at::Tensor& scale_base, const at::Tensor& mask_, int64_t k, bool uniform,
    int64_t base_kind, bool need_x, bool need_params) {
  const auto x = x_.contiguous(), knots = knots_.contiguous(), grad_y = grad_y_.contiguous();
  const Dims d = dims_of(x, knots, coef_, k);
  TORCH_CHECK(grad_y.numel() == d.N * d.out, "kanopy: grad_y shape mismatch");
  at::Tensor grad_x, grad_coef, grad_sp, grad_sb;
  if (need_x) grad_x = at::empty({d.N, d.in}, x.options());
  if (need_params) {
    grad_coef = empty_output({d.in, d.n_coef, d.out}, x.options());
    grad_sp = at::empty({d.in, d.out}, x.options());
    grad_sb = at::empty({d.in, d.out}, x.options());
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanopy_layer_backward", [&] {
    const RawParams<scalar_t> raw(coef_, scale_sp_, scale_base, mask_, d);
    layer_backward<scalar_t>(grad_y, x, knots, raw, d, k, uniform, base_kind, nullptr, grad_x, grad_coef, grad_sp,
                             grad_sb);
  });
  return {grad_x, grad_coef, grad_sp, grad_sb};
}

// Sums over the rows of g (N, width), the bias gradient, in row order and in double: torch's
// sum splits the rows between threads, and its result can depend on their number (a
// (100000, 1) float64 column summed on 1 and on 3 threads differs).
at::Tensor column_sums(const at::Tensor& g_) {
  const auto g = g_.contiguous();
  const int64_t N = g.size(0), width = g.size(1);
  at::Tensor sums = at::empty({width}, g.options());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "kanopy_column_sums", [&] {
    using T = scalar_t;
    const T* gp = g.data_ptr<T>();
    std::vector<double> acc(width, 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < width; ++j) acc[j] += double(gp[n * width + j]);
    T* b = sums.data_ptr<T>();
    for (int64_t j = 0; j < width; ++j) b[j] = T(acc[j]);
  });
  return sums;
}

// The layer with its gradients, as a C++ autograd function: the graph node and its backward
// run without Python (the Python autograd.Function around two ops, before, cost 0.1 ms per
// forward+backward, a tenth of a 64 -> 64 layer's). Only x is saved besides the parameters;
// the backward is not itself differentiable (a second derivative raises).
class SplineLayer : public torch::autograd::Function<SplineLayer> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_, const at::Tensor& knots,
                            const at::Tensor& coef, const at::Tensor& scale_sp, const at::Tensor& scale_base,
                            const at::Tensor& mask, const at::Tensor& bias, int64_t k, bool uniform,
                            int64_t base_kind) {
    const auto x = x_.contiguous();
    ctx->save_for_backward({x, knots, coef, scale_sp, scale_base, mask});
    ctx->saved_data["k"] = k;
    ctx->saved_data["uniform"] = uniform;
    ctx->saved_data["base_kind"] = base_kind;
    return layer_forward(x, knots, coef, scale_sp, scale_base, mask, bias, k, uniform, base_kind, nullptr);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "kanopy: the fused kernels give first derivatives only; for higher derivatives "
                "(create_graph=True) set the layers' backend to 'torch'");
    const auto saved = ctx->get_saved_variables();
    const bool need_x = ctx->needs_input_grad(0);
    const bool need_params = ctx->needs_input_grad(2) || ctx->needs_input_grad(3) || ctx->needs_input_grad(4);
    const at::Tensor grad_y = grads[0].contiguous();
    auto [grad_x, grad_coef, grad_sp, grad_sb] = layer_gradients(
        grad_y, saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], ctx->saved_data["k"].toInt(),
        ctx->saved_data["uniform"].toBool(), ctx->saved_data["base_kind"].toInt(), need_x, need_params);
    const at::Tensor none;
    return {need_x ? grad_x : none,
            none,
            ctx->needs_input_grad(2) ? grad_coef : none,
            ctx->needs_input_grad(3) ? grad_sp : none,
            ctx->needs_input_grad(4) ? grad_sb : none,
            none,
            ctx->needs_input_grad(6) ? column_sums(grad_y) : none,
            none,
            none,
            none};
  }
};

at::Tensor spline_layer(const at::Tensor& x, const at::Tensor& knots, const at::Tensor& coef,
                        const at::Tensor& scale_sp, const at::Tensor& scale_base, const at::Tensor& mask,
                        const at::Tensor& bias, int64_t k, bool uniform, int64_t base_kind) {
  return SplineLayer::apply(x, knots, coef, scale_sp, scale_base, mask, bias, k, uniform, base_kind);
}

// The training objective of a plain KAN (a stack of sum-node layers), its parts and its
// gradient with respect to every layer's coef, scale_sp, scale_base and bias, in one call and
// without an autograd graph:
//   loss = data + lamb * reg,  data = the loss of loss_kind (loss.h: MSE, cross-entropy, BCE),
//   reg = sum over layers of the sparsity regulariser (sparsity.h,
//   from every edge's mean |phi| over the samples) and the coefficient terms.
// Per layer l the lists hold that layer's tensors; the inputs are normalised by
// (X - in_shift) / in_scale and the outputs mapped by out * out_scale + out_shift, as in
// KAN.forward. reg_weights: empty (no regulariser) or (lamb, lamb_l1, lamb_entropy, lamb_coef,
// lamb_coefdiff). The |phi| sums come from the forward kernels; the backward adds
// lamb * d reg / d a_ij * sign(phi_ij) / N to each edge's output gradient in the same pass.
// Returns (loss, data, reg, [grad_coef_0, grad_scale_sp_0, grad_scale_base_0, grad_bias_0,
// grad_coef_1, ...]); the gradients only when asked for (else an empty list).
struct Network {
  const std::vector<at::Tensor> &knots, &coef, &scale_sp, &scale_base, &mask, &bias;
  const std::vector<int64_t>& uniform;
  int64_t k, base_kind;
  const at::Tensor &in_shift, &in_scale, &out_shift, &out_scale;
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, std::vector<at::Tensor>> network_objective(
    const at::Tensor& X, const at::Tensor& y, const Network& net, const std::vector<double>& reg_weights,
    int64_t loss_kind, bool need_grad) {
  const size_t n_layers = net.coef.size();
  TORCH_CHECK(n_layers >= 1 && net.knots.size() == n_layers && net.scale_sp.size() == n_layers && net.scale_base.size() == n_layers &&
                  net.mask.size() == n_layers && net.bias.size() == n_layers && net.uniform.size() == n_layers,
              "kanopy: one entry per layer in every list");
  TORCH_CHECK(reg_weights.empty() || reg_weights.size() == 5,
              "kanopy: reg_weights is (lamb, lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff) or empty");
  const double lamb = reg_weights.empty() ? 0.0 : reg_weights[0];
  const bool regularised = lamb != 0.0;
  const auto Xc = X.contiguous(), yc = y.contiguous();
  const int64_t N = Xc.size(0), n_in = Xc.size(1);
  std::vector<at::Tensor> acts;  // input of each layer
  acts.push_back(at::empty_like(Xc));
  AT_DISPATCH_FLOATING_TYPES(Xc.scalar_type(), "kanopy_normalise", [&] {
    using T = scalar_t;
    const auto shift = net.in_shift.contiguous(), scale = net.in_scale.contiguous();
    const T *x = Xc.data_ptr<T>(), *sh = shift.data_ptr<T>(), *sc = scale.data_ptr<T>();
    T* a = acts[0].data_ptr<T>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < n_in; ++i) a[n * n_in + i] = (x[n * n_in + i] - sh[i]) / sc[i];
  });
  std::vector<at::Tensor> l1(n_layers), ws(n_layers);  // per layer: sums of |phi| (in, outp), their weights in the loss
  for (size_t l = 0; l < n_layers; ++l) {
    if (regularised) {
      const Dims d = dims_of(acts[l], net.knots[l], net.coef[l], net.k);
      l1[l] = at::zeros({d.in, d.outp}, Xc.options());
    }
    acts.push_back(layer_forward(acts[l], net.knots[l], net.coef[l], net.scale_sp[l], net.scale_base[l],
                                 net.mask[l], net.bias[l], net.k, net.uniform[l] != 0, net.base_kind,
                                 regularised ? l1[l].data_ptr() : nullptr));
  }
  const auto& out = acts[n_layers];
  const int64_t n_out = out.size(1);
  if (loss_kind == kCrossEntropy) {
    TORCH_CHECK(yc.scalar_type() == at::kLong && yc.numel() == N,
                "kanopy: cross-entropy targets are int64 class indices, one per row");
    const int64_t* labels = yc.data_ptr<int64_t>();
    for (int64_t n = 0; n < N; ++n)
      TORCH_CHECK(labels[n] >= 0 && labels[n] < n_out, "kanopy: class index out of range at row ", n);
  } else {
    TORCH_CHECK(loss_kind == kMse || loss_kind == kBce, "kanopy: unknown loss kind ", loss_kind);
    TORCH_CHECK(yc.scalar_type() == out.scalar_type() && yc.numel() == out.numel(),
                "kanopy: y does not match the network's outputs");
  }
  double data = 0.0, reg = 0.0;
  at::Tensor g = at::empty_like(out);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "kanopy_loss", [&] {
    using T = scalar_t;
    const auto shift = net.out_shift.contiguous(), scale = net.out_scale.contiguous();
    const bool labels = loss_kind == kCrossEntropy;
    data = output_loss<T>(loss_kind, out.data_ptr<T>(), labels ? nullptr : yc.data_ptr<T>(),
                          labels ? yc.data_ptr<int64_t>() : nullptr, shift.data_ptr<T>(), scale.data_ptr<T>(), N,
                          n_out, g.data_ptr<T>());
    if (!regularised) return;
    // the sparsity term of each layer, and the weight of every edge's |phi| in the loss
    for (size_t l = 0; l < n_layers; ++l) {
      const int64_t in = l1[l].size(0), outp = l1[l].size(1), width = net.coef[l].size(2);
      std::vector<double> a(in * width), da(in * width);
      const T* sums = l1[l].data_ptr<T>();
      for (int64_t i = 0; i < in; ++i)
        for (int64_t j = 0; j < width; ++j) a[i * width + j] = double(sums[i * outp + j]) / double(N);
      reg += sparsity(a.data(), in, width, reg_weights[1], reg_weights[2], double(std::numeric_limits<T>::min()),
                      da.data());
      ws[l] = at::zeros({in, outp}, Xc.options());
      T* w = ws[l].data_ptr<T>();
      for (int64_t i = 0; i < in; ++i)
        for (int64_t j = 0; j < width; ++j) w[i * outp + j] = T(lamb * da[i * width + j] / double(N));
    }
  });
  std::vector<at::Tensor> grads;
  if (need_grad) {
    grads.resize(4 * n_layers);
    for (size_t l = n_layers; l-- > 0;) {
      const auto x = acts[l].contiguous(), knots = net.knots[l].contiguous();
      const Dims d = dims_of(x, knots, net.coef[l], net.k);
      at::Tensor gx, gc = empty_output({d.in, d.n_coef, d.out}, x.options()), gsp = at::empty({d.in, d.out}, x.options()),
                     gsb = at::empty({d.in, d.out}, x.options());
      if (l > 0) gx = at::empty({d.N, d.in}, x.options());
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kanopy_network_backward", [&] {
        using T = scalar_t;
        const RawParams<T> raw(net.coef[l], net.scale_sp[l], net.scale_base[l], net.mask[l], d);
        layer_backward<T>(g, x, knots, raw, d, net.k, net.uniform[l] != 0, net.base_kind,
                          regularised ? ws[l].data_ptr<T>() : nullptr, gx, gc, gsp, gsb);
      });
      grads[4 * l] = gc;
      grads[4 * l + 1] = gsp;
      grads[4 * l + 2] = gsb;
      grads[4 * l + 3] = column_sums(g);
      g = gx;
    }
  }
  if (regularised && (reg_weights[3] != 0.0 || reg_weights[4] != 0.0)) {
    for (size_t l = 0; l < n_layers; ++l) {
      const auto c = net.coef[l].contiguous();
      AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "kanopy_coefficient_terms", [&] {
        using T = scalar_t;
        T* gc = need_grad ? grads[4 * l].data_ptr<T>() : nullptr;
        reg += coefficient_terms<T>(c.data_ptr<T>(), c.size(0), c.size(1), c.size(2), reg_weights[3],
                                    reg_weights[4], lamb, gc);
      });
    }
  }
  const auto scalar = [&](double v) { return at::full({}, v, out.options()); };
  return {scalar(data + lamb * reg), scalar(data), scalar(reg), grads};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, std::vector<at::Tensor>> kan_loss_grad(
    const at::Tensor& X, const at::Tensor& y, const std::vector<at::Tensor>& knots,
    const std::vector<at::Tensor>& coef, const std::vector<at::Tensor>& scale_sp,
    const std::vector<at::Tensor>& scale_base, const std::vector<at::Tensor>& mask,
    const std::vector<at::Tensor>& bias, const std::vector<int64_t>& uniform, int64_t k, int64_t base_kind,
    const at::Tensor& in_shift, const at::Tensor& in_scale, const at::Tensor& out_shift,
    const at::Tensor& out_scale, const std::vector<double>& reg_weights, int64_t loss_kind, bool need_grad) {
  const Network net{knots, coef, scale_sp, scale_base, mask, bias, uniform, k, base_kind,
                    in_shift, in_scale, out_shift, out_scale};
  return network_objective(X, y, net, reg_weights, loss_kind, need_grad);
}

// One L-BFGS step (see lbfgs.h) on the objective of kan_loss_grad (the loss of loss_kind of a
// plain KAN, plus the regulariser with reg_weights) whose trainable parameters are views into
// theta, in the order grad_order gives (indices into kan_loss_grad's gradient list). rows,
// direction and prev_grad are updated in place; returns (loss, order, has_direction, t).
std::tuple<double, std::vector<int64_t>, bool, double> kan_lbfgs_step(
    const at::Tensor& X, const at::Tensor& y, const at::Tensor& theta, const std::vector<at::Tensor>& knots,
    const std::vector<at::Tensor>& coef, const std::vector<at::Tensor>& scale_sp,
    const std::vector<at::Tensor>& scale_base, const std::vector<at::Tensor>& mask,
    const std::vector<at::Tensor>& bias, const std::vector<int64_t>& uniform, int64_t k, int64_t base_kind,
    const at::Tensor& in_shift, const at::Tensor& in_scale, const at::Tensor& out_shift,
    const at::Tensor& out_scale, const std::vector<double>& reg_weights, int64_t loss_kind,
    const std::vector<int64_t>& grad_order,
    const at::Tensor& rows,
    std::vector<int64_t> order, const at::Tensor& direction, const at::Tensor& prev_grad, bool has_direction,
    double t, int64_t max_iter, int64_t max_eval, double lr, double tolerance_grad, double tolerance_change) {
  const int64_t P = theta.numel();
  TORCH_CHECK(theta.is_contiguous() && rows.is_contiguous() && direction.is_contiguous() &&
                  prev_grad.is_contiguous(), "kanopy: lbfgs state must be contiguous");
  TORCH_CHECK(rows.dim() == 2 && rows.size(1) == P && rows.size(0) % 2 == 0 && direction.numel() == P &&
                  prev_grad.numel() == P, "kanopy: lbfgs state has the wrong shape");
  LbfgsOptions opt;
  opt.max_iter = max_iter;
  opt.max_eval = max_eval;
  opt.lr = lr;
  opt.tolerance_grad = tolerance_grad;
  opt.tolerance_change = tolerance_change;
  double loss = 0.0;
  bool has = has_direction;
  double step_t = t;
  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "kanopy_lbfgs_step", [&] {
    LbfgsState<scalar_t> st{P, rows.size(0) / 2, rows.data_ptr<scalar_t>(), order,
                            direction.data_ptr<scalar_t>(), prev_grad.data_ptr<scalar_t>(), has_direction, t};
    const Network net{knots, coef, scale_sp, scale_base, mask, bias, uniform, k, base_kind,
                      in_shift, in_scale, out_shift, out_scale};
    auto evaluate = [&](scalar_t* g) {
      auto [loss, data, reg, grads] = network_objective(X, y, net, reg_weights, loss_kind, true);
      int64_t offset = 0;
      for (const int64_t index : grad_order) {
        const auto part = grads[index].contiguous();
        const scalar_t* src = part.data_ptr<scalar_t>();
        std::copy(src, src + part.numel(), g + offset);
        offset += part.numel();
      }
      TORCH_CHECK(offset == P, "kanopy: gradients do not cover the parameters");
      return loss.item<double>();
    };
    LbfgsRunner<scalar_t, decltype(evaluate)> runner(st, theta.data_ptr<scalar_t>(), opt, std::move(evaluate));
    loss = runner.step();
    order = st.order;
    has = st.has_direction;
    step_t = st.t;
  });
  return {loss, order, has, step_t};
}

}  // namespace

// What the kernels were compiled for (simd.h): (instruction set, vector bytes, vector registers)
std::tuple<std::string, int64_t, int64_t> simd_info() { return {KANOPY_ISA, kVectorBytes, kRegisters}; }

TORCH_LIBRARY(kanopy, m) {
  m.def("simd_info", &simd_info);
  m.def("spline_layer", &spline_layer);
  m.def("kan_loss_grad", &kan_loss_grad);
  m.def("kan_lbfgs_step", &kan_lbfgs_step);
}
