// Torch-free core of the fused KAN layer kernels (see spline.cpp for the contract and
// README.md for the map), one header per concern:
//   simd.h      vector width, register blocks, vector helpers
//   base.h      the base branch b(x) (silu, tanh, identity, zero) over a block of samples
//   basis.h     Geometry, the B-spline basis at samples (block_basis, samples_basis)
//   layout.h    Dims (padded output rows), grouping samples by interval, register blocks
//   split.h     work split between threads with results independent of their number
//   forward.h   the layer's forward (forward_impl and its paths)
//   backward.h  the layer's backward (backward_by_input, input_grad_only)
// This umbrella includes them all, for code that wants the whole core without torch: the
// torch-free test (tests/cpp/core_basis.cpp) and benchmarks. Parallel loops are passed in as
// `parallel_for(begin, end, grain, fn(lo, hi))`. lbfgs.h, loss.h and sparsity.h (the fused
// objective's optimizer, data term and regulariser) stand apart; spline.cpp binds all of it to torch.
#pragma once

#include "backward.h"
#include "base.h"
#include "basis.h"
#include "forward.h"
#include "layout.h"
#include "simd.h"
#include "split.h"
