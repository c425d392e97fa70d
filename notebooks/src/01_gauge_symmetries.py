# %% [markdown]
# # 01 · Gauge symmetries of neural networks
#
# A feed-forward network has many parameter vectors that compute **the same function**. For every
# hidden layer $l$ we may permute the neurons ($P_l$) and rescale them ($Q_l$ diagonal) as long as the
# next layer undoes it:
#
# $$W_l \mapsto Q_l P_l\, W_l\, P_{l-1}^{\top} Q_{l-1}^{-1},\qquad b_l \mapsto Q_l P_l\, b_l,
# \qquad P_0 = Q_0 = P_L = Q_L = I .$$
#
# This is a symmetry exactly when the activation commutes with the scaling,
# $\sigma(Q x) = Q\,\sigma(x)$. Which $Q$ are allowed depends on $\sigma$; we **derive** the answer in
# sympy, check it against the library's one source of truth (`scalegmn_lite.weightspace.spec`), then verify it
# numerically and visually.
#
# **Sources.** The scaling symmetries as the group ScaleGMN is built for: Kalogeropoulos, Bouritsas &
# Panagakis, *Scale Equivariant Graph Metanetworks*, NeurIPS 2024. SIREN (sine activations):
# Sitzmann et al., *Implicit Neural Representations with Periodic Activation Functions*, NeurIPS 2020.
#
# **You will learn** which permutations and scalings of hidden neurons leave a network's function
# unchanged, why the answer depends on the activation, and how to check it symbolically,
# numerically and with your own eyes.

# %%
from scalegmn_lite.common.config import notebook_setup

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import sympy as sp
import torch

from scalegmn_lite import GaugeElement, NetworkSpec, WeightSpace, batched_forward, sample_non_symmetry, symmetry_of
from scalegmn_lite.experiments.gauge import random_specs
from scalegmn_lite.symbolic.activations import derive_all, derive_scalings
from scalegmn_lite.symbolic.latex import scalings_table_latex, show_math
from scalegmn_lite.symbolic.mlp import check_gauge_invariance, sample_symbolic_gauge

# %% [markdown]
# ## 1. Which scalings commute with an activation?
#
# First look: draw $\sigma(qx)$ and $q\,\sigma(x)$ for a few $q$. Where the two curves coincide for
# every $x$, scaling a neuron's input by $q$ can be undone by dividing its output by $q$.

# %% tags=["nbval-ignore-output"]
xs_plot = torch.linspace(-2, 2, 201)
acts = {"ReLU": torch.relu, "tanh": torch.tanh}
fig, axes = plt.subplots(1, 4, figsize=(12, 2.6), sharex=True)
for ax, (name, q) in zip(axes, [("ReLU", 2.0), ("ReLU", -1.0), ("tanh", -1.0), ("tanh", 2.0)]):
    sigma = acts[name]
    ax.plot(xs_plot, sigma(q * xs_plot), lw=2.5, label=r"$\sigma(qx)$")
    ax.plot(xs_plot, q * sigma(xs_plot), lw=1.5, ls="--", label=r"$q\,\sigma(x)$")
    same = torch.allclose(sigma(q * xs_plot), q * sigma(xs_plot))
    ax.set_title(f"{name}, q = {q:g}: {'equal' if same else 'different'}", fontsize=10)
    ax.set_xlabel("x")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ReLU accepts $q = 2$ but not $q = -1$; tanh the other way round. Which $q$ work for *every* $x$?
# $Q$ is diagonal, so $\sigma(Qx) = Q\sigma(x)$ splits into scalar equations: find all $q \neq 0$ with
# $\sigma(qx) = q\,\sigma(x)$ for every real $x$.
#
# * **ReLU / LeakyReLU** are piecewise linear. Write $q = \pm r$, $x = \pm t$ with $r, t > 0$; on each
#   of the four sign branches sympy evaluates the activation exactly and the residual is $c(r)\,t$.
# * **Analytic activations** (tanh, sine, sigmoid, GELU, SiLU): expand
#   $\sigma(qx) - q\sigma(x) = \sum_k c_k(q)\,x^k$. Every coefficient must vanish (necessary); each
#   surviving candidate is then proved by direct substitution.
#
# For tanh the $x^3$ coefficient is $-(q^3 - q)/3$, so $q \in \{-1, 0, 1\}$, and $q = 0$ is not invertible:

