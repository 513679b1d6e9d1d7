# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A guided tour of testbed
#
# This notebook is built from `docs/tour.py` by `make docs` and executed by the test suite, so
# every number below is what the code gives today. The theory it walks through is in
# [theory.md](theory.md); the measured claims are in the [claims table](../results/README.md).

# %%
# %matplotlib inline
import jax

jax.config.update("jax_enable_x64", True)  # float64 in JAX too, before any jax array exists

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import testbed  # noqa: E402
import testbed.nn as nn  # noqa: E402

# %% [markdown]
# ## 1. A circuit, its picture, its gradient circuit
# `trace` records f: R^3 -> R as a circuit of primitive operations. N is its number of
# operations, l its number of inputs.

# %%
c = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + x[2] / (x[0] * x[0] + 1.0), 3)
print(c)
print("N =", c.size, " l =", c.l)

# %%
x = np.array([1.0, 2.0, 3.0])
testbed.draw(c, x)

# %% [markdown]
# The backprop picture: forward values, then the cotangents flowing back edge by edge. The input
# row of the right panel is grad f(x).

# %%
testbed.draw_backprop(c, x)

# %% [markdown]
# The same reverse sweep one node at a time: each step sends one node's cotangent back along its
# edges.

# %%
testbed.draw_sweep(c, x, columns=3)

# %% [markdown]
# The gradient is itself a circuit, a few times the size of c, and can be differentiated again.

# %%
testbed.draw_grad(c)

# %% [markdown]
# ## 2. Checked against `jax.grad`

# %%
f, g = testbed.value_and_grad(c, x)
fj = testbed.to_jax(c)                              # the same circuit in jax.numpy
g_jax = np.asarray(jax.grad(fj)(jnp.asarray(x)))
print("testbed:", g)
print("jax:    ", g_jax)
print("max relative difference:", np.max(np.abs(g - g_jax) / np.abs(g_jax)))

# %% [markdown]
# Grad-of-grad: output 0 of the gradient circuit is df/dx_0; its gradient is row 0 of the
# Hessian, and one more `grad` gives a third derivative.

# %%
d0 = testbed.grad(c).output(0)                      # x -> df/dx0
print("row 0 of the Hessian:", testbed.grad(d0)(x))
print("jax, row 0:          ", np.asarray(jax.grad(lambda x: jax.grad(fj)(x)[0])(jnp.asarray(x))))
d00 = testbed.grad(d0).output(0)                    # x -> d2f/dx0^2
print("d3f/dx0^3:", testbed.grad(d00)(x)[0])
d3_jax = jax.grad(lambda x: jax.grad(lambda x: jax.grad(fj)(x)[0])(x)[0])(jnp.asarray(x))[0]
print("jax:      ", float(d3_jax))

# %% [markdown]
# ## 3. The cost of a gradient: backprop against finite differences
# `op_counts` counts the operations each transform performs. Backprop costs a constant times N
# whatever l is; forward differences cost (l + 1) N.

# %%
rows = []
for l in (1, 10, 100, 1000):
    cl = testbed.trace(lambda x: sum(testbed.sin(xi) * xi for xi in x), l)
    N = cl.size
    grad_ops = sum(testbed.op_counts(cl, "grad").values())
    fd_ops = sum(testbed.op_counts(cl, "fd_forward").values())
    rows.append((l, N, grad_ops / N, fd_ops / N))
    print(f"l={l:5d} N={N:5d}  grad ops / N = {grad_ops / N:5.2f}   "
          f"finite differences ops / N = {fd_ops / N:7.1f}")

# %% [markdown]
# ## 4. A Hessian-vector product, three ways
# On the circuit (forward mode through `grad(c)`), with JAX (forward over reverse), and on the deep
# network with Pearlmutter's R-operator against JAX.

# %%
v = np.array([0.5, -1.0, 2.0])
hv = testbed.hvp(c, x, v)
hv_jax = np.asarray(jax.jvp(jax.grad(fj), (jnp.asarray(x),), (jnp.asarray(v),))[1])
print("circuit hvp:", hv)
print("jax:        ", hv_jax)

rng = np.random.default_rng(0)
xb = rng.uniform(-2, 2, size=(32, 3))
yb = np.sin(xb[:, :1])
net = nn.init_network([3, 16, 16, 1], "tanh", "xavier_normal", rng)
# per-layer lists are indexed by the notes' k = 1..r, slot 0 unused (None): net.W[k] is W[k]
V = ([None] + [rng.normal(size=W.shape) for W in net.W[1:]],
     [None] + [rng.normal(size=b.shape) for b in net.b[1:]])
HW, Hb = nn.hvp(net, xb, yb, V)                     # Pearlmutter's R-pass
J = nn.to_jax_loss(net)


def grad_J(W: list, b: list) -> tuple:
    return jax.grad(J, argnums=(0, 1))(W, b, xb, yb)


def as_jax(params: list) -> list:  # [None, X[1], ..., X[r]] as jax arrays; jax keeps the None slot 0
    return [None] + [jnp.asarray(p) for p in params[1:]]


_, (HW_jax, Hb_jax) = jax.jvp(grad_J, (as_jax(net.W), as_jax(net.b)), (as_jax(V[0]), as_jax(V[1])))
print("R-pass vs jax, max relative difference per layer k = 1..r:",
      [float(np.max(np.abs(HW[k] - np.asarray(HW_jax[k]))) / np.max(np.abs(HW_jax[k])))
       for k in net.layers])

