"""Breakpoint fitters for piecewise-linear approximations, used by the ``pwl`` block's tables.

* NN-LUT (Yu et al., "NN-LUT: Neural Approximation of Non-Linear Operations for Efficient Transformer
  Inference", DAC 2022): a one-hidden-layer ReLU network trained on the function, converted exactly to
  breakpoints, slopes and intercepts (:func:`fit_nnlut`, :func:`network_to_pwl`);
* the adaptive PWL of iRNN (Sari et al., "iRNN: Integer-only Recurrent Neural Network", 2022): the
  least-squares optimal segmentation by dynamic programming, refined by coordinate descent
  (:func:`fit_irnn`).

The ``pwl`` model (:mod:`qarith.golden.pwl`) describes how the fits become integer tables.
"""

import math
from contextlib import contextmanager
from typing import NamedTuple

import torch

__all__ = ["ReluNetwork", "FloatPwl", "relu_network", "network_to_pwl", "evaluate_pwl", "fit_nnlut", "fit_irnn",
           "one_thread", "NNLUT_ITERATIONS", "NNLUT_POINTS", "IRNN_GRID", "IRNN_SWEEPS"]

#: NN-LUT training: Levenberg-Marquardt iterations at most, and training points at most.
NNLUT_ITERATIONS = 300
NNLUT_POINTS = 1024
#: iRNN search: grid of the exact segmentation, and coordinate-descent sweeps at most.
IRNN_GRID = 1024
IRNN_SWEEPS = 30


# --- the ReLU network and its exact conversion ------------------------------------------------------------

class ReluNetwork(NamedTuple):
    """``f(x) = sum_i out_weights[i] * relu(weights[i] * x + biases[i]) + out_bias`` (float64 tensors)."""
    weights: torch.Tensor
    biases: torch.Tensor
    out_weights: torch.Tensor
    out_bias: torch.Tensor


class FloatPwl(NamedTuple):
    """A float PWL function: segment ``k`` holds ``breakpoints[k-1] <= x < breakpoints[k]``."""
    breakpoints: torch.Tensor
    slopes: torch.Tensor
    intercepts: torch.Tensor


def relu_network(net, x):
    x = torch.as_tensor(x, dtype=torch.float64)
    return torch.relu(x[..., None] * net.weights + net.biases) @ net.out_weights + net.out_bias


def network_to_pwl(net):
    """The PWL table equal to ``net`` everywhere: sorted breakpoints ``-b_i / n_i``; in each segment
    the slope is the sum of ``m_i n_i`` and the intercept ``c`` plus the sum of ``m_i b_i`` over the units
    active there. Units with ``n_i = 0`` are constants and fold into the intercepts."""
    n, b, m = net.weights, net.biases, net.out_weights
    kinked = n != 0
    breakpoints = (-b[kinked] / n[kinked]).sort().values
    # One probe point strictly inside each segment decides which units are active there.
    inner = (breakpoints[:-1] + breakpoints[1:]) / 2
    span = max(1.0, float((breakpoints[-1] - breakpoints[0]).abs())) if len(breakpoints) else 1.0
    first = breakpoints[:1] - span
    last = breakpoints[-1:] + span
    probes = torch.cat([first, inner, last]) if len(breakpoints) else torch.zeros(1, dtype=torch.float64)
    active = (probes[:, None] * n + b) > 0
    slopes = (active * (m * n)).sum(dim=1)
    intercepts = net.out_bias + (active * (m * b)).sum(dim=1)
    return FloatPwl(breakpoints, slopes, intercepts)


def evaluate_pwl(table, x):
    x = torch.as_tensor(x, dtype=torch.float64)
    segment = torch.searchsorted(table.breakpoints, x, right=True)
    return table.slopes[segment] * x + table.intercepts[segment]