# %%
tanh_sol = derive_scalings("tanh")
for cond in tanh_sol.conditions:
    show_math(cond)
tanh_sol.solutions

# %% [markdown]
# For the sigmoid the constant term alone forces $q = 1$: $\sigma(0) = 1/2 \neq 0$.

# %%
sig_sol = derive_scalings("sigmoid")
show_math(sig_sol.conditions[0])
sig_sol.solutions

# %% [markdown]
# ReLU: the four sign branches ($q = s_q r$, $x = s_x t$ with $r, t > 0$). On each branch sympy
# computes the residual $\mathrm{ReLU}(qx) - q\,\mathrm{ReLU}(x) = c(r)\,t$ and the condition $c(r) = 0$:

# %%
relu_sol = derive_scalings("relu")
branches = [(sq, sx) for sq in ("+", "-") for sx in ("+", "-")]  # the order of relu_sol.conditions
holds = {True: r"\text{always}", False: r"\text{never, as } r > 0"}
rows = [rf"q = {sq}r,\ x = {sx}t & {sp.latex(c.lhs)} = 0 & {holds[c.lhs == 0]}"
        for (sq, sx), c in zip(branches, relu_sol.conditions)]
show_math(r"\begin{array}{lll} \text{branch} & \text{condition} & \text{holds} \\ \hline "
          + r" \\ ".join(rows) + r"\end{array}")
_ = show_math(r"\Rightarrow\ q \in ", relu_sol.solutions, sep=" ")

# %% [markdown]
# Both branches with $q > 0$ hold for every $r$; for $q < 0$ the branch $x > 0$ leaves the residual
# $r\,t \ne 0$, so only $q > 0$ survives.

# %% [markdown]
# All activations at once. The derived symmetry must equal `spec.symmetry_of` (the spec is the
# source of truth, the derivation confirms it). Note the identity activation admits *every* $q \ne 0$;
# the library uses its positive part.

# %%
derived = derive_all()
_ = show_math(scalings_table_latex(derived))
assert all(sol.symmetry is symmetry_of(name) for name, sol in derived.items())
{name: sol.symmetry.value for name, sol in derived.items()}

# %% [markdown]
# ## 2. The gauge action on a symbolic MLP
#
# Take a symbolic $[3, 3, 3, 2]$ MLP with weights $w^{(l)}_{ij}$, biases $b^{(l)}_i$, apply a random gauge
# element and subtract. For ReLU the scalings are *positive symbols* $q^{(l)}_i$ and the ReLU pulls
# positive factors out, $\mathrm{ReLU}(q z) = q\,\mathrm{ReLU}(z)$; for tanh the signs $\pm1$ are substituted
# and sympy's $\tanh(-z) = -\tanh(z)$ does the rest. No `simplify` is needed (or safe: it can hang).
#
# First the picture of the gauge element sampled below: the same MLP before and after, each neuron
# coloured and numbered by its identity in $\theta$.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.course.operator_figures import draw_gauge_action, gauge_diagram

spec = NetworkSpec.from_text("mlp 3-3-3-2 relu")
perms, scales = sample_symbolic_gauge(spec, seed=SEED)
check = check_gauge_invariance(spec, perms, scales)
diagram = gauge_diagram(spec.widths, perms, scales)
draw_gauge_action(diagram, title="hidden neurons permuted and rescaled; sympy: "
                  + ("output difference = 0" if check.is_zero else "output changed"))
plt.show()
assert check.is_zero and [list(s) for s in diagram.source[1:-1]] == perms

# %% [markdown]
# The same element as formulas, and the symbolic output difference $f_{g\cdot\theta} - f_\theta$:

# %%
show_math(r"p^{(1)} = ", sp.Matrix(perms[0]).T, r"\quad q^{(1)} = ", sp.Matrix(scales[0]).T)
check.difference.T