# %% [markdown]
# ## 5. The deep network and its three lemmas
# Backprop is Lemma 3 once, then Lemma 1 and Lemma 2 alternately. Here layer 2 by hand, against
# the gradient `value_and_grad` returns. Every per-layer list is indexed by the notes' k = 1..r:
# `net.W[k]`, `grads.dW[k]` (= dJ/dW[k]), `grads.dz[k]`, `cache.z[k]`, with an unused slot 0
# (None); `cache.a[0]` is x and `grads.da[0]` is dJ/dx. `net.layers` is range(1, r + 1).

# %%
cache = nn.forward(net, xb)
Jval, grads = nn.value_and_grad(net, xb, yb)
dz3 = nn.lemma3(yb, cache.tau)                                       # dJ/dz[3]
dW3, db3, da2 = nn.lemma1(dz3, cache.a[2], net.W[3])                 # Lemma 1 at k = 3
dz2 = nn.lemma2(da2, cache.z[2], "tanh")                             # Lemma 2 at k = 2
dW2, db2, _ = nn.lemma1(dz2, cache.a[1], net.W[2])                   # Lemma 1 at k = 2
print("dJ/dW[2] by hand equals backprop's:", np.array_equal(dW2, grads.dW[2]),
      "and dJ/dz[2]:", np.array_equal(dz2, grads.dz[2]))
nn.draw(net, xb, yb)

# %% [markdown]
# ## 6. Variance propagation and vanishing gradients
# Var(o) = n Var(w) Var(x): with "standard" initialisation (Var(w) = 1 / (3 n)) the variance of
# z[k] shrinks by 1/3 per layer in a linear network; Xavier keeps it. With sigmoid and standard
# initialisation the gradient ||dJ/dz[k]|| vanishes towards the input.

# %%
rng = np.random.default_rng(1)
xs = rng.normal(size=(512, 128))
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for init in ("standard", "xavier_normal"):
    deep = nn.init_network([128] * 21, "identity", init, rng)
    var = [np.var(z) for z in nn.forward(deep, xs).z[1:]]
    left.semilogy(range(1, 21), var, "o-", ms=3, label=init)
left.semilogy(range(1, 21), (1 / 3) ** np.arange(1, 21), "k:", label="(1/3)^k")
left.set(xlabel="layer k", ylabel="Var(z[k])", title="identity activation, width 128")
left.legend()
for act, init in (("sigmoid", "standard"), ("tanh", "xavier_normal"), ("relu", "he_normal")):
    deep = nn.init_network([128] * 20 + [1], act, init, rng)
    _, gr = nn.value_and_grad(deep, xs[:64], rng.normal(size=(64, 1)))
    if act == "sigmoid":
        gr_sigmoid = gr
    right.semilogy(range(1, 21), [np.linalg.norm(gr.dz[k]) for k in range(1, 21)], "o-", ms=3,
                   label=f"{act} + {init}")
# mean-field theory for sigmoid + standard (sigma_w^2 = n Var(w) = 1/3, no bias): the variance q of
# z[k] settles at the fixed point q* of q = sigma_w^2 E[sigmoid(sqrt(q) u)^2], u ~ N(0, 1), and each
# layer multiplies ||dJ/dz|| by sqrt(chi_1), chi_1 = sigma_w^2 E[sigmoid'(sqrt(q*) u)^2]
u, w = np.polynomial.hermite_e.hermegauss(80)
w = w / w.sum()
sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
q = 1.0
for _ in range(200):
    q = (1 / 3) * np.sum(w * sig(np.sqrt(q) * u) ** 2)
chi1 = (1 / 3) * np.sum(w * (sig(np.sqrt(q) * u) * (1 - sig(np.sqrt(q) * u))) ** 2)
top = np.linalg.norm(gr_sigmoid.dz[20])
right.semilogy(range(1, 21), top * np.sqrt(chi1) ** (20 - np.arange(1, 21)), "k:",
               label=f"theory: sqrt(chi_1) = {np.sqrt(chi1):.3f} per layer")
right.set(xlabel="layer k", ylabel="||dJ/dz[k]||", title="gradient norms, depth 20")
right.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 7. The Hessian's spectrum, through HVPs only
# `testbed.nn.hessian_operator` wraps the R-pass as a scipy `LinearOperator` (one HVP per product);
# Lanczos finds the top eigenvalue in a few dozen products, and stochastic Lanczos quadrature
# estimates the whole spectral density. Here l = 353, so the exact spectrum (l HVPs, then
# `numpy.linalg.eigvalsh`) can be drawn beside it.

# %%
from testbed import curvature  # noqa: E402

H = nn.hessian_operator(net, xb, yb)
l = H.shape[0]
top = curvature.top_eigenvalues(H, 1, rng=np.random.default_rng(2))
exact = np.linalg.eigvalsh(H @ np.eye(l))
print(f"l = {l}: top eigenvalue by Lanczos {top.values[0]:.12g} in {top.n_matvecs} HVPs; "
      f"exact {exact[-1]:.12g}")
nodes, weights = curvature.spectral_density(H, 40, 8, rng=np.random.default_rng(3))
grid = np.linspace(exact[0] - 0.5, exact[-1] + 0.5, 600)
fig, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
ax.hist(exact, bins=120, density=True, color="0.8", label=f"exact eigenvalues ({l})")
curve = curvature.density_curve(nodes, weights, grid, sigma=0.05)
ax.plot(grid, curve, "C3", label="stochastic Lanczos quadrature (8 probes x 40 steps), broadened 0.05")
ax.set_yscale("log")
ax.set(xlabel="eigenvalue of the Hessian of J", ylabel="density", ylim=(1e-3, 3 * curve.max()))
ax.legend(fontsize=8)
plt.show()
