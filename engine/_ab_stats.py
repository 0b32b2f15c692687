"""The statistics of ``kpiforge ab``, from sufficient statistics only (counts, sums, sums of
squares and cross products), with the standard library: scipy is not a dependency of kpiforge
and these few distributions do not justify one (tests compare every figure with scipy).

Every comparison is "treatment minus control" and returns an :class:`Estimate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["Estimate", "chi2_sf", "delta_ratio", "holm", "student_t_sf", "two_proportion",
           "welch"]

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Estimate:
    """One comparison: the two values, their difference, its interval and the p-value."""

    value: float
    control_value: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str


def _betacf(a: float, b: float, x: float) -> float:
    # Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes 6.4).
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` (possibly fractional) degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def _student_t_ppf(q: float, df: float) -> float:
    # Bisection on the CDF: 200 halvings of a wide bracket reach double precision.
    lo, hi = -1e4, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if 1.0 - student_t_sf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def _gammainc_upper(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x) (Numerical Recipes 6.2)."""
    if x <= 0.0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:  # series for P, converges fast here
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return 1.0 - total * math.exp(log_front)
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(log_front) * h


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for a chi-square with ``df`` degrees of freedom."""
    return _gammainc_upper(df / 2.0, x / 2.0)


def _normal_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def two_proportion(successes: float, n: float, control_successes: float, control_n: float,
                   alpha: float = 0.05) -> Estimate:
    """Two-proportion z-test with pooled variance for the p-value; unpooled Wald interval."""
    p1, p0 = successes / n, control_successes / control_n
    diff = p1 - p0
    pooled = (successes + control_successes) / (n + control_n)
    se_pooled = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n + 1.0 / control_n))
    p_value = _normal_two_sided(diff / se_pooled) if se_pooled > 0 else (1.0 if diff == 0 else 0.0)
    se = math.sqrt(p1 * (1.0 - p1) / n + p0 * (1.0 - p0) / control_n)
    z = _NORMAL.inv_cdf(1.0 - alpha / 2.0)
    return Estimate(p1, p0, diff, diff - z * se, diff + z * se, p_value, "two-proportion z-test")


def _mean_var(total: float, squares: float, n: float) -> tuple[float, float]:
    mean = total / n
    # The sample variance from sums: (sum x^2 - n mean^2) / (n - 1), never negative by rounding.
    return mean, max(squares - n * mean * mean, 0.0) / (n - 1.0)


def welch(total: float, squares: float, n: float, control_total: float, control_squares: float,
          control_n: float, alpha: float = 0.05) -> Estimate:
    """Welch's t-test of two means given each group's sum, sum of squares and count."""
    m1, v1 = _mean_var(total, squares, n)
    m0, v0 = _mean_var(control_total, control_squares, control_n)
    a, b = v1 / n, v0 / control_n
    se = math.sqrt(a + b)
    diff = m1 - m0
    if se == 0:
        return Estimate(m1, m0, diff, diff, diff, 1.0 if diff == 0 else 0.0, "Welch t-test")
    df = (a + b) ** 2 / (a * a / (n - 1.0) + b * b / (control_n - 1.0))
    t = diff / se
    p_value = 2.0 * student_t_sf(abs(t), df)
    half = _student_t_ppf(1.0 - alpha / 2.0, df) * se
    return Estimate(m1, m0, diff, diff - half, diff + half, p_value, "Welch t-test")


def _ratio_var(num: float, num_sq: float, den: float, den_sq: float, cross: float,
               n: float) -> tuple[float, float]:
    # Delta method for R = mean(Y) / mean(X) over n units:
    # Var(R) ~ (Var Y - 2 R Cov(X, Y) + R^2 Var X) / (n mean(X)^2), sample (co)variances.
    ratio = num / den
    mean_x = den / n
    var_y = (num_sq - num * num / n) / (n - 1.0)
    var_x = (den_sq - den * den / n) / (n - 1.0)
    cov = (cross - num * den / n) / (n - 1.0)
    return ratio, max(var_y - 2.0 * ratio * cov + ratio * ratio * var_x, 0.0) / (n * mean_x ** 2)


def delta_ratio(group: tuple[float, float, float, float, float, float],
                control: tuple[float, float, float, float, float, float],
                alpha: float = 0.05) -> Estimate:
    """Ratio of two sums over units (delta method, z-test). Each group is (sum Y, sum Y^2,
    sum X, sum X^2, sum XY, units): Y the numerator and X the denominator per unit."""
    r1, v1 = _ratio_var(*group)
    r0, v0 = _ratio_var(*control)
    diff = r1 - r0
    se = math.sqrt(v1 + v0)
    p_value = _normal_two_sided(diff / se) if se > 0 else (1.0 if diff == 0 else 0.0)
    z = _NORMAL.inv_cdf(1.0 - alpha / 2.0)
    return Estimate(r1, r0, diff, diff - z * se, diff + z * se, p_value, "delta method z-test")


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
