"""Benchmark: curvature through HVPs (testbed.curvature on testbed.nn's operators), float64.

    .venv/bin/python benchmarks/curvature.py            # all three parts
    .venv/bin/python benchmarks/curvature.py --quick    # smaller networks
    .venv/bin/python benchmarks/curvature.py --threads 1  # one BLAS thread (steadier on a busy machine)

1. Sharpness of a depth-4 network with ~10^5 parameters: Lanczos (full reorthogonalisation) on
   Pearlmutter HVPs. Targets: relative error 1e-8 in at most 60 HVPs; total time at most 1.5 x the
   time of its HVPs alone (the O(l k^2) reorthogonalisation must not dominate). The reference
   lambda_1 is a longer Lanczos run converged to a residual of 1e-12 lambda_1.
2. The crossover against the dense route, jax.jit(jax.hessian(J)) + numpy.linalg.eigvalsh: time and
   memory (the l x l float64 Hessian against Lanczos' l x k basis) as l grows.
3. Trace of a Gauss-Newton matrix G = J^T J / m: products needed by Hutchinson and by Hutch++ to
   bring the RMS relative error (over repeated estimates) under 1%, beside G's spectrum (exact, from
   the singular values of jax.jacobian of tau).
Figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __name__ == "__main__" and "--threads" in sys.argv:
    # thread counts are read when numpy and jax load, so they are set before the imports below
    _n = sys.argv[sys.argv.index("--threads") + 1]
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = _n

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import testbed.nn as nn  # noqa: E402
from testbed import curvature as cv  # noqa: E402


def _problem(sizes, m, seed, activation="tanh"):
    rng = np.random.default_rng(seed)
    net = nn.init_network(sizes, activation, "xavier_normal", rng, bias_std=0.1)
    x = rng.standard_normal((m, sizes[0]))
    y = np.sin(2 * x @ rng.standard_normal((sizes[0], sizes[-1])) / np.sqrt(sizes[0]))
    return net, x, y



def sharpness(quick: bool) -> None:
    sizes = [50, 200, 200, 200, 1] if not quick else [20, 64, 64, 64, 1]
    m = 256 if not quick else 64
    net, x, y = _problem(sizes, m, 0)
    # a few steps of gradient descent: the top eigenvalue of a trained network is an outlier
    net = nn.train(net, x, y, lr=0.05, steps=200).net
    l = net.n_params
    H = nn.hessian_operator(net, x, y)
    print(f"1. sharpness: sizes {sizes} (tanh), m = {m}, l = {l}")
    ref = cv.top_eigenvalues(H, 1, rng=np.random.default_rng(1), tol=1e-12, max_steps=min(l, 400))
    lam = ref.values[0]
    print(f"   reference lambda_1 = {lam:.15g} ({ref.n_matvecs} HVPs, residual {ref.residuals[0]:.2g})")
    v0 = np.random.default_rng(2).standard_normal(l)
    v = np.random.default_rng(3).standard_normal(l)
    H @ v  # warm-up
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        H @ v
    t_hvp = (time.perf_counter() - t0) / reps
    print("   k    |theta_1 - lambda_1| / lambda_1   Lanczos time   k x HVP time   ratio")
    first = None
    for k in (10, 20, 30, 40, 50, 60):
        t0 = time.perf_counter()
        alpha, beta, _ = cv.lanczos(H, v0, k)
        theta = cv.tridiagonal_eigh(alpha, beta)[0][-1]
        wall = time.perf_counter() - t0
        err = abs(theta - lam) / abs(lam)
        if first is None and err <= 1e-8:
            first = k
        print(f"   {k:3d}  {err:10.2e}                       {wall:8.3f} s     {k * t_hvp:8.3f} s   "
              f"{wall / (k * t_hvp):5.2f}")
    print(f"   one HVP: {t_hvp * 1e3:.1f} ms; 1e-8 reached at k = {first} (target <= 60 HVPs, "
          f"ratio <= 1.5)")


def crossover(quick: bool) -> None:
    print("\n2. crossover: top eigenvalue by Lanczos (tol 1e-10) vs dense jax.hessian + eigvalsh")
    print("       l   Lanczos s  HVPs  basis MB    dense: hessian s  eigvalsh s   H MB   |diff|/lambda")
    widths = (8, 16, 24, 32, 40) if not quick else (8, 16)
    for w in widths:
        sizes = [10, w, w, w, 1]
        net, x, y = _problem(sizes, 128, 1)
        l = net.n_params
        H = nn.hessian_operator(net, x, y)
        t0 = time.perf_counter()
        res = cv.top_eigenvalues(H, 1, rng=np.random.default_rng(0), tol=1e-10)
        t_l = time.perf_counter() - t0
        _, J = nn.to_jax_flat(net)
        hess = jax.jit(jax.hessian(J))
        theta = jnp.asarray(nn.flatten(net))
        hess(theta, x, y).block_until_ready()  # compile outside the timing
        t0 = time.perf_counter()
        Hd = np.asarray(hess(theta, x, y))
        t_h = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev = np.linalg.eigvalsh(Hd)
        t_e = time.perf_counter() - t0
        diff = abs(ev[-1] - res.values[0]) / ev[-1]
        print(f"   {l:5d}  {t_l:9.3f}  {res.n_matvecs:4d}  {res.n_matvecs * l * 8 / 1e6:8.2f}    "
              f"{t_h:12.3f}  {t_e:10.3f}  {l * l * 8 / 1e6:7.1f}   {diff:.1e}")


def traces(quick: bool) -> None:
    sizes = [10, 48, 48, 1] if not quick else [6, 16, 16, 1]
    m = 256 if not quick else 64
    net, x, y = _problem(sizes, m, 2)
    l = net.n_params
    tau, _ = nn.to_jax_flat(net)
    Jac = np.asarray(jax.jacobian(tau)(jnp.asarray(nn.flatten(net)), x)).reshape(m, l)
    sv = np.linalg.svd(Jac, compute_uv=False) ** 2 / m  # the non-zero eigenvalues of G
    trace = sv.sum()
    G = nn.gauss_newton_operator(net, x, y)
    print(f"\n3. trace of Gauss-Newton G: sizes {sizes}, m = {m}, l = {l}, rank <= {m}, tr(G) = {trace:.6g}")
    cum = np.cumsum(sv) / trace
    print("   spectrum of G: lambda_i / lambda_1 at i = 1, 2, 4, 8, 16, 32, 64, 128: "
          + ", ".join(f"{sv[i - 1] / sv[0]:.1e}" for i in (1, 2, 4, 8, 16, 32, 64, 128) if i <= len(sv)))
    print("   share of tr(G) in the top 1, 4, 16, 64 eigenvalues: "
          + ", ".join(f"{cum[i - 1]:.3f}" for i in (1, 4, 16, 64) if i <= len(sv)))
    reps = 30 if not quick else 10
    print("   products m   RMS rel. error: Hutchinson   Hutch++   (over", reps, "estimates each)")
    reached = {}
    for mm in (6, 12, 24, 48, 96, 192, 384, 768):
        row = []
        for method in ("hutchinson", "hutch++"):
            rng = np.random.default_rng(mm)
            errs = [cv.trace_estimate(G, mm, method, rng=rng)[0] / trace - 1 for _ in range(reps)]
            rms = float(np.sqrt(np.mean(np.square(errs))))
            row.append(rms)
            if rms <= 0.01 and method not in reached:
                reached[method] = mm
        print(f"   {mm:10d}   {row[0]:24.2e}   {row[1]:8.2e}")
    # Hutchinson's error is known exactly: Var(z^T G z) = 2 (||G||_F^2 - sum_i G_ii^2)
    diag = np.sum(Jac * Jac, axis=0) / m
    var = 2 * (np.sum(sv * sv) - np.sum(diag * diag))
    print(f"   products to reach 1%: Hutchinson {reached.get('hutchinson', '> 768')} (the variance "
          f"formula says {var / (0.01 * trace) ** 2:.0f}), Hutch++ {reached.get('hutch++', '> 768')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", default=None, help="BLAS threads (read before numpy loads)")
    args = p.parse_args()
    sharpness(args.quick)
    crossover(args.quick)
    traces(args.quick)


if __name__ == "__main__":
    main()
