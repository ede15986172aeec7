"""The search: templates first, then separation into sub-problems, on a Pareto front.

``solve(problem)`` tries the KAN templates on a problem, cheapest first, and stops as soon
as one gives an exact formula. Otherwise, when the function separates (a product or a sum of
functions of disjoint groups of variables, tested on a KAN surrogate of the data), each group
becomes a sub-problem solved the same way on data drawn from the surrogate, and the parts are
assembled into one formula whose constants are then refitted on the real data. When it does
not separate, a pair or a monomial group of variables that the function sees only through
one combination is replaced by it (symmetry.py) and the smaller problem is solved in full.
"""

from __future__ import annotations

import itertools
import math

from ..symbolic import constants, formula
from . import polynomial, separability, symmetry, templates
from .budget import Budget
from .problem import EXACT, Candidate, Problem, Search  # noqa: F401  (EXACT, Search: part of this module's interface)

MAX_DEPTH = 2
MAX_COMBINATIONS = 6  # assembled formulas tried per separation
MAX_REDUCTIONS = 4  # pairs of variables replaced by their combination, in a row
FALLBACK_AFTER = 0.7  # share of the effort for the structured search; the rest is the fallback's


def solve(problem: Problem) -> list[Candidate]:
    """Pareto front of formulas for the problem (scored on its validation data): the quick
    templates, then structure (separation into sub-problems, or a pair of variables replaced
    by their combination), then the remaining templates, stopping at the first exact formula;
    then, if none is exact, least-squares polynomials (and at the top a general KAN)."""
    budget = problem.budget
    top = problem.depth == 0 and budget.fraction == 1.0
    # at the top, the structured search leaves a share of the effort to the approximate fallback
    with budget.share(FALLBACK_AFTER if top else budget.fraction):
        front = _structured(problem)
    if not _exact(front, problem):
        front = fallback(problem, front)
    if budget.exhausted():
        problem.say(_stop_reason(budget))
    return front


def _structured(problem: Problem) -> list[Candidate]:
    front: list[Candidate] = []
    for stage in [templates.QUICK, "structure", templates.MORE]:
        if stage == "structure":
            front = _add(problem, front, structure(problem))
        else:
            for name, template in stage:
                if not template.applies(problem):
                    continue
                found = _guarded(problem, name, lambda template=template: template.run(problem)) or []
                front = _add(problem, front, [c for c in (score(problem, e, name, m) for e, m in found) if c])
                # on surrogate data "exact" only means within the surrogate's error: the
                # cheap templates all get their turn, and the real data picks among them
                if _exact(front, problem) and problem.noise <= EXACT:
                    break
        if _exact(front, problem):
            problem.say("exact")
            break
        if problem.budget.exhausted():
            break
    return front


def _stop_reason(budget: Budget) -> str:
    if budget.limit == "time":
        return f"time cap of {budget.seconds:g} s reached: the search was cut short (its result depends on the machine)"
    if budget.fraction < 1.0:
        return (f"effort used up ({budget.fraction:.0%} of {budget.effort:.0f} work units, "
                "the structured search's share)")
    return f"effort used up ({budget.effort:.0f} work units)"


def fallback(problem: Problem, front: list[Candidate]) -> list[Candidate]:
    """An accurate answer in any case: least-squares polynomials (linear in their
    coefficients, already optimal: no constant fitting), and at the top level, with the
    effort kept for it, a snapped general KAN."""
    budget = problem.budget
    with budget.share(1.0 if problem.depth == 0 else budget.fraction):
        fits = _guarded(problem, "polynomial", lambda: polynomial.candidates(problem)) or []
        front = _add(problem, front, [Candidate(e, formula.complexity(e), rmse, "polynomial") for e, rmse in fits])
        if problem.depth == 0 and problem.reductions == 0:
            found = _guarded(problem, "general", lambda: templates.general(problem)) or []
            front = _add(problem, front, [c for c in (score(problem, e, "general", m) for e, m in found) if c])
    return front


def structure(problem: Problem) -> list[Candidate]:
    """Separation into groups of variables when the function separates; otherwise a pair of
    variables replaced by their combination, the smaller problem solved in full."""
    if problem.n < 2 or problem.budget.exhausted():
        return []
    found, separable = [], False
    if problem.depth < MAX_DEPTH:
        found, separable = _guarded(problem, "separation", lambda: separate(problem)) or ([], False)
    if separable or _exact(found, problem) or problem.reductions >= MAX_REDUCTIONS:
        return found
    return found + (_guarded(problem, "reduction", lambda: reduce(problem)) or [])