# %%
results = {act: check_gauge_invariance(f"mlp 3-3-3-2 {act}", seed=SEED).is_zero
           for act in ["relu", "leaky_relu", "tanh", "sine", "sigmoid", "gelu", "silu"]}
results

# %% [markdown]
# **Negative control.** A scaling outside the allowed set ($q = -1$ under ReLU, $q = 2$ under tanh)
# does not reduce to 0. We detect it cheaply: substitute random numbers and evaluate.

# %%
for act, bad_q in [("relu", -1), ("tanh", 2)]:
    s = NetworkSpec.from_text(f"mlp 3-3-3-2 {act}")
    p, q = sample_symbolic_gauge(s, seed=SEED)
    bad = check_gauge_invariance(s, p, [[sp.Integer(bad_q), *row[1:]] for row in q])
    print(f"{act}: q = {bad_q} -> symbolic zero: {bad.is_zero}, numeric |diff| > 1e-3: {bad.numeric_max_abs > 1e-3}")

# %% [markdown]
# ## 3. From scratch in torch, then the library
#
# A 2-layer MLP $x \mapsto W_2\,\mathrm{ReLU}(W_1 x + b_1) + b_2$. With $M = Q P$
# ($(Mh)_i = q_i h_{p_i}$): $W_1' = M W_1$, $b_1' = M b_1$, $W_2' = W_2 M^{-1}$.

# %%
torch.manual_seed(SEED)
n_in, n_hid, n_out = 2, 5, 3
W1, b1 = torch.randn(n_hid, n_in, dtype=torch.float64), torch.randn(n_hid, dtype=torch.float64)
W2, b2 = torch.randn(n_out, n_hid, dtype=torch.float64), torch.randn(n_out, dtype=torch.float64)
perm = torch.randperm(n_hid)
q = torch.rand(n_hid, dtype=torch.float64) * 3 + 0.25  # positive
M = torch.diag(q) @ torch.eye(n_hid, dtype=torch.float64)[perm]  # rows of I in the new order
W1s, b1s, W2s = M @ W1, M @ b1, W2 @ torch.linalg.inv(M)


def f(x, W1, b1, W2, b2):
    return torch.relu(x @ W1.T + b1) @ W2.T + b2


x = torch.randn(100, n_in, dtype=torch.float64)
same = torch.allclose(f(x, W1s, b1s, W2s, b2), f(x, W1, b1, W2, b2), rtol=0, atol=1e-12)
print("from scratch: f_{QP W} == f_W to 1e-12:", same)
assert torch.allclose(f(x, W1s, b1s, W2s, b2), f(x, W1, b1, W2, b2), atol=1e-12)

# %% [markdown]
# The library's `GaugeElement` with the same permutation and scaling gives the same weights:

# %%
spec2 = NetworkSpec.from_text(f"mlp {n_in}-{n_hid}-{n_out} relu")
ws = WeightSpace(spec2, [W1[None], W2[None]], [b1[None], b2[None]])
g = GaugeElement(spec2, [perm[None]], [q[None]])
ws_g = g.apply(ws)
assert torch.allclose(ws_g.weights[0][0], W1s) and torch.allclose(ws_g.weights[1][0], W2s)
assert torch.allclose(ws_g.biases[0][0], b1s)
print("library == from scratch:", True)

# %% [markdown]
# The two parameter vectors side by side: the rows of $W_1$ are shuffled and rescaled, the columns of
# $W_2$ shuffled and rescaled inversely, and yet both compute the function checked above.

# %% tags=["nbval-ignore-output"]
mats = {"$W_1$": W1, "$W_1' = M W_1$": W1s, "$W_2$": W2, "$W_2' = W_2 M^{-1}$": W2s}
vmax = max(float(m.abs().max()) for m in mats.values())
fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), gridspec_kw={"width_ratios": [2, 2, 5, 5], "wspace": 0.45})
for i, (ax, (name, m)) in enumerate(zip(axes, mats.items())):
    im = ax.imshow(m.numpy(), cmap="coolwarm", vmin=-vmax, vmax=vmax)
    ax.set(title=name, xlabel="input neuron", ylabel="output neuron" if i in (0, 2) else "")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.grid(False)
fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
fig.suptitle("before and after a gauge transformation: different weights, same function", y=1.05)
plt.show()

# %% [markdown]
# **Quick check.** Why is $b_2$ (the output bias) not transformed, and why would permuting the
# *output* neurons not be a symmetry?
#
# <details><summary>Answer</summary>
#
# The outputs are what the network computes: permuting or rescaling them changes $f$ (unless the
# task ignores that). Only hidden neurons are internal, so only they can be relabelled and rescaled
# when the next layer undoes it; $P_L = Q_L = I$ and $b_L$ stays.
# </details>

# %% [markdown]
# ## 4. Numerically, on many random networks
#
# Random layouts (MLP, conv1d, conv2d, SIREN; every activation), 4 networks each, float64, evaluated
# all at once with `batched_forward`. Relative output change under a random gauge element, and under
# a non-symmetry (a permutation of one layer's outputs not undone in the next layer).

# %%
gen = torch.Generator().manual_seed(SEED)
rows = []
for s in random_specs(32 if FULL else 12, seed=SEED, min_width=2):
    ws = WeightSpace.randn(s, 4, generator=gen, dtype=torch.float64)
    shape = s.input_shape if s.family != "mlp" else (s.widths[0],)
    xs = torch.randn(64, *shape, generator=gen, dtype=torch.float64)
    y = batched_forward(ws, xs)
    g = GaugeElement.sample(s, 4, generator=gen, dtype=torch.float64)
    y_g = batched_forward(g.apply(ws), xs)
    y_bad = batched_forward(sample_non_symmetry(ws, "uncoupled_permutation", gen), xs)
    rows.append({"network": s.to_text(), "symmetry": s.symmetries[0].value,
                 "gauge": float((y_g - y).abs().max() / y.abs().max()),
                 "non-symmetry": float((y_bad - y).abs().max() / y.abs().max())})
df = pd.DataFrame(rows)
assert (df["gauge"] < 1e-10).all() and (df["non-symmetry"] > 1e-3).all()
print(len(df), "layouts; all gauge errors < 1e-10:", bool((df["gauge"] < 1e-10).all()),
      "; all non-symmetries > 1e-3:", bool((df["non-symmetry"] > 1e-3).all()))

# %% tags=["nbval-ignore-output"]
long = df.melt(id_vars=["network"], value_vars=["gauge", "non-symmetry"], var_name="transform",
               value_name="relative change")
ax = sns.stripplot(long, x="transform", y="relative change", hue="transform", size=7)
ax.set_yscale("log")
ax.set_title("gauge elements change nothing (rounding); non-symmetries change the function")
ax.set_ylabel("relative change of the outputs")
plt.show()

# %% [markdown]
# ## 5. Seeing it: the same function from different weights
#
# A 1-D network $\mathbb{R} \to \mathbb{R}$ with 16 hidden neurons per layer. The gauge-transformed
# network (random permutation and scaling) draws exactly the same curve; a *wrong* scaling
# ($q = -1$ under ReLU, $q = 2$ under tanh) does not.

# %%
xs = torch.linspace(-2, 2, 200, dtype=torch.float64)[:, None]
curves = []
for act in ["relu", "tanh"]:
    s = NetworkSpec.from_text(f"mlp 1-16-16-1 {act}")
    ws = WeightSpace.randn(s, 1, generator=gen, dtype=torch.float64, bias_std=0.5)
    g = GaugeElement.sample(s, 1, generator=gen, dtype=torch.float64)
    nets = {"original": ws, "gauge-transformed": g.apply(ws),
            "wrong scaling": sample_non_symmetry(ws, "wrong_scaling", gen)}
    outs = {k: batched_forward(v, xs)[0, :, 0] for k, v in nets.items()}
    assert torch.allclose(outs["original"], outs["gauge-transformed"], atol=1e-12)
    assert not torch.allclose(outs["original"], outs["wrong scaling"], atol=1e-3)
    print(act, "weights moved by", f"{nets['gauge-transformed'].max_abs_diff(ws):.1f}", "but output unchanged")
    for k, v in outs.items():
        curves += [{"activation": act, "network": k, "x": float(a), "f(x)": float(b)} for a, b in zip(xs[:, 0], v)]