@contextmanager
def one_thread():
    """Run torch on one CPU thread (reproducible reductions), then restore the caller's setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train_network(u, t, n, b, iterations):
    """Levenberg-Marquardt on every parameter of the network, from weights ``n``, biases ``b`` and the
    least-squares output layer; returns (sum of squared errors, n, b, m, c)."""
    hidden = len(n)
    ones = torch.ones(len(u), 1, dtype=torch.float64)

    def residual(theta):
        n, b, m, c = theta[:hidden], theta[hidden:2 * hidden], theta[2 * hidden:3 * hidden], theta[-1]
        pre = u[:, None] * n + b
        act = torch.relu(pre)
        on = (pre > 0).to(torch.float64) * m
        # The Jacobian of a ReLU layer in closed form: d/dn = m u [active], d/db = m [active], d/dm = relu.
        return act @ m + c - t, torch.cat([on * u[:, None], on, act, ones], dim=1)

    basis = torch.cat([torch.relu(u[:, None] * n + b), ones], dim=1)
    theta = torch.cat([n, b, torch.linalg.lstsq(basis, t[:, None], driver="gelsd").solution[:, 0]])
    r, jac = residual(theta)
    loss, damping = float(r @ r), 1e-3
    for _ in range(iterations):
        normal = jac.T @ jac
        scaling = torch.diag(torch.diagonal(normal).clamp(min=1e-12))
        step = torch.linalg.solve(normal + damping * scaling, -(jac.T @ r))
        r_new, jac_new = residual(theta + step)
        loss_new = float(r_new @ r_new)
        if loss_new < loss:
            converged = loss - loss_new <= 1e-10 * loss
            theta, r, jac, loss, damping = theta + step, r_new, jac_new, loss_new, max(damping / 3, 1e-12)
            if converged:
                break
        else:
            damping *= 4
            if damping > 1e8:
                break
    return loss, theta[:hidden], theta[hidden:2 * hidden], theta[2 * hidden:3 * hidden], theta[-1]


def fit_nnlut(x, y, entries, seed=0, iterations=NNLUT_ITERATIONS):
    """Train the NN-LUT network with ``entries - 1`` hidden units on samples ``(x, y)``; returns the
    :class:`ReluNetwork` in ``x``'s units.

    Training runs on normalised coordinates (``x`` mapped to [-1, 1], ``y`` to zero mean and unit
    variance) and the result is mapped back exactly (an affine change of variables in each unit). Two
    starts, both with evenly spaced kinks and the output layer solved by least squares: every unit
    opening to the right with the first kink just left of the range (that unit is the linear term the
    network form lacks), and units opening alternately right and left. Each is trained by
    Levenberg-Marquardt (full batch, float64; second-order training suits a network this small and is
    reproducible); the start with the smaller squared error wins. ``seed`` jitters the initial weights.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    hidden = entries - 1
    centre, half = (x.max() + x.min()) / 2, max(float(x.max() - x.min()) / 2, 1e-300)
    mean, scale = y.mean(), max(float(y.std()), 1e-300) if len(y) > 1 else 1.0
    u, t = (x - centre) / half, (y - mean) / scale
    gen = torch.Generator().manual_seed(seed)
    magnitudes = 1 + 0.1 * torch.rand(2, hidden, generator=gen, dtype=torch.float64)
    starts = [
        (torch.ones(hidden, dtype=torch.float64),
         torch.linspace(-1, 1, hidden + 1, dtype=torch.float64)[:-1] - 1 / hidden),
        (torch.where(torch.arange(hidden) % 2 == 0, 1.0, -1.0).to(torch.float64),
         torch.linspace(-1, 1, hidden + 2, dtype=torch.float64)[1:-1]),
    ]
    with one_thread():
        trained = [_train_network(u, t, direction * magnitude, -direction * magnitude * kinks, iterations)
                   for (direction, kinks), magnitude in zip(starts, magnitudes)]
    _, n, b, m, c = min(trained, key=lambda result: result[0])
    # u = (x - centre) / half and y = scale * t + mean, folded into each unit.
    return ReluNetwork(weights=n / half, biases=b - n * centre / half, out_weights=m * scale,
                       out_bias=c * scale + mean)


# --- iRNN-style breakpoint search ------------------------------------------------------------------------