def _ensure_surrogate(problem: Problem) -> None:
    """A surrogate of the problem's function (see separability.surrogate): for one-signed y
    fitted to log|y| first, and to y as well when that one is rough; the closer is kept."""
    if problem.oracle is not None:
        return
    y = problem.ytr
    if bool((y > 0).all() or (y < 0).all()) and bool((problem.yval * y[0] > 0).all()):
        model, oracle, error = separability.surrogate(problem, log=True)
        problem.say(f"surrogate of log|y|: relative error {error:.2g}, pointwise {oracle.relative_noise:.2g}")
        problem.oracle, problem.oracle_noise = oracle, error
        if oracle.relative_noise <= 1e-2:
            return
    model, oracle, error = separability.surrogate(problem)
    problem.say(f"surrogate: relative error {error:.2g}")
    if problem.oracle is None or error < problem.oracle_noise:
        # only a surrogate of y itself serves the general fallback as its starting KAN
        problem.surrogate, problem.oracle, problem.oracle_noise = model, oracle, error


def _accuracy(problem: Problem) -> tuple[float, bool]:
    """(error of the problem's surrogate, whether pointwise relative): surrogates of log|y|
    are compared by their pointwise relative error, which heavy tails of y do not dominate."""
    relative = getattr(problem.oracle, "relative_noise", None)
    if relative is not None:
        return max(problem.noise, relative), True
    return max(problem.noise, problem.oracle_noise), False


def reduce(problem: Problem) -> list[Candidate] | None:
    """Replace variables that enter only through one combination (a monomial prod x_k^p_k,
    or the difference, product or ratio of a pair) by that combination, and solve the
    smaller problem; None when no combination passes."""
    _ensure_surrogate(problem)
    noise = max(problem.noise, problem.oracle_noise)
    if noise > 0.05 and min(noise, _accuracy(problem)[0]) > 0.02:  # the surrogate would hide any invariance
        return None
    options = []
    for members, exponents in symmetry.monomial_groups(problem)[:2]:
        options.append(lambda index, m=members, e=exponents: symmetry.reduced_monomial(problem, m, e, index))
    for _, i, j, kind in symmetry.candidates(problem, noise, limit=max(0.05, 4 * noise))[:2]:
        options.append(lambda index, i=i, j=j, kind=kind: symmetry.reduced(problem, i, j, kind, index))
    seen = set()
    for make in options[:3]:
        problem.budget.check()
        problem.search.symbols += 1
        sub, u, u_expr = make(problem.search.symbols)
        if str(u_expr) in seen:
            continue
        seen.add(str(u_expr))
        _ensure_surrogate(sub)
        (parent, parent_rel), (child, child_rel) = _accuracy(problem), _accuracy(sub)
        if parent_rel != child_rel:
            parent, child = noise, max(sub.noise, sub.oracle_noise)
        if not child <= 2 * parent + 1e-4:
            problem.say(f"{u_expr}: not a reduction (surrogate error {child:.2g} against {parent:.2g})")
            continue
        problem.say(f"reduced: {u} = {u_expr} (surrogate error {child:.2g} against {parent:.2g})")
        return symmetry.substitute(solve(sub), u, u_expr)
    return None


def _guarded(problem, name, run):
    if problem.budget.exhausted():
        return None
    try:
        return run()
    except (ValueError, RuntimeError, ArithmeticError, TypeError, IndexError) as err:
        problem.say(f"{name}: failed ({type(err).__name__}: {str(err)[:100]})")
        return None


def _add(problem, front, cands):
    for cand in cands:
        text = str(cand.expr)
        text = text if len(text) <= 400 else text[:400] + " ..."
        problem.say(f"{cand.source}: {text}  (complexity {cand.complexity}, "
                    f"val RMSE/std {cand.rmse / problem.scale:.3g})")
    return pareto(front + list(cands))


def _exact(front, problem) -> bool:
    return bool(front) and best(front, problem).rmse <= problem.tolerance * problem.scale