# %% tags=["nbval-ignore-output"]
grid = sns.relplot(pd.DataFrame(curves), x="x", y="f(x)", hue="network", style="network", col="activation",
                   kind="line", facet_kws={"sharey": False}, height=3.2, aspect=1.3,
                   dashes={"original": "", "gauge-transformed": (4, 3), "wrong scaling": ""})
grid.figure.suptitle("gauge-transformed networks overlap the original; a wrong scaling does not", y=1.04)
plt.show()

# %% [markdown]
# **Explore it: scale one neuron.** Multiply one hidden neuron's incoming weights and bias by $q$ and
# divide its outgoing weights by $q$. The bars move; the curve $f(x)$ does not, because
# $\mathrm{ReLU}(qz) = q\,\mathrm{ReLU}(z)$ for $q > 0$. The last row flips the sign ($q = -1$), which is
# not a symmetry of ReLU: the function changes. The figure shows a few values of $q$; in Jupyter, the
# widget in the next cell lets you slide $q$, pick the neuron and flip the sign yourself.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.course.widgets import neuron_scaling_grid, neuron_scaling_widget

explore_net = WeightSpace.randn(NetworkSpec.from_text("mlp 1-8-8-1 relu"), 1, dtype=torch.float64, bias_std=0.5,
                                generator=torch.Generator().manual_seed(SEED))
fig = neuron_scaling_grid(explore_net, layer=1, neuron=0, qs=(0.3, 1.0, 3.0, -1.0))
plt.show()

# %% tags=["nbval-ignore-output", "remove-output", "widget"]
neuron_scaling_widget(explore_net, layer=1, neuron=0)

# %% [markdown]
# ## Summary
#
# * The allowed scalings follow from $\sigma(qx) = q\sigma(x)$: $q > 0$ for ReLU/LeakyReLU, $q = \pm 1$
#   for tanh and sine (odd functions), only $q = 1$ for sigmoid, GELU, SiLU. Permutations always work.
# * sympy proves the invariance of symbolic MLPs without `simplify` (pull positive factors out of ReLU,
#   substitute signs into tanh); negative controls are caught by evaluating at random points.
# * The library's `GaugeElement` equals the hand-built $P$, $Q$ matrices and preserves the function of
#   MLPs, CNNs and SIRENs to float64 rounding, while non-symmetries change it.
#
# **Quick check.** A tanh network and a ReLU network have the same widths. Which one has the larger
# gauge group, and is either group finite?
#
# <details><summary>Answer</summary>
#
# Both have all permutations of each hidden layer. ReLU adds a continuous factor $q_i > 0$ per hidden
# neuron (an infinite group, of dimension = number of hidden neurons); tanh only adds a sign per
# neuron, so its group is finite: $\prod_l n_l!\, 2^{n_l}$ elements.
# </details>
#
# ## Exercises
#
# Each exercise with a `check_*` cell: put your answer in place of `None` / `raise NotImplementedError`
# and run it.
#
# **1.** Derive the scalings for $\sigma(x) = x^3$ (Taylor coefficients) and for $\sigma(x) = |x|$.
#
# *Hint:* for $x^3$ the only coefficient is that of $x^3$; for $|x|$ try $q = -1$ and $q = 2$ at $x = 1$.
#
# <details><summary>Solution</summary>
#
# $(qx)^3 - q x^3 = (q^3 - q)x^3$, so $q \in \{-1, 1\}$ ($q = 0$ is not invertible): a sign symmetry.
# $|qx| = |q|\,|x|$ equals $q|x|$ only for $q > 0$: `"positive_scale"`. Note that negating a neuron's
# incoming weights and bias is *also* a symmetry of $|x|$ that leaves the outgoing weights alone,
# one our group does not list.
# </details>