class _SegmentCost:
    """Squared error of the weighted least-squares line on runs ``[start, stop)`` of samples (tensors of
    run ends, any shape), from prefix sums."""

    def __init__(self, y, weights):
        count = len(y)
        x = torch.linspace(-1, 1, count, dtype=torch.float64)
        w = torch.ones(count, dtype=torch.float64) if weights is None else \
            torch.as_tensor(weights, dtype=torch.float64)
        # Removing one global weighted line changes no segment's least-squares error and keeps the sums
        # small, so their differences lose little precision.
        sw, sx, sxx = w.sum(), (w * x).sum(), (w * x * x).sum()
        sy, sxy = (w * y).sum(), (w * x * y).sum()
        det = sw * sxx - sx * sx
        slope = (sw * sxy - sx * sy) / det if det > 0 else torch.zeros((), dtype=torch.float64)
        y = y - (slope * x + (sy - slope * sx) / sw)
        zero = torch.zeros(1, dtype=torch.float64)
        self.sums = [torch.cat([zero, torch.cumsum(term, 0)])
                     for term in (w, w * x, w * x * x, w * y, w * x * y, w * y * y)]

    def __call__(self, start, stop):
        sw, sx, sxx, sy, sxy, syy = (s[stop] - s[start] for s in self.sums)
        sw = sw.clamp(min=1e-300)
        var_x = sxx - sx * sx / sw
        fitted = torch.where(var_x > 1e-12 * sxx.abs().clamp(min=1e-300),
                             (sxy - sx * sy / sw) ** 2 / var_x.clamp(min=1e-300), torch.zeros_like(var_x))
        return (syy - sy * sy / sw - fitted).clamp(min=0)


def _optimal_segmentation(cost, count, entries, grid):
    """Run ends of the ``entries`` segments minimising the total cost, with every breakpoint on a grid
    of about ``grid`` evenly spaced samples (dynamic programming over the grid)."""
    stride = -(-count // grid)
    points = torch.cat([torch.arange(0, count, stride), torch.tensor([count])])
    size = len(points)
    costs = cost(points[:, None].expand(size, size), points[None, :].expand(size, size))
    costs = torch.where(points[:, None] < points[None, :], costs, torch.full_like(costs, math.inf))
    best, choices = costs[0], []
    for _ in range(entries - 1):
        best, choice = (best[:, None] + costs).min(dim=0)
        choices.append(choice)
    ends, end = [], size - 1
    for choice in reversed(choices):
        end = int(choice[end])
        ends.append(int(points[end]))
    return [0, *reversed(ends), count]


def _refine(cost, bounds, max_sweeps):
    """Coordinate descent on the breakpoints: every other breakpoint at once (their moves are
    independent), each to the sample between its neighbours minimising the cost of its two segments."""
    bounds = torch.tensor(bounds, dtype=torch.int64)
    inner = len(bounds) - 2
    for _ in range(max_sweeps):
        moved = False
        for first in (1, 2):
            j = torch.arange(first, inner + 1, 2)
            if len(j) == 0:
                continue
            left, right, now = bounds[j - 1], bounds[j + 1], bounds[j]
            lengths = (right - left - 1).clamp(min=0)
            owner = torch.repeat_interleave(torch.arange(len(j)), lengths)
            starts = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
            cut = left[owner] + 1 + torch.arange(len(owner)) - starts
            total = cost(left[owner], cut) + cost(cut, right[owner])
            lowest = torch.full((len(j),), math.inf, dtype=torch.float64).scatter_reduce(0, owner, total, "amin")
            first_best = torch.full((len(j),), torch.iinfo(torch.int64).max).scatter_reduce(
                0, owner, torch.where(total == lowest[owner], cut, torch.iinfo(torch.int64).max), "amin")
            current = cost(left, now) + cost(now, right)
            better = (lowest < current * (1 - 1e-12)) & (lengths > 0)
            if bool(better.any()):
                bounds[j[better]] = first_best[better]
                moved = True
        if not moved:
            break
    return bounds


def fit_irnn(y, entries, weights=None, grid=IRNN_GRID, max_sweeps=IRNN_SWEEPS):
    """Breakpoints for samples ``y`` at consecutive codes, as sample indices: ``entries - 1`` ascending
    indices, segment ``k`` holding samples ``[index[k-1], index[k])``, minimising the (``weights``-weighted)
    squared error of least-squares segments.

    The optimal segmentation on a grid of at most ``grid`` samples (dynamic programming; exact when there
    are no more samples than that) is refined at full resolution by coordinate descent.
    """
    y = torch.as_tensor(y, dtype=torch.float64)
    count = len(y)
    if count <= entries:
        return torch.tensor((list(range(1, count)) + [count - 1] * entries)[:entries - 1], dtype=torch.int64)
    cost = _SegmentCost(y, weights)
    with one_thread():
        bounds = _optimal_segmentation(cost, count, entries, grid)
        if count > grid:
            bounds = _refine(cost, bounds, max_sweeps).tolist()
    return torch.tensor(bounds[1:-1], dtype=torch.int64)