def separate(problem: Problem) -> tuple[list[Candidate], bool]:
    """Split into independent groups of variables (product or sum) and solve each:
    (candidates, whether the function separates)."""
    _ensure_surrogate(problem)
    noise = max(problem.noise, problem.oracle_noise)
    mode, groups = separability.groups(problem, noise)
    if len(groups) < 2:
        problem.say("not separable")
        return [], False
    problem.say(f"{mode} separable: {[[str(problem.variables[i]) for i in g] for g in groups]}")
    alternatives = []  # per group: its plausible formulas, most likely first
    for group in groups:
        sub = separability.sub_problem(problem, group, noise, mode)
        sub_front = solve(sub)
        if not sub_front:
            return [], True
        alternatives.append(_plausible(sub_front, sub))
    # the real data decides between a group's formulas that its surrogate cannot tell apart
    combos = sorted(itertools.product(*[range(len(a)) for a in alternatives]), key=sum)[:MAX_COMBINATIONS]
    found = []
    for combo in combos:
        expr = separability.assemble([alternatives[g][k] for g, k in enumerate(combo)], mode, problem)
        cand = score(problem, expr, f"{mode}-separable", None)
        if cand is not None:
            found.append(cand)
            if cand.rmse <= problem.tolerance * problem.scale:
                break
    return found, True


def _plausible(front: list[Candidate], problem: Problem, most: int = 3) -> list:
    """Expressions of the front within the problem's tolerance (or a factor 10 of the
    lowest error), most likely first."""
    first = best(front, problem)
    limit = max(10 * min(c.rmse for c in front), problem.tolerance * problem.scale)
    others = sorted((c for c in front if c is not first and c.rmse <= limit), key=lambda c: c.rmse)
    return [c.expr for c in [first] + others[: most - 1]]


# ----------------------------------------------------------------------------- scoring
def score(problem: Problem, expr, source, model) -> Candidate | None:
    """Refit constants on train, round them, simplify; the validation RMSE decides."""
    budget = problem.budget
    if budget.exhausted():
        return None
    variables, Xtr, ytr = problem.variables, problem.Xtr, problem.ytr
    floor = max(1e-13, problem.noise)
    if problem.depth > 0:
        # surrogate data: keep every constant free; the assembled formula is rounded on real data
        expr, _ = constants.fit_constants(_simplify(expr), variables, Xtr, ytr, budget=budget)
        rmse = constants.rmse_of(expr, variables, problem.Xval, problem.yval)
        return Candidate(expr, formula.complexity(expr), rmse, source, model) if math.isfinite(rmse) else None
    expr, error = constants.fit_constants(expr, variables, Xtr, ytr, budget=budget)
    if not error <= 1e-6 * problem.scale:  # far from exact: rounding cannot help, only cost time
        expr = _simplify(expr)
        rmse = constants.rmse_of(expr, variables, problem.Xval, problem.yval)
        return Candidate(expr, formula.complexity(expr), rmse, source, model) if math.isfinite(rmse) else None
    # simplifying can merge constants (exp(c) * x -> 0.159 * x): round again after it
    for _ in range(3):
        expr, _ = constants.round_constants(expr, variables, Xtr, ytr, floor=floor, budget=budget)
        simple = _simplify(expr)
        if simple == expr or not math.isfinite(constants.rmse_of(simple, variables, Xtr, ytr)):
            break
        expr = simple
    else:
        expr, _ = constants.round_constants(expr, variables, Xtr, ytr, floor=floor, budget=budget)
    rmse = constants.rmse_of(expr, variables, problem.Xval, problem.yval)
    if not math.isfinite(rmse):
        return None
    return Candidate(expr, formula.complexity(expr), rmse, source, model)


def _simplify(expr):
    return formula.tidy(expr)


def pareto(cands: list[Candidate]) -> list[Candidate]:
    """Candidates not beaten by a simpler-or-equal one with lower-or-equal error."""
    out = []
    for c in sorted(cands, key=lambda c: (c.complexity, c.rmse)):
        if not out or c.rmse < min(o.rmse for o in out):
            out.append(c)
    return out


def best(front: list[Candidate], problem: Problem) -> Candidate:
    """The simplest formula within a factor 2 of the lowest error (or exact)."""
    lowest = min(c.rmse for c in front)
    good = [c for c in front if c.rmse <= max(2 * lowest, problem.tolerance * problem.scale)]
    return min(good, key=lambda c: (c.complexity, c.rmse))
