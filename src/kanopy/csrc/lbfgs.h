// One L-BFGS step (up to max_iter iterations with a strong-Wolfe line search) in C++, for
// objectives that are themselves one C++ call (a plain KAN's loss and gradient). The same
// algorithm as kanopy/optim/lbfgs.py and line_search.py, which document it; here the
// per-iteration bookkeeping costs no Python, only O(history * parameters) arithmetic.
//
// State shared with Python (so that it can be saved, resumed and continued by either side):
//   rows (2m, P): curvature pairs, s in slots [0, m), y in [m, 2m)
//   order: occupied slots, oldest first
//   direction, prev_grad (P): the last search direction and the gradient it started from,
//   has_direction, t: whether they are valid, and the step length taken along it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace kanopy {

struct LbfgsOptions {
  int64_t max_iter = 20, max_eval = 25;
  double lr = 1.0, tolerance_grad = 0.0, tolerance_change = 0.0;
};

template <typename T>
struct LbfgsState {
  int64_t P, m;
  T* rows;                     // (2m, P)
  std::vector<int64_t> order;  // occupied slots, oldest first
  T* direction;                // (P)
  T* prev_grad;                // (P)
  bool has_direction;
  double t;
};

template <typename T>
inline double dot_p(const T* a, const T* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

// Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to [lo, hi].
inline double cubic_min(double x1, double f1, double g1, double x2, double f2, double g2, double lo, double hi) {
  if (x1 == x2) return (lo + hi) / 2;
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double disc = d1 * d1 - g1 * g2;
  if (!std::isfinite(disc) || disc < 0) return (lo + hi) / 2;
  const double d2 = std::copysign(std::sqrt(disc), x2 - x1);
  const double denom = g2 - g1 + 2 * d2;
  if (denom == 0) return (lo + hi) / 2;
  const double x = x2 - (x2 - x1) * (g2 + d2 - d1) / denom;
  return std::isfinite(x) ? std::min(std::max(x, lo), hi) : (lo + hi) / 2;
}

// Evaluate(theta) -> loss, writing the gradient into its argument. theta is read by the
// objective in place (the model's parameters are views into it).
template <typename T, typename Evaluate>
class LbfgsRunner {
 public:
  LbfgsRunner(LbfgsState<T>& st, T* theta, const LbfgsOptions& opt, Evaluate&& evaluate)
      : s_(st), theta_(theta), opt_(opt), eval_(evaluate), P_(st.P) {}

  double step() {
    std::vector<T> g(P_), d(P_), theta0(P_), g_new(P_);
    double loss = eval_(g.data());
    int64_t evals = 1;
    for (int64_t it = 0; it < opt_.max_iter; ++it) {
      if (opt_.tolerance_grad > 0 && max_abs(g.data()) <= opt_.tolerance_grad) break;
      bool fresh = !s_.has_direction;
      if (!fresh) remember(g.data());
      direction_of(g.data(), d.data());
      double gtd = dot_p(g.data(), d.data(), P_);
      if (!(gtd < 0)) {  // lost descent: start over from steepest descent
        reset();
        for (int64_t i = 0; i < P_; ++i) d[i] = -g[i];
        gtd = -dot_p(g.data(), g.data(), P_);
        fresh = true;
      }
      double t;
      if (fresh) {
        double size = 0.0;
        for (int64_t i = 0; i < P_; ++i) size += std::abs(double(g[i]));
        if (size == 0.0) break;  // a stationary point: nothing left to do
        t = opt_.lr * std::min(1.0, 1.0 / size);
      } else {
        t = opt_.lr;
      }
      std::copy(g.begin(), g.end(), s_.prev_grad);
      std::copy(theta_, theta_ + P_, theta0.begin());
      int64_t n = 0;
      double new_loss = strong_wolfe(theta0.data(), d.data(), t, loss, g.data(), gtd, g_new.data(), n);
      evals += n;
      if (t == 0.0) {  // no decrease found: reset and end the step
        std::copy(theta0.begin(), theta0.end(), theta_);
        reset();
        break;
      }
      const double prev_loss = loss;
      loss = new_loss;
      std::swap(g, g_new);
      std::copy(d.begin(), d.end(), s_.direction);
      s_.has_direction = true;
      s_.t = t;
      if (evals >= opt_.max_eval) break;
      if (opt_.tolerance_change > 0 &&
          (max_abs(d.data()) * t <= opt_.tolerance_change ||
           std::abs(loss - prev_loss) <= opt_.tolerance_change * std::abs(prev_loss)))
        break;
    }
    return loss;
  }

 private:
  LbfgsState<T>& s_;
  T* theta_;
  const LbfgsOptions& opt_;
  Evaluate& eval_;
  int64_t P_;

  double max_abs(const T* v) const {
    double m = 0.0;
    for (int64_t i = 0; i < P_; ++i) m = std::max(m, std::abs(double(v[i])));
    return m;
  }

  void reset() {
    s_.order.clear();
    s_.has_direction = false;
    s_.t = 0.0;
  }

  T* s_row(int64_t slot) const { return s_.rows + slot * P_; }
  T* y_row(int64_t slot) const { return s_.rows + (s_.m + slot) * P_; }

  void remember(const T* g) {
    std::vector<T> y(P_), s(P_);
    for (int64_t i = 0; i < P_; ++i) {
      y[i] = g[i] - s_.prev_grad[i];
      s[i] = T(s_.direction[i] * s_.t);
    }
    const double ys = dot_p(y.data(), s.data(), P_);
    const double yn = std::sqrt(dot_p(y.data(), y.data(), P_)), sn = std::sqrt(dot_p(s.data(), s.data(), P_));
    if (!(ys > 1e-10 * yn * sn)) return;  // curvature condition, relative
    int64_t slot;
    if (int64_t(s_.order.size()) == s_.m) {
      slot = s_.order.front();
      s_.order.erase(s_.order.begin());
    } else {
      slot = int64_t(s_.order.size());
    }
    std::copy(s.begin(), s.end(), s_row(slot));
    std::copy(y.begin(), y.end(), y_row(slot));
    s_.order.push_back(slot);
  }

  // d = -H g by the two-loop recursion (H0 = gamma I, gamma = s.y / y.y of the newest pair)
  void direction_of(const T* g, T* d) const {
    const int64_t n = int64_t(s_.order.size());
    if (n == 0) {
      for (int64_t i = 0; i < P_; ++i) d[i] = -g[i];
      return;
    }
    std::vector<double> q(g, g + P_), alpha(n), rho(n);
    for (int64_t k = n - 1; k >= 0; --k) {
      const T* s = s_row(s_.order[k]);
      const T* y = y_row(s_.order[k]);
      rho[k] = 1.0 / dot_p(y, s, P_);
      double a = 0.0;
      for (int64_t i = 0; i < P_; ++i) a += double(s[i]) * q[i];
      alpha[k] = rho[k] * a;
      for (int64_t i = 0; i < P_; ++i) q[i] -= alpha[k] * double(y[i]);
    }
    const T* y_new = y_row(s_.order[n - 1]);
    const double gamma = 1.0 / (rho[n - 1] * dot_p(y_new, y_new, P_));
    for (int64_t i = 0; i < P_; ++i) q[i] *= gamma;
    for (int64_t k = 0; k < n; ++k) {
      const T* s = s_row(s_.order[k]);
      const T* y = y_row(s_.order[k]);
      double b = 0.0;
      for (int64_t i = 0; i < P_; ++i) b += double(y[i]) * q[i];
      const double c = alpha[k] - rho[k] * b;
      for (int64_t i = 0; i < P_; ++i) q[i] += c * double(s[i]);
    }
    for (int64_t i = 0; i < P_; ++i) d[i] = T(-q[i]);
  }

  void move(const T* theta0, const T* d, double step) {
    for (int64_t i = 0; i < P_; ++i) theta_[i] = T(theta0[i] + step * d[i]);
  }

  // Nocedal & Wright Alg. 3.5/3.6; leaves theta at the returned step t (0: no decrease),
  // the gradient there in g_out; returns the loss there.
  double strong_wolfe(const T* theta0, const T* d, double& t, double f0, const T* g0, double gtd0, T* g_out,
                      int64_t& n) {
    const double c1 = 1e-4, c2 = 0.9;
    const int64_t max_evals = 25;
    struct Point { double t, f, gtd; std::vector<T> g; };
    std::vector<T> g(P_);
    auto phi = [&](double step, double& gtd) {
      move(theta0, d, step);
      const double f = eval_(g.data());
      gtd = dot_p(g.data(), d, P_);
      return f;
    };
    double best_t = 0.0, best_f = f0;
    std::vector<T> best_g(g0, g0 + P_);
    auto consider = [&](double step, double f) {
      if (f < best_f) { best_t = step; best_f = f; best_g = g; }
    };
    auto finish = [&](double step, double f, const std::vector<T>& grad) {
      move(theta0, d, step);
      t = step;
      std::copy(grad.begin(), grad.end(), g_out);
      return f;
    };
    Point prev{0.0, f0, gtd0, std::vector<T>(g0, g0 + P_)};
    Point lo, hi;
    bool bracketed = false;
    while (n < max_evals) {
      double gtd;
      const double f = phi(t, gtd);
      ++n;
      consider(t, f);
      if (!std::isfinite(f) || f > f0 + c1 * t * gtd0 || (n > 1 && f >= prev.f)) {
        lo = prev; hi = Point{t, f, gtd, g};
        bracketed = true;
        break;
      }
      if (std::abs(gtd) <= -c2 * gtd0) return finish(t, f, g);
      if (gtd >= 0) {
        lo = Point{t, f, gtd, g}; hi = prev;
        bracketed = true;
        break;
      }
      const double t_next = cubic_min(prev.t, prev.f, prev.gtd, t, f, gtd, t + 0.01 * (t - prev.t), t * 10);
      prev = Point{t, f, gtd, g};
      t = t_next;
    }
    if (bracketed) {
      const double d_max = max_abs(d);
      // as line_search.py: stop zooming once the bracket moves the parameters by < 1e-9
      while (n < max_evals && std::abs(hi.t - lo.t) * d_max >= 1e-9) {
        const double a = std::min(lo.t, hi.t), b = std::max(lo.t, hi.t);
        double step = cubic_min(lo.t, lo.f, lo.gtd, hi.t, hi.f, hi.gtd, a, b);
        if (std::min(step - a, b - step) < 0.1 * (b - a)) step = (a + b) / 2;  // too close to an end
        double gtd;
        const double f = phi(step, gtd);
        ++n;
        consider(step, f);
        if (!std::isfinite(f) || f > f0 + c1 * step * gtd0 || f >= lo.f) {
          hi = Point{step, f, gtd, g};
        } else {
          if (std::abs(gtd) <= -c2 * gtd0) return finish(step, f, g);
          if (gtd * (hi.t - lo.t) >= 0) hi = lo;
          lo = Point{step, f, gtd, g};
        }
      }
    }
    return finish(best_t, best_f, best_g);
  }
};

}  // namespace kanopy