# %%
from scalegmn_lite.course.gauge import (
    LEAKY_CANDIDATES,
    check_composition,
    check_cubic_and_abs,
    check_leaky_slopes,
    check_siren_shift,
)

cubic_q = None  # the set of allowed q for x**3, e.g. {...}
abs_group = None  # "positive_scale", "sign" or "permutation"
check_cubic_and_abs(cubic_q, abs_group)

# %% [markdown]
# **2.** LeakyReLU with slope $a = 1$ is the identity: check that `derive_scalings("leaky_relu", param=1.0)`
# admits negative $q$. What happens for $a = -1$ (i.e. $|x|$)? Sort the candidates `LEAKY_CANDIDATES`
# $= (-2, -1, -\tfrac12, \tfrac12, 1, 2)$: which of them are allowed for $a = 1$, which for $a = -1$?
#
# *Hint:* LeakyReLU is $x$ for $x > 0$ and $a x$ for $x < 0$. A negative $q$ sends $x = 1$ to the
# negative branch, so $\sigma(q) = a q$ must equal $q\,\sigma(1) = q$. The derived set is
# `derive_scalings("leaky_relu", param=a).solutions` (a sympy set: `.contains(q)`).
#
# <details><summary>Solution</summary>
#
# With $a = 1$ every $q \ne 0$ works (a linear map commutes with any scaling): all six candidates.
# With $a = -1$ the activation is $|x|$: only $q > 0$, as in exercise 1.
#
# ```python
# slope_one = set(LEAKY_CANDIDATES)
# slope_minus_one = {0.5, 1, 2}
# ```
# </details>

# %%
print(LEAKY_CANDIDATES)
slope_one = None  # the candidates allowed for a = 1, e.g. {...}
slope_minus_one = None  # the candidates allowed for a = -1
check_leaky_slopes(slope_one, slope_minus_one)

# %% [markdown]
# **3.** SIREN has an extra symmetry: shift one hidden neuron's bias by $\pi / w_0$ and negate its
# outgoing weights ($\sin(z + \pi) = -\sin z$). Write `shift(ws, layer, neuron)` for a batch of SIRENs
# (`ws.spec.layers[layer - 1].activation_param` is $w_0$). Why does $\pi$ instead of $\pi/w_0$ fail?
#
# *Hint:* `WeightSpace(ws.spec, weights, biases)` builds the result; `weights[layer]` is the next
# layer, `[B, n_out, n_in]`.
#
# <details><summary>Solution</summary>
#
# ```python
# import math
# def shift(ws, layer, neuron):
#     w0 = ws.spec.layers[layer - 1].activation_param
#     weights, biases = [t.clone() for t in ws.weights], [t.clone() for t in ws.biases]
#     biases[layer - 1][:, neuron] += math.pi / w0
#     weights[layer][:, :, neuron] *= -1
#     return WeightSpace(ws.spec, weights, biases)
# ```
# The activation is $\sin(w_0 z)$, so the bias must move by $\pi / w_0$ for the argument to move by $\pi$.
# </details>

# %%
def shift(ws, layer, neuron):
    raise NotImplementedError


check_siren_shift(shift)

# %% [markdown]
# **4.** Compose two gauge elements: write `compose(g1, g2)` returning the element "first `g1`,
# then `g2`", checked against `g2.apply(g1.apply(ws))`.
#
# *Hint:* `GaugeElement` supports `@`; its docstring (`help(GaugeElement.__matmul__)`) says which
# operand acts first. Test your guess on a random `WeightSpace`: apply `g1`, then `g2`, and compare
# with the composed element's `apply`. Does the order matter when both elements permute and scale
# the same layer?
#
# <details><summary>Solution</summary>
#
# `compose = lambda g1, g2: g2 @ g1`. The order matters: `g1 @ g2` fails the check because
# permutations and scalings of the same layer do not commute.
# </details>

# %%
def compose(g1, g2):
    raise NotImplementedError


check_composition(compose)
