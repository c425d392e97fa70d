# %% [markdown]
# # 09 · Beyond MLP and CNN: residual connections and normalization layers

# %% tags=["nbval-ignore-output"]
import matplotlib.pyplot as plt

from scalegmn_lite.common.config import notebook_setup
from scalegmn_lite.course.beyond import draw_residual_block

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

draw_residual_block(d_s=3, hidden=4)  # one residual block as a graph: stream at depth t and t+1, inner units
plt.show()

# %% [markdown]
# *Look at the dashed edges:* a shortcut carries stream coordinate $k$ from depth $t$ to $t+1$ with the fixed
# weight 1. A weight edge $i \leftarrow j$ is rescaled by $q_i / q_j$; this one cannot be, so both of its ends
# carry the same scale $q_k$.
#
# Notebooks 01-08 treated networks that are **chains**: each layer reads only the one before it. Real networks
# are not. A ResNet adds its input back after every block, $y_{t+1} = y_t + F(y_t)$, and normalizes with
# BatchNorm; a transformer does the same with LayerNorm. Both change the gauge group, the set of weight changes that
# leave the function alone: a skip connection **removes** scalings, a normalization layer **adds** some. This
# chapter derives both groups (sympy), checks them in float64 torch, counts their dimensions, and then builds the
# graph on which ScaleGMN is exactly equivariant to them.
#
# **Sources.** ScaleGMN (Kalogeropoulos, Bouritsas & Panagakis, *Scale Equivariant Graph Metanetworks*,
# NeurIPS 2024) covers MLPs, CNNs and INRs and lists skip connections and normalization layers as future work.
# Metanetworks that read such networks are equivariant to permutations only: GMN (Lim, Maron, Law, Lorraine & Lucas,
# *Graph Metanetworks for Processing Diverse Neural Architectures*, ICLR 2024) reads residual edges and normalization
# layers, Neural Graphs (Kofinas et al., *Graph Neural Networks for Learning Equivariant Representations of Neural
# Networks*, ICLR 2024) residual edges.
# BatchNorm's scale invariance: Badrinarayanan, Mishra & Cipolla, *Understanding Symmetries in Deep Networks*
# (2015), and the survey of Zhao, Walters & Yu, *Symmetry in Neural Network Parameter Spaces*, arXiv 2506.13018
# (2025). RMSNorm's orthogonal $O(d)$ gauge: Ashkboos et al., *SliceGPT*, ICLR 2024 (arXiv 2401.15024).
# Attention: Tran et al., *Equivariant Neural Functional Networks for Transformers* (Transformer-NFN), ICLR 2025.
# The residual-block derivation below is this course's own, consistent with how GMN and Neural Graphs tie the stream.
#
# **You will learn** why a residual stream has one scale for all its depths (and so a strictly smaller gauge
# than the same network without shortcuts), which free scales BatchNorm and LayerNorm add and which they do not,
# how to derive each of these in sympy and check it numerically, and how the course treats $\epsilon$ in the
# normalization layers. Section 5 turns such networks into graphs: one vertex layer per depth of the stream with the
# shortcut as edges of constant 1, a vertex layer for each norm's input (pooled for LayerNorm). You will see why this
# makes ScaleGMN exactly equivariant, what three naive constructions get wrong (measured with the library's checker),
# and how to run ScaleGMN on your own residual `nn.Module`. Section 6 trains on zoos of residual networks: accuracy
# prediction with a shipped residual ScaleGMN, the reference run's verdicts, and the gauge test that shows why exact
# invariance matters on trained networks.

# %%
import random

import numpy as np
import pandas as pd
import sympy as sp
import torch
import torch.nn.functional as F

from scalegmn_lite.course.beyond import (
    draw_layernorm_two_features,
    plot_dim_counts,
    plot_eps_errors,
    plot_function_changes,
    plot_residual_functions,
)
from scalegmn_lite.symbolic.latex import show_math
from scalegmn_lite.symbolic.residual import (
    BN_CASES,
    LN_CASES,
    ResidualGauge,
    ResidualSizes,
    apply_residual_gauge,
    check_norm_symbolic,
    check_residual_symbolic,
    eps_invariance_error,
    init_residual_params,
    layernorm_counterexample,
    layernorm_scaling_derivation,
    layernorm_shift,
    neuron_scaling,
    neuron_sign_flip,
    norm_forward,
    nullity,
    permute_features,
    prenorm_scaling,
    prenorm_sign_flip,
    random_norm_net,
    residual_forward,
    residual_scaling_basis,
    residual_scaling_constraints,
    residual_scaling_dims,
    sample_residual_gauge,
)
from scalegmn_lite.weightspace.block_gauge import BlockGauge, function_change, sample_non_symmetry
from scalegmn_lite.weightspace.block_weights import BlockWeights
from scalegmn_lite.weightspace.blocks import BlockNetworkSpec

f64 = dict(dtype=torch.float64)
gen = torch.Generator().manual_seed(SEED)

# %% [markdown]
# ## 1. Residual blocks
#
# A block maps the stream $y \in \mathbb{R}^{d_s}$ to $y + W_2\,\mathrm{ReLU}(W_1 y + b_1) + b_2$, with $h$ inner
# units. Give the stream a positive diagonal scale $Q$ and the inner units their own $R$ (the ReLU gauge of
# notebook 01): $W_1 \mapsto R W_1 Q^{-1}$, $b_1 \mapsto R b_1$, $W_2 \mapsto Q W_2 R^{-1}$, $b_2 \mapsto Q b_2$. Then
#
# $$Qy + Q W_2 R^{-1}\,\mathrm{ReLU}(R W_1 Q^{-1} Q y + R b_1) + Q b_2 =
# Q\big(y + W_2\,\mathrm{ReLU}(W_1 y + b_1) + b_2\big):$$
#
# the block maps $Qy$ to $Q$ times its old output, **with the same $Q$**. If the output were to carry another
# $Q' \ne Q$, the shortcut term would still be $Qy$, and nothing can turn it into $Q'y$: its weight is the constant 1.
#
# **From scratch**, in torch:

# %%
torch.manual_seed(SEED)
d_s, h = 3, 4
W1, b1 = torch.randn(h, d_s, **f64), torch.randn(h, **f64)
W2, b2 = torch.randn(d_s, h, **f64), torch.randn(d_s, **f64)


def block(y, W1, b1, W2, b2):
    return y + torch.relu(y @ W1.T + b1) @ W2.T + b2


q = torch.rand(d_s, **f64) * 3 + 0.25  # the stream's scale Q (positive)
r = torch.rand(h, **f64) * 3 + 0.25  # the inner units' scale R (positive)
W1g, b1g = r[:, None] * W1 / q[None, :], r * b1
W2g, b2g = q[:, None] * W2 / r[None, :], q * b2
y = torch.randn(100, d_s, **f64)
err_shared = float((block(y * q, W1g, b1g, W2g, b2g) - q * block(y, W1, b1, W2, b2)).abs().max())

q_out = q * torch.tensor([1.0, 2.0, 1.0], **f64)  # a different scale after the block: unshared
W2u, b2u = q_out[:, None] * W2 / r[None, :], q_out * b2
err_unshared = float((block(y * q, W1g, b1g, W2u, b2u) - q_out * block(y, W1, b1, W2, b2)).abs().max())
assert err_shared < 1e-12 and err_unshared > 0.1
print(f"shared Q: block(Qy) = Q block(y) up to rounding (< 1e-12): {err_shared < 1e-12}")
print(f"Q' != Q after the block: off by {err_unshared:.2f}")

# %% [markdown]
# The library's residual MLP is $x \mapsto E x + e \to n$ blocks $\to H y_n + c$, parameters in the order
# $[E, W_{1,1}, W_{2,1}, \dots, H]$. Its `apply_residual_gauge` with our $Q$ (at both depths) and $R$ gives the same
# weights as the hand-made ones, and scales the embedding's rows by $Q$ and the head's columns by $Q^{-1}$:

# %%
sizes1 = ResidualSizes(d_in=2, d_s=d_s, hidden=(h,), d_out=1)
ws, bs = init_residual_params(sizes1, gen)
ws[1], bs[1], ws[2], bs[2] = W1, b1, W2, b2
same_q = ResidualGauge(stream_perms=(torch.arange(d_s),) * 2, stream_scales=(q, q),
                       inner_perms=(torch.arange(h),), inner_scales=(r,))
ws_g, bs_g = apply_residual_gauge(sizes1, ws, bs, same_q)
assert torch.allclose(ws_g[1], W1g) and torch.allclose(bs_g[1], b1g)
assert torch.allclose(ws_g[2], W2g) and torch.allclose(bs_g[2], b2g)
assert torch.allclose(ws_g[0], q[:, None] * ws[0]) and torch.allclose(ws_g[-1], ws[-1] / q[None, :])
print("library == from scratch:", True)

# %% [markdown]
# A network $\mathbb{R} \to \mathbb{R}$ with two blocks, drawn: a random element with one stream scale (and
# permutation) for all depths draws the same curve; an element that scales the stream differently at each depth
# does not.

# %% tags=["nbval-ignore-output"]
sizes = ResidualSizes(d_in=1, d_s=3, hidden=(4, 4), d_out=1)
ws, bs = init_residual_params(sizes, gen)
xs = torch.linspace(-3, 3, 300, **f64)[:, None]
curves = {"original": residual_forward(sizes, ws, bs, xs)[:, 0]}
for name, shared in (("one stream scale for all depths", True), ("a stream scale per depth", False)):
    ws2, bs2 = apply_residual_gauge(sizes, ws, bs, sample_residual_gauge(sizes, gen, shared=shared))
    curves[name] = residual_forward(sizes, ws2, bs2, xs)[:, 0]
plot_residual_functions(xs[:, 0], curves, title="a residual network and two transformed copies")
plt.show()
change = {k: float((v - curves["original"]).abs().max()) for k, v in curves.items()}
assert change["one stream scale for all depths"] < 1e-12 and change["a stream scale per depth"] > 1e-2

# %% [markdown]
# **In sympy.** `check_residual_symbolic` builds the network with symbolic weights, biases and inputs, applies an
# element with random permutations and *positive symbols* as scales, and reduces $f_{g\cdot\theta} - f_\theta$
# (pulling positive factors out of each ReLU, as in notebook 01). It is exactly 0 for a shared stream scale, also
# with a ReLU after each addition ($y_{t+1} = \mathrm{ReLU}(y_t + F(y_t))$: positive homogeneity again), and not 0
# for a scale per depth or a sign flip of an inner ReLU unit:

# %%
small = ResidualSizes(d_in=2, d_s=2, hidden=(2, 2), d_out=1)
symbolic = {
    "shared stream scale": check_residual_symbolic(small),
    "shared, ReLU after each addition": check_residual_symbolic(ResidualSizes(2, 2, (2, 2), 1, post_relu=True)),
    "a stream scale per depth": check_residual_symbolic(small, shared=False),
    "inner unit sign flip (q = -1)": check_residual_symbolic(small, sign_flip=True),
}
assert [c.is_zero for c in symbolic.values()] == [True, True, False, False]
{name: c.is_zero for name, c in symbolic.items()}

# %% [markdown]
# **Counting.** Give every free neuron a log-scale: $u_{t,k}$ for stream coordinate $k$ at depth $t = 0..n$,
# $v_{i,j}$ for inner unit $j$ of block $i$ (inputs and outputs are fixed). Every weight and bias is its own
# parameter, so weight edges constrain nothing. Each shortcut edge (weight 1) must keep factor
# $e^{u_{t+1,k} - u_{t,k}} = 1$:
#
# $$u_{t+1,k} - u_{t,k} = 0, \qquad t = 0..n-1,\ k = 1..d_s .$$
#
# These $n\,d_s$ rows form $A u = 0$; the dimension of the scaling group is the nullity of $A$. For one stream of
# width 2 and two blocks of one inner unit each (unknowns in the order printed):

# %%
tiny = ResidualSizes(d_in=1, d_s=2, hidden=(1, 1), d_out=1)
A = residual_scaling_constraints(tiny)
print("unknowns:", tiny.unit_labels())
show_math("A = ", sp.Matrix(A))
tiny_dims = (nullity(A, exact=True), nullity(residual_scaling_constraints(tiny, shortcut=False), exact=True))
assert tiny_dims == (4, 8)
print("nullity:", tiny_dims[0], " without the shortcuts (plain twin):", tiny_dims[1])
pd.DataFrame(residual_scaling_basis(tiny).T, columns=tiny.unit_labels())  # a basis of ker A, one row each

# %% [markdown]
# Four directions: one per stream coordinate (the same at all three depths) and one per inner unit. Without the
# shortcuts (the **plain twin**, $y_{t+1} = W_2\,\mathrm{ReLU}(W_1 y_t + b_1) + b_2$) there are no rows at all and
# each depth is a layer of its own: $2 + 3 \cdot 2 = 8$.
#
# **Theorem.** For a residual ReLU MLP with $n$ blocks of inner widths $h_1, \dots, h_n$ on a stream of width
# $d_s$,
#
# $$\dim G_\text{scale}(\text{residual}) = \sum_i h_i + d_s, \qquad \dim G_\text{scale}(\text{plain twin}) =
# \sum_i h_i + (n + 1)\,d_s,$$
#
# so the residual network's scaling gauge is **strictly smaller** whenever $n \ge 1$ and $d_s \ge 1$ (by $n\,d_s$).
# *Proof:* row $(t, k)$ of $A$ holds $u_{t+1,k}$, which no row of smaller $t$ holds, so the $n\,d_s$ rows are
# independent (triangular) and the nullity is $\sum_i h_i + (n+1)\,d_s - n\,d_s$. The same count holds with a
# ReLU after each addition (it adds no constraint). Checked below against the exact nullities, for a stream of
# width 4 and blocks of 8 inner units, and for random sizes:

# %%
n_max = 8 if FULL else 5
counts = []
for n in range(n_max + 1):
    dims = residual_scaling_dims(ResidualSizes(1, 4, (8,) * n, 1), exact=True)
    counts.append({"n": n, "residual": dims.dim_residual, "plain": dims.dim_plain,
                   "residual formula": dims.formula_residual, "plain formula": dims.formula_plain})
counts = pd.DataFrame(counts)
rng = random.Random(SEED)
random_sizes = [ResidualSizes(rng.randint(1, 4), rng.randint(1, 5), tuple(rng.randint(1, 6) for _ in
                                                                       range(rng.randint(0, 4))),
                              rng.randint(1, 3), post_relu=rng.random() < 0.5) for _ in range(40 if FULL else 20)]
assert (counts["residual"] == counts["residual formula"]).all() and (counts["plain"] == counts["plain formula"]).all()
assert all(residual_scaling_dims(s, exact=True).theorem_holds for s in random_sizes)
assert all(s.block_spec().scale_dim == residual_scaling_dims(s).dim_residual for s in random_sizes)
print(f"closed forms == nullities, strictly smaller iff n >= 1: {len(counts)} stacks and {len(random_sizes)} "
      "random sizes")
counts.set_index("n").T

# %% tags=["nbval-ignore-output"]
plot_dim_counts(counts.to_dict("records"), title="scaling gauge: stream width 4, blocks of 8 inner units")
plt.show()

# %% [markdown]
# **A projection shortcut starts a new stream.** When a block changes the width (ResNet's downsampling blocks),
# the shortcut is a learned map $P$ (a `Linear` or a $1\times 1$ convolution), an ordinary weight: it transforms as
# $P \mapsto Q' P Q^{-1}$, and the new stream after it gets a scale $Q'$ of its own. In the library's text form,
# `[branch|proj]` is such a block; `scale_dim` counts every stream once:

# %%
proj = BlockNetworkSpec.from_text("mlp 8-16-[16-16]-[32-32|proj]-[32-32]-4 relu")
print(proj.describe())
assert proj.scale_dim_terms == {"hidden": 16 + 32 + 32, "stream": 16 + 32, "batchnorm": 0, "layernorm": 0}

# %% [markdown]
# The same spec is a `torch.nn` model (`scalegmn_lite.weightspace.blocks.Residual` is the block module), and
# `BlockGauge` acts on its weights: the transformed model computes the same function, while a stream scaled
# differently at one depth (`sample_non_symmetry(..., "unshared_stream_scale")`) does not.

# %%
model = proj.to_module().double()
assert BlockNetworkSpec.from_module(model) == proj
bw = BlockWeights.from_module(model)
model_g = BlockGauge.sample(proj, 1, gen).apply(bw).to_module()
x8 = torch.randn(64, 8, generator=gen, **f64)
with torch.no_grad():
    torch_change = float((model_g(x8) - model(x8)).abs().max() / model(x8).abs().max())
broken = function_change(bw, sample_non_symmetry(bw, "unshared_stream_scale", gen), x8)
assert torch_change < 1e-12 and broken > 1e-2
print(f"gauge-transformed nn.Module: unchanged (< 1e-12): {torch_change < 1e-12}; "
      f"unshared stream scale changes the outputs by more than 1%: {broken > 1e-2}")

# %% [markdown]
# **Quick check.** Without a ReLU after the additions the stream is linear between blocks. Is a positive diagonal
# $Q$ then the largest stream gauge?
#
# <details><summary>Answer</summary>
#
# No: any invertible $A \in GL(d_s)$, the same at every depth, works: $E \mapsto AE$, $W_1 \mapsto W_1 A^{-1}$,
# $W_2 \mapsto A W_2$, $b_2 \mapsto A b_2$, $H \mapsto H A^{-1}$, since the stream only passes through linear maps and
# the shortcut ($Ay \mapsto Ay$). With a ReLU after the additions a generic $A$ fails, while positive monomial
# matrices $PD$ still work (whether anything larger survives is not claimed here). This chapter counts diagonal
# scalings, the part a ScaleGMN can represent (neuron-wise factors); the tests of `scalegmn_lite.symbolic.residual`
# (`test_linear_stream_has_a_gl_gauge_unless_post_relu`) check both claims.
# </details>

# %% [markdown]
# ## 2. BatchNorm (eval mode)
#
# After training, BatchNorm is a fixed per-channel affine map with its running statistics $\mu, \sigma^2$:
# $\mathrm{bn}(z) = \gamma\,(z - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta$, here after $z = Wx + b$ and before a ReLU.
# Scale the channels *before* the norm by $D = \mathrm{diag}(d)$, $d > 0$: $W, b, \mu \mapsto DW, Db, D\mu$ and
# $\sigma^2 \mapsto D^2 \sigma^2$. With $\epsilon = 0$,
#
# $$\frac{d(z - \mu)}{\sqrt{d^2 \sigma^2}} = \frac{z - \mu}{\sigma}:$$
#
# the norm's output does not change, so **nothing downstream has to compensate**: a free positive scale per
# channel, on top of the ordinary ReLU gauge of the norm's output neurons ($\gamma, \beta \mapsto q\gamma, q\beta$,
# the next layer's columns divided by $q$). A negative $d$ flips the sign of $(z - \mu)/\sigma$, which
# $\gamma \mapsto -\gamma$ undoes exactly, for every $\epsilon$: the norm's output is again unchanged and the ReLU never
# sees the flip. The flip alone changes the function. From scratch, with `torch.nn.functional.batch_norm`:

# %%
n_in, c = 4, 5
W, b = torch.randn(c, n_in, **f64), torch.randn(c, **f64)
x = torch.randn(256, n_in, **f64)
z = x @ W.T + b
mu, var = z.mean(0), z.var(0, unbiased=False)  # running statistics, as after training
gamma, beta = 1 + 0.3 * torch.randn(c, **f64), 0.3 * torch.randn(c, **f64)


def bn(z, mu, var, gamma, beta, eps=0.0):
    return F.batch_norm(z, mu, var, gamma, beta, training=False, eps=eps)


ref = bn(z, mu, var, gamma, beta)
d = torch.rand(c, **f64) * 3 + 0.25
scaled = bn(d * z, d * mu, d**2 * var, gamma, beta)  # d * z is (D W) x + D b
s = torch.tensor([-1.0, 1, 1, -1, 1], **f64)
flip_with_gamma = bn(s * z, s * mu, var, s * gamma, beta, eps=1e-5)
flip_alone = bn(s * z, s * mu, var, gamma, beta)
assert torch.allclose(scaled, ref, rtol=0, atol=1e-12)
assert torch.allclose(flip_with_gamma, bn(z, mu, var, gamma, beta, eps=1e-5), rtol=0, atol=1e-12)
assert not torch.allclose(torch.relu(flip_alone), torch.relu(ref), atol=1e-2)
print("pre-norm scale d > 0 (eps = 0): same output:", True)
print("sign flip with gamma -> -gamma (eps = 1e-5): same output:", True, "| flip alone, after the ReLU: changed")

# %% [markdown]
# The library's `NormNet` is $x \mapsto V\,\mathrm{ReLU}(\mathrm{norm}(Wx + b)) + c$; its `prenorm_scaling` is the
# transformation above, and the picture shows how much each transformation moves the outputs:

# %% tags=["nbval-ignore-output"]
net = random_norm_net("batchnorm", n_in, c, 2, gen)
new = prenorm_scaling(net, d)
assert torch.allclose(new.weight, d[:, None] * net.weight) and torch.allclose(new.running_var, d**2 * net.running_var)
perm = torch.tensor([2, 0, 1, 4, 3])
bn_transforms = {  # name: (transformed network, a symmetry?)
    "pre-norm scale d > 0": (new, True),
    "pre-norm sign flip, gamma -> -gamma": (prenorm_sign_flip(net, s), True),
    "pre-norm sign flip alone": (prenorm_sign_flip(net, s, flip_gamma=False), False),
    "post-norm neuron scale q > 0": (neuron_scaling(net, d), True),
    "post-norm neuron sign flip (q = -1)": (neuron_sign_flip(net, 0), False),
    "permutation with gamma, beta": (permute_features(net, perm), True),
    "permutation, gamma and beta kept": (permute_features(net, perm, with_affine=False), False),
}
f_ref = norm_forward(net, x)
bn_change = {k: float((norm_forward(t, x) - f_ref).abs().max() / f_ref.abs().max())
             for k, (t, _) in bn_transforms.items()}
plot_function_changes(bn_change, {k: sym for k, (_, sym) in bn_transforms.items()},
                      title=r"BatchNorm after a Linear layer, then ReLU ($\epsilon = 0$)")
plt.show()
assert all((bn_change[k] < 1e-12) == sym for k, (_, sym) in bn_transforms.items())

# %% [markdown]
# In sympy (`check_norm_symbolic`: symbolic $W, b, \gamma, \beta, \mu$, positive $\sigma^2$, positive-symbol scales;
# the `_eps` cases keep a positive symbol $\epsilon$, `scaled_eps` also maps $\epsilon \mapsto d^2\epsilon$, see
# section 4). The derived verdict of every case matches the table `BN_CASES`:

# %%
bn_table = pd.DataFrame([{"case": case, "f' - f = 0 (sympy)": check_norm_symbolic("batchnorm", case).is_zero,
                          "symmetry (BN_CASES)": want} for case, want in BN_CASES.items()])
assert (bn_table["f' - f = 0 (sympy)"] == bn_table["symmetry (BN_CASES)"]).all()
bn_table

# %% [markdown]
# **Counting.** A BatchNorm layer of width $w$ after a ReLU-free Linear layer has $w$ free pre-norm scales and the
# $w$ ordinary scales of its output neurons: $2w$, against $w$ for the same layer without the norm (the sign flips
# are discrete and add no dimension). In a block network every BatchNorm adds its width:

# %%
bn_dims = {t: BlockNetworkSpec.from_text(t).scale_dim for t in
           ("mlp 4-5-2 relu", "mlp 4-5bn-2 relu eps=0", "mlp 6-8bn-[8bn-8]-3 relu eps=0")}
assert list(bn_dims.values()) == [5, 10, 8 + 8 + 16]
print(BlockNetworkSpec.from_text("mlp 6-8bn-[8bn-8]-3 relu eps=0").describe())
bn_spec = BlockNetworkSpec.from_text("mlp 6-8bn-[8bn-8]-3 relu eps=0")
bw_bn = BlockWeights.randn(bn_spec, 4, gen, **f64)
x6 = torch.randn(64, 6, generator=gen, **f64)
gauge_bn = function_change(bw_bn, BlockGauge.sample(bn_spec, 4, gen, prenorm_sign=True).apply(bw_bn), x6)
flip_bn = function_change(bw_bn, sample_non_symmetry(bw_bn, "batchnorm_sign_without_gamma", gen), x6)
assert gauge_bn < 1e-12 and flip_bn > 1e-2
print(f"BlockGauge with pre-norm scales and signs: unchanged (< 1e-12): {gauge_bn < 1e-12}; "
      f"sign flip without gamma: changed by more than 1%: {flip_bn > 1e-2}")

# %% [markdown]
# This free scale is BatchNorm's well-known scale invariance (Badrinarayanan et al.): the size of a channel's
# incoming weights is invisible to the function, so a metanetwork reading BatchNorm networks should not depend on it.

# %% [markdown]
# ## 3. LayerNorm
#
# LayerNorm normalizes over the features of **one sample**,
# $\mathrm{ln}(z) = \gamma \odot (z - \bar z\,\mathbf{1}) / \sqrt{\mathrm{var}(z) + \epsilon} + \beta$ with
# $\bar z$ and $\mathrm{var}(z)$ the mean and variance of the $n$ entries of $z$. Its exact symmetries:
#
# * one **common** positive scalar: $W, b \mapsto cW, cb$ (with $\epsilon = 0$);
# * a **shift along** $\mathbf{1}$: $W \mapsto W + \mathbf{1}v^\top$, $b \mapsto b + c_0\mathbf{1}$ moves every
#   feature by the same $v^\top x + c_0$, which the mean removes (exact for every $\epsilon$);
# * a **permutation** of the features, if $\gamma$ and $\beta$ are permuted with them.
#
# No per-neuron scaling: it changes the mean and the variance differently for different samples. From scratch,
# with `torch.nn.functional.layer_norm`:

# %%
n_feat = 5
Wl, bl = torch.randn(n_feat, n_in, **f64), torch.randn(n_feat, **f64)
gl, bel = 1 + 0.3 * torch.randn(n_feat, **f64), 0.3 * torch.randn(n_feat, **f64)


def ln(z, gamma, beta, eps=0.0):
    return F.layer_norm(z, (z.shape[-1],), gamma, beta, eps)


zl = x @ Wl.T + bl
ref_ln = ln(zl, gl, bel)
v, c0 = torch.randn(n_in, **f64), 0.7
pl = torch.tensor([3, 0, 4, 1, 2])
dl = torch.tensor([1.0, 4.0, 1.0, 1.0, 1.0], **f64)
ln_checks = {
    "common scale c = 3": torch.allclose(ln(3 * zl, gl, bel), ref_ln, rtol=0, atol=1e-12),
    "shift along 1 (eps = 1e-5)": torch.allclose(ln(x @ (Wl + v).T + bl + c0, gl, bel, 1e-5), ln(zl, gl, bel, 1e-5),
                                                 rtol=0, atol=1e-12),
    "permutation with gamma, beta": torch.allclose(ln(zl[:, pl], gl[pl], bel[pl]), ref_ln[:, pl], rtol=0, atol=1e-12),
    "one feature scaled by 4": torch.allclose(ln(dl * zl, gl, bel), ref_ln, rtol=0, atol=1e-2),
}
assert list(ln_checks.values()) == [True, True, True, False]
ln_checks

# %% [markdown]
# Note `Wl + v` adds $v^\top$ to every row, i.e. $W + \mathbf{1}v^\top$. The library's `NormNet` with
# `kind="layernorm"`, every transformation drawn:

# %% tags=["nbval-ignore-output"]
net_ln = random_norm_net("layernorm", n_in, n_feat, 2, gen)
ln_transforms = {
    "common pre-norm scale c = 3": (prenorm_scaling(net_ln, 3.0), True),
    "shift W + 1 v^T, b + c0 1": (layernorm_shift(net_ln, v, c0), True),
    "permutation with gamma, beta": (permute_features(net_ln, pl), True),
    "post-norm neuron scale q > 0": (neuron_scaling(net_ln, d), True),
    "per-neuron pre-norm scale D": (prenorm_scaling(net_ln, dl), False),
    "permutation, gamma and beta kept": (permute_features(net_ln, pl, with_affine=False), False),
    "post-norm neuron sign flip (q = -1)": (neuron_sign_flip(net_ln, 0), False),
}
f_ln = norm_forward(net_ln, x)
ln_change = {k: float((norm_forward(t, x) - f_ln).abs().max() / f_ln.abs().max())
             for k, (t, _) in ln_transforms.items()}
plot_function_changes(ln_change, {k: sym for k, (_, sym) in ln_transforms.items()},
                      title=r"LayerNorm after a Linear layer, then ReLU ($\epsilon = 0$)")
plt.show()
assert all((ln_change[k] < 1e-12) == sym for k, (_, sym) in ln_transforms.items())

# %%
ln_table = pd.DataFrame([{"case": case, "f' - f = 0 (sympy)": check_norm_symbolic("layernorm", case).is_zero,
                          "symmetry (LN_CASES)": want} for case, want in LN_CASES.items()])
assert (ln_table["f' - f = 0 (sympy)"] == ln_table["symmetry (LN_CASES)"]).all()
ln_table

# %% [markdown]
# **Why only one scalar? A derivation.** $\mathrm{ln}(z)$ (with $\gamma = 1$, $\beta = 0$, $\epsilon = 0$) is
# $\sqrt{n}$ times the unit vector along $Pz$, where $P = I - \mathbf{1}\mathbf{1}^\top / n$ removes the mean. So
# $\mathrm{ln}(Dz) = \mathrm{ln}(z)$ for every $z$ iff $PDz$ is a positive multiple of $Pz$ for every $z$. For
# $D = e^{tu}$ near the identity (derivative at $t = 0$), this asks that $P(u \odot z)$ be parallel to $Pz$:
#
# $$\lVert Pz \rVert^2\, P(u \odot z) - Pz\, \langle Pz,\ u \odot z \rangle = 0 \quad\text{for all } z .$$
#
# Every coefficient of this polynomial in $z$ must vanish: linear equations in $u$. `layernorm_scaling_derivation`
# collects them and finds the nullspace, spanned by $\mathbf{1}$ (one common scale):

# %%
for n in (3, 4, 5) if FULL else (3, 4):
    der = layernorm_scaling_derivation(n)
    assert der.dim == 1 and der.basis.T == sp.ones(1, n)
    print(f"n = {n}: {der.n_equations} linear equations in u, nullspace dimension {der.dim}, basis {list(der.basis)}")

# %% [markdown]
# For $n = 2$ the identity is vacuous ($Pz$ always lies on one line), yet one scalar is still all there is:
# $\mathrm{ln}$ of two features is $(1, -1)$ when $z_1 > z_2$ and $(-1, 1)$ when $z_1 < z_2$, a step function. Any
# $d_1 \ne d_2$ carries some $z$ across the diagonal. With $z = (2, 1)$ and $D = \mathrm{diag}(1, 4)$:

# %% tags=["nbval-ignore-output"]
draw_layernorm_two_features(z=(2.0, 1.0), d=(1.0, 4.0))
plt.show()

# %%
cex = {n: layernorm_counterexample(n) for n in (2, 3)}  # exact ln(Dz) - ln(z), z = (2, 1, 0..), D = diag(1, 4, 1..)
assert list(cex[2]) == [-2, 2] and all(any(e != 0 for e in m) for m in cex.values())
_ = show_math(r"n = 2:\ \mathrm{ln}(Dz) - \mathrm{ln}(z) = ", cex[2].T, r"\qquad n = 3:\ ", cex[3].T)

# %% [markdown]
# In a block network each LayerNorm adds **one** dimension (against BatchNorm's width), and a per-neuron scale
# of its input (`sample_non_symmetry(..., "layernorm_neuron_scale")`) changes the function:

# %%
ln_spec = BlockNetworkSpec.from_text("mlp 6-8ln-[8ln-8]-3 relu eps=0")
print(ln_spec.describe())
assert ln_spec.scale_dim_terms["layernorm"] == 2
bw_ln = BlockWeights.randn(ln_spec, 4, gen, **f64)
gauge_ln = function_change(bw_ln, BlockGauge.sample(ln_spec, 4, gen).apply(bw_ln), x6)
neuron_ln = function_change(bw_ln, sample_non_symmetry(bw_ln, "layernorm_neuron_scale", gen), x6)
assert gauge_ln < 1e-12 and neuron_ln > 1e-2
print(f"BlockGauge: unchanged (< 1e-12): {gauge_ln < 1e-12}; per-neuron scale of a LayerNorm's input: "
      f"changed by more than 1%: {neuron_ln > 1e-2}")

# %% [markdown]
# ## 4. What about $\epsilon$?
#
# PyTorch's norms divide by $\sqrt{\sigma^2 + \epsilon}$ with $\epsilon = 10^{-5}$ by default, and then a pre-norm
# scale $d$ is **not** exactly a symmetry: the normalized value is multiplied by
# $\rho = d\sqrt{\sigma^2 + \epsilon} / \sqrt{d^2\sigma^2 + \epsilon}$, and
# $|\rho - 1| \le |d^2 - 1|\,\epsilon / \big((d^2\sigma^2 + \epsilon)(1 + \min(1, d))\big)$.
# Rescaling $\epsilon \mapsto d^2 \epsilon$ would make it exact, but $\epsilon$ is a hyperparameter, not a weight, and
# torch keeps one per layer, not one per channel.
#
# **The course's convention:** every exact claim uses $\epsilon = 0$ (the text form's `eps=0`, `function_change(...,
# eps=0.0)`); for $\epsilon > 0$ we report the measured deviation and its bound. The shift of LayerNorm and the sign
# flip of BatchNorm with $\gamma \mapsto -\gamma$ are exact for every $\epsilon$. `eps_invariance_error` measures the
# rest, here for $d = 3$:

# %% tags=["nbval-ignore-output"]
eps_grid = [0.0] + [10.0**k for k in range(-8, 0)]
eps_rows = [vars(eps_invariance_error(kind, e, 3.0)) for kind in ("batchnorm", "layernorm") for e in eps_grid]
plot_eps_errors(eps_rows, title="pre-norm scale d = 3 with eps kept")
plt.show()

# %%
eps_df = pd.DataFrame(eps_rows)
assert (eps_df.measured <= eps_df.bound + 1e-15).all() and (eps_df.scaled_eps < 1e-12).all()
assert (eps_df[eps_df.eps == 0].measured < 1e-12).all()
small_eps = eps_df[(eps_df.eps > 0) & (eps_df.eps <= 1e-3)]
slopes = {k: float(np.polyfit(np.log10(g.eps), np.log10(g.measured), 1)[0]) for k, g in small_eps.groupby("kind")}
assert all(round(v, 1) == 1.0 for v in slopes.values())
print("log-log slope of the deviation for eps <= 1e-3:", {k: round(v, 1) for k, v in slopes.items()})
print("measured <= bound everywhere; exact (< 1e-12) at eps = 0 and with eps -> d^2 eps:", True)

# %% [markdown]
# The deviation grows linearly with $\epsilon$ (slope 1.0 on the log-log plot), always under its bound, and
# vanishes at $\epsilon = 0$ and with $\epsilon \mapsto d^2\epsilon$. At torch's default it is small but not rounding:
# what a metanetwork trained on real BatchNorm networks sees is an *approximate* symmetry, of size about
# $\epsilon / \sigma^2$.

# %% [markdown]
# ## 5. Networks as graphs, and a metanetwork that stays equivariant
#
# ScaleGMN (notebooks 04 and 05) reads a network as a graph (a vertex per neuron, its bias as feature; an edge per
# weight) and is equivariant to every relabelling and rescaling of the vertices that acts as
#
# $$x_v \mapsto q_v\, x_v, \qquad e_{st} \mapsto \frac{q_t}{q_s}\, e_{st},$$
#
# each vertex with the scalings its activation allows. So the task is to find a graph of a block network on which
# the gauge group of sections 1-3 acts *exactly* this way; then ScaleGMN is equivariant to that group without a new
# layer. `scalegmn_lite.nn.block_graphs.to_block_graph` builds such a graph, and `ScaleGMN` calls it itself when it
# is given `BlockWeights`. Three ablations, constructions one might try first, show what goes wrong otherwise.
#
# ### 5.1 The graph of a residual network
#
# The graph has one **vertex layer** per value set the network computes, in data-flow order. Each vertex layer sits
# on one *site* of the gauge (`spec.gauge_plan()`), and takes its $q$ from that site:
#
# * a layer $z = Wy + b$: a vertex layer with features $b$, and edges $W[t, s]$ from the layer it reads;
# * a residual stream: **one vertex layer per depth**, all on the stream's single site, and the identity shortcut
#   as ordinary edges of **constant weight 1**, from coordinate $k$ at depth $t$ to coordinate $k$ at depth $t+1$;
# * a BatchNorm: a vertex layer for its input $z$ (features $b - \mu$), one edge per channel of weight
#   $\gamma / \sigma$ to its output layer (features $\beta$);
# * a LayerNorm: a vertex layer for its input (features $b$) that forms one **pool**, and one edge per channel of
#   weight $\gamma$.
#
# Our example is `mlp 3-4-[5bn-4]-[4ln-4]-2 relu eps=0`: a Linear layer into a stream of width 4, a block with a
# BatchNorm in its branch, a block with a LayerNorm in its branch, and a head. These are the library's vertex layers:

# %%
from scalegmn_lite.course.block_figures import (
    draw_block_graph,
    measure_block_checks,
    plot_blind_pairs,
    plot_block_checks,
)
from scalegmn_lite.nn.block_graphs import EDGE_NORM, EDGE_SHORTCUT, EDGE_WEIGHT, block_layout, to_block_graph

net_spec = BlockNetworkSpec.from_text("mlp 3-4-[5bn-4]-[4ln-4]-2 relu eps=0")
print(net_spec.describe())
bw5 = BlockWeights.randn(net_spec, 1, gen, **f64)
graph, lay5 = to_block_graph(bw5), block_layout(net_spec)
sites = net_spec.gauge_plan().sites
stream_layers = [i for i, L in enumerate(lay5.vertex_layers) if sites[L.site].role == "stream"]
assert stream_layers == [1, 4, 7] and len({lay5.vertex_layers[i].site for i in stream_layers}) == 1
pd.DataFrame([{"site": sites[L.site].label, "role": sites[L.site].role, "width": L.width, "pooled": bool(L.pool),
               "vertex feature": " + ".join(b if m is None else f"{b} - {m}" for b, m in L.biases) or "0"}
              for L in lay5.vertex_layers]).rename_axis("vertex layer")

# %% [markdown]
# The three stream depths (vertex layers 1, 4 and 7) all sit on site `0`. This is the graph,
# drawn from `to_block_graph`'s own `edge_index` and `edge_type`:

# %% tags=["nbval-ignore-output"]
draw_block_graph(bw5)
plt.show()

# %% [markdown]
# **From scratch.** The first block's edges and vertex features, written down from the weights (edges in the
# library's order: by receiving vertex layer, a weight matrix row by row), equal the library's:

# %%
named = {k: t[0] for k, t in bw5.named().items()}  # network 0
sigma = named["1.branch.1.running_var"].sqrt()  # eps = 0
edges_by_hand = torch.cat([
    named["1.branch.0.weight"].reshape(-1),  # W1: stream depth 0 -> BatchNorm input
    named["1.branch.1.gamma"] / sigma,  # BatchNorm: input -> output, one edge per channel
    named["1.branch.2.weight"].reshape(-1),  # W2: BatchNorm output -> stream depth 1
    torch.ones(4, **f64),  # the shortcut: stream depth 0 -> depth 1, constant 1
])
x_by_hand = torch.cat([named["1.branch.0.bias"] - named["1.branch.1.running_mean"],  # BatchNorm input: b - mu
                       named["1.branch.1.beta"], named["1.branch.2.bias"]])  # BatchNorm output, stream depth 1
block_edges = (graph.edge_layer >= 2) & (graph.edge_layer <= 4)  # edges into vertex layers 2, 3, 4
block_vertices = (graph.layer >= 2) & (graph.layer <= 4)
assert torch.equal(graph.edge_attr[block_edges, 0], edges_by_hand)
assert torch.equal(graph.x[block_vertices, 0], x_by_hand)
shortcut = graph.edge_type == EDGE_SHORTCUT
assert int(shortcut.sum()) == 8 and bool((graph.edge_attr[shortcut, 0] == 1).all())
print("first block by hand == to_block_graph:", True, "| shortcut edges:", int(shortcut.sum()), "all equal to 1")

# %% [markdown]
# ### 5.2 The constant shortcut edge is consistent; dropping it is not
#
# A shortcut edge joins coordinate $k$ of the stream at depth $t$ to the same coordinate at depth $t+1$, so the
# gauge multiplies it by $q_{t+1,k} / q_{t,k}$. Section 1 showed that the true gauge gives every depth of a stream
# the **same** $q$. The factor is therefore exactly 1, the constant stays 1, and the graph of $g \cdot \theta$ is
# $g$ applied to the graph of $\theta$.
#
# The worry this section was announced with, that an identity edge of constant weight 1 would break ScaleGMN's scale
# equivariance, **turned out to be unfounded**: a constant edge is an ordinary edge whose factor happens to be 1.
#
# From scratch, the check reads every vertex's $q$ off a random gauge element (from its vertex layer's site),
# predicts the graph of the transformed network, and compares. It uses scalings only, so that no vertex moves; the
# checker of 5.4 adds permutations.

# %%
g5 = BlockGauge.sample(net_spec, 1, gen, permute=False, prenorm_sign=True)
q_v = torch.cat([g5.scales[L.site][0] for L in lay5.vertex_layers])  # each vertex's q, from its site
graph_g = to_block_graph(g5.apply(bw5))
src, dst = graph.edge_index
factor = q_v[dst] / q_v[src]  # q_t / q_s, edge by edge
bn_edge = (graph.edge_type == EDGE_NORM) & (graph.vpool[src] < 0)  # gamma / sigma (LayerNorm's gamma: 5.3)
pred = {"vertex features": (graph_g.x[:, 0], q_v * graph.x[:, 0])}
for name, sel in (("weight edges", graph.edge_type == EDGE_WEIGHT), ("shortcut edges", shortcut),
                  ("BatchNorm edges", bn_edge)):
    pred[name] = (graph_g.edge_attr[sel, 0], factor[sel] * graph.edge_attr[sel, 0])
law_err = {k: float((a - b).abs().max() / b.abs().max()) for k, (a, b) in pred.items()}
assert max(law_err.values()) < 1e-12 and bool((factor[shortcut] == 1).all())
print("graph of g.theta == g applied to the graph of theta (relative error < 1e-12):",
      {k: v < 1e-12 for k, v in law_err.items()})
print("q_t / q_s on every shortcut edge is exactly 1:", bool((factor[shortcut] == 1).all()))

# %% [markdown]
# Under the plain twin's gauge, where each depth of the stream has its own $q$ (no symmetry of the residual network),
# the factor is no longer 1 and the network computes another function. Give the shortcut the weight
# $q_{t+1}/q_t$ that it would need, and the function is back (a network outside the residual weight space, with
# non-constant shortcut weights), and ScaleGMN's output is back too: to ScaleGMN the shortcut is an ordinary scaled
# edge. With the constant 1 kept, ScaleGMN sees the difference.

# %%
from scalegmn_lite.nn.block_scalegmn import BlockScaleGMN
from scalegmn_lite.nn.checks import check_invariance, check_sensitivity
from scalegmn_lite.nn.scalegmn import ScaleGMN
from scalegmn_lite.weightspace.block_gauge import NonSymmetry

torch.manual_seed(SEED)
inv_model = ScaleGMN(hidden_dim=8, num_layers=2, max_layers=16, max_kernel=1).double()  # untrained, invariant


@torch.no_grad()
def rel_change(model, a, b):
    """max |model(a) - model(b)| / max |model(b)|"""
    return float((model(a) - model(b)).abs().max() / model(b).abs().max())


split = BlockGauge.sample(net_spec, 1, gen, permute=False, split_streams=True)  # one q per depth
moved = split.apply(bw5, strict=False)
compensated = NonSymmetry("shortcut weights q_{t+1} / q_t", moved, split.shortcut_edge_factors())
x3 = torch.randn(64, 3, generator=gen, **f64)
unshared = {"function, constant 1 kept": function_change(bw5, moved, x3),
            "function, shortcut weight q_{t+1}/q_t": function_change(bw5, compensated, x3),
            "ScaleGMN, constant 1 kept": rel_change(inv_model, moved, bw5),
            "ScaleGMN, shortcut weight q_{t+1}/q_t": rel_change(inv_model, compensated, bw5)}
assert not split.is_symmetry() and unshared["function, constant 1 kept"] > 1e-2
assert unshared["ScaleGMN, constant 1 kept"] > 1e-6
assert max(unshared["function, shortcut weight q_{t+1}/q_t"], unshared["ScaleGMN, shortcut weight q_{t+1}/q_t"]) < 1e-12
{k: ("unchanged (< 1e-12)" if v < 1e-12 else "changed") for k, v in unshared.items()}

# %% [markdown]
# **What does go wrong** is the construction that avoids the question by *dropping* the shortcut
# (`variant="plain_twin"`: the graph of the same weights without shortcut edges). It is equivariant, since it is the
# graph of the plain twin, a chain, but it is **blind**: a residual network and its plain twin (the same weights,
# shortcuts removed) compute different functions, and it gives them identical outputs.

# %%
twin_model = BlockScaleGMN(inv_model, "plain_twin")
plain = NonSymmetry("the plain twin", bw5, (0.0, 0.0))  # shortcut weights 0: the same weights without shortcuts
pair_twin = dict(pair="residual network\nvs its plain twin", function=function_change(bw5, plain, x3),
                 exact=rel_change(inv_model, plain, bw5), ablation="plain_twin",
                 ablation_change=rel_change(twin_model, plain, bw5))
assert pair_twin["function"] > 0.1 and pair_twin["exact"] > 1e-6 and pair_twin["ablation_change"] == 0
print(f"functions differ by more than 10%: {pair_twin['function'] > 0.1}; plain_twin graph: identical outputs: "
      f"{pair_twin['ablation_change'] == 0}; exact graph: different outputs: {pair_twin['exact'] > 1e-6}")

# %% [markdown]
# ### 5.3 Norm layers
#
# **BatchNorm.** The free scale $d \neq 0$ of section 2 acts on the norm's input vertex layer: its features become
# $b - \mu \mapsto d\,(b - \mu)$, and its edges
# $\gamma/\sigma \mapsto q\,\mathrm{sign}(d)\,\gamma / (|d|\,\sigma) = (q/d)\,\gamma/\sigma$. This is the
# $q_t / q_s$ law with $q_s = d$, the "BatchNorm edges" row of the check in 5.2. So a BatchNorm input is one more
# vertex whose group is "any $d \neq 0$", which ScaleGMN already handles, and the running statistics enter through
# $b - \mu$ and $\sigma$.
#
# The ablation `norm_affine` feeds a norm as an elementwise affine layer: edge $\gamma$, features $b$ and $\beta$,
# statistics ignored, the norm's input treated as an ordinary ReLU neuron. Under $d$ its features scale but its edges
# do not, so it is **not equivariant** to the norm's free scalings, and it cannot see the running statistics:

# %%
naive_model = BlockScaleGMN(inv_model, "norm_affine")
bn_scale_err = {name: check_invariance(m, bw5, 2, torch.Generator().manual_seed(SEED),
                                       part="batchnorm_scale").max_relative
                for name, m in (("exact", inv_model), ("norm_affine", naive_model))}
stats = bw5.replace_params({n: 1.5 * t + 0.2 for n, t in bw5.named().items() if "running" in n})
pair_stats = dict(pair="BatchNorm running\nstatistics changed", function=function_change(bw5, stats, x3),
                  exact=rel_change(inv_model, stats, bw5), ablation="norm_affine",
                  ablation_change=rel_change(naive_model, stats, bw5))
assert bn_scale_err["exact"] < 1e-12 and bn_scale_err["norm_affine"] > 1e-6
assert pair_stats["function"] > 1e-2 and pair_stats["exact"] > 1e-6 and pair_stats["ablation_change"] == 0
print(f"invariance under BatchNorm's free scale: exact < 1e-12: {bn_scale_err['exact'] < 1e-12}, "
      f"norm_affine > 1e-6: {bn_scale_err['norm_affine'] > 1e-6}")
print("running statistics changed: norm_affine's output identical:", pair_stats["ablation_change"] == 0)

# %% [markdown]
# **LayerNorm.** Its input is scaled by one common $c \neq 0$ (section 3), never per neuron: the features $b$
# become $c\,b$ and the edges $\gamma \mapsto q\,\mathrm{sign}(c)\,\gamma$. If each LayerNorm input vertex were
# given its own group "any $d_i \neq 0$", as for BatchNorm (`variant="layernorm_per_vertex"`), ScaleGMN would still
# be equivariant, but to a group larger than the true one. It would then be invariant to per-neuron rescalings that
# change the function: **over-invariant**.
#
# The exact construction **pools** the layer instead. A pooled row's invariant view is normalised by the norm of the
# whole pool and symmetrised jointly (an even function of $u + \bar u$, $\bar u$ the pool's mean). From scratch, on
# the 4 biases of the LayerNorm's input, and then with the library's `ScaleInv`:

# %%
from scalegmn_lite.nn.layers import VIEW_NONZERO, ScaleInv
from scalegmn_lite.nn.layers.invariant import Kinds


def even(u):
    return u * torch.tanh(u / 2)  # rho(u) + rho(-u) with rho = SiLU: an even function


def per_vertex_view(x):  # every vertex its own d != 0
    return even(x / x.abs())


def pooled_view(x):  # one pool: one common c != 0
    u = x / x.norm()
    return even(u + u.mean())


b_ln = graph.x[graph.vpool >= 0]  # [4, 1]: the LayerNorm input's features
c_common, d_each = -2.5, torch.tensor([[0.5], [3.0], [-1.0], [2.0]], **f64)
views = {"per-vertex view": per_vertex_view, "pooled view": pooled_view}
unchanged = pd.DataFrame({name: {"common c = -2.5": torch.allclose(f(c_common * b_ln), f(b_ln), rtol=0, atol=1e-12),
                                 "per-neuron d": torch.allclose(f(d_each * b_ln), f(b_ln), rtol=0, atol=1e-12)}
                          for name, f in views.items()})
one_pool, no_pool = torch.zeros(4, dtype=torch.long), torch.full((4,), -1)
assert torch.allclose(ScaleInv(1)(b_ln, Kinds(VIEW_NONZERO, one_pool)), pooled_view(b_ln), rtol=0, atol=1e-14)
assert torch.allclose(ScaleInv(1)(b_ln, Kinds(VIEW_NONZERO, no_pool)), per_vertex_view(b_ln), rtol=0, atol=1e-14)
assert unchanged.values.tolist() == [[True, True], [True, False]]
print("library ScaleInv == from scratch (pooled and per-vertex):", True)
unchanged  # True: the view did not change

# %% [markdown]
# The per-vertex view does not change under *any* $d$: for one scalar per vertex it is the constant
# $\tanh(1/2)$, and it forgets the biases altogether. The pooled view keeps their ratios. The same at the level of
# the model: two LayerNorm networks related by a per-neuron scaling of the norm's input compute different functions,
# and the per-vertex construction gives them identical outputs (up to rounding):

# %%
per_vertex_model = BlockScaleGMN(inv_model, "layernorm_per_vertex")
other = sample_non_symmetry(bw5, "layernorm_neuron_scale", gen)
pair_ln = dict(pair="LayerNorm input\nscaled per neuron", function=function_change(bw5, other, x3),
               exact=rel_change(inv_model, other, bw5), ablation="layernorm_per_vertex",
               ablation_change=rel_change(per_vertex_model, other, bw5))
assert pair_ln["function"] > 1e-2 and pair_ln["exact"] > 1e-6 and pair_ln["ablation_change"] < 1e-12
print(f"functions differ by more than 1%: {pair_ln['function'] > 1e-2}; per-vertex views: outputs equal to "
      f"< 1e-12: {pair_ln['ablation_change'] < 1e-12}; pooled views: different: {pair_ln['exact'] > 1e-6}")

# %% tags=["nbval-ignore-output"]
plot_blind_pairs([pair_twin, pair_ln, pair_stats])
plt.show()

# %% [markdown]
# How to read it: the grey bar says the two networks compute different functions. The exact construction's output
# moves (blue; this model is untrained, so what matters is that the change is far above rounding, not its size),
# and each ablation's does not. Each ablation is blind to exactly the piece it simplified away.
#
# ### 5.4 The checker, on every construction
#
# The library's checker `scalegmn_lite.nn.checks` takes `BlockWeights` and, with `part=`, samples one part of the
# gauge group at a time: stream or hidden permutations, stream or hidden scalings, BatchNorm's free scale and sign,
# LayerNorm's common scale and sign (`scalegmn_lite.nn.block_checks.GAUGE_PARTS`). `check_sensitivity` applies the
# network's non-symmetries (negative controls). `measure_block_checks` runs both on each construction, for an
# invariant and an equivariant ScaleGMN:

# %%
torch.manual_seed(SEED)
models = {head: ScaleGMN(hidden_dim=8, num_layers=2, head=head, max_layers=16, max_kernel=1).double()
          for head in ("invariant", "equivariant")}
errors, changes = measure_block_checks(models, bw5, seed=SEED)
err_df, chg_df = pd.DataFrame(errors), pd.DataFrame(changes)
norm_part = err_df["part"].str.startswith(("batchnorm", "layernorm"))
naive = err_df["construction"] == "norm_affine"
assert err_df[~(naive & norm_part)]["error"].max() < 1e-13  # every other construction, part and head: exact
assert err_df[naive & norm_part]["error"].min() > 1e-6  # norm_affine: every norm part broken
inv_changes = chg_df[chg_df["head"] == "invariant"].pivot(index="kind", columns="construction", values="change")
blind = inv_changes < 1e-12
assert blind.sum().to_dict() == {"exact": 0, "layernorm_per_vertex": 1, "norm_affine": 0, "plain_twin": 2}
assert inv_changes[~blind].min().min() > 1e-6  # the others: far above rounding
blind.loc[:, ["exact", "plain_twin", "norm_affine", "layernorm_per_vertex"]]  # True: blind to this non-symmetry

# %% tags=["nbval-ignore-output"]
plot_block_checks(errors, changes)
plt.show()

# %% [markdown]
# The top two panels are the symmetries: every bar of the exact construction, of `plain_twin` and of
# `layernorm_per_vertex` lies below $10^{-13}$, float64 rounding (exact zeros are drawn at the bottom), for both
# heads. `norm_affine` breaks each of the four norm parts, far above the checker's tolerance. The bottom panel holds
# the negative controls, where a useful model must move: the exact construction sees every non-symmetry, while
# `plain_twin` is blind to an unshared stream scale and to a rescaled shortcut, and `layernorm_per_vertex` is blind to
# a per-neuron LayerNorm scaling. Passing the equivariance check is therefore only half of the test; a construction
# must also fail to be invariant where the network changes.
#
# ### 5.5 ScaleGMN on your own residual `nn.Module`
#
# Build a ResNet-style MLP with `torch.nn` and the library's `Residual` block (`y = act(branch(x) + x)`), fill the
# BatchNorm statistics with a few training-mode passes, and switch it to eval mode. In training mode BatchNorm uses
# the batch's statistics, so it is no fixed function of its parameters, and the converter refuses it:

# %%
from torch import nn

from scalegmn_lite.weightspace.blocks import Residual
from scalegmn_lite.weightspace.layer import SpecError


def res_block(width, inner):
    branch = nn.Sequential(nn.Linear(width, inner), nn.BatchNorm1d(inner), nn.ReLU(), nn.Linear(inner, width))
    return Residual(branch, activation=nn.ReLU())


torch.manual_seed(SEED)
my_net = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), res_block(6, 8), res_block(6, 8),
                       nn.Linear(6, 2)).double()
with torch.no_grad():
    for _ in range(10):  # training-mode passes fill the running statistics
        my_net(2 * torch.randn(32, 3, generator=gen, **f64) + 1)
try:
    BlockNetworkSpec.from_module(my_net)
except SpecError as err:
    print("SpecError:", err)
my_net.eval()
my_spec = BlockNetworkSpec.from_module(my_net)
print(my_spec.describe())

# %% [markdown]
# In eval mode it converts. `BlockWeights.from_module` computes what the module computes, and the invariant ScaleGMN
# reads it directly. For exact claims the norms get $\epsilon = 0$ (section 4; torch's default $10^{-5}$ makes the
# symmetry approximate). Transform the weights by a random gauge element and go back to an `nn.Module`: the module
# computes the same function, and ScaleGMN gives the same output. The checker agrees over the whole group, and the
# non-symmetries move the output.

# %%
my_bw = BlockWeights.from_module(my_net)
x_in = torch.randn(32, 3, generator=gen, **f64)
with torch.no_grad():
    assert torch.allclose(my_bw(x_in)[0], my_net(x_in), rtol=0, atol=1e-12)  # library forward == the module
my_bw0 = BlockWeights(my_spec.with_eps(0.0), my_bw.params)  # eps = 0: exact claims
g_my = BlockGauge.sample(my_bw0.spec, 1, gen, prenorm_sign=True)
net_g = g_my.apply(my_bw0).to_module()  # the transformed network, as an nn.Module again
with torch.no_grad():
    f0, f_g = my_bw0.to_module()(x_in), net_g(x_in)
    out0, out_g = inv_model(my_bw0), inv_model(BlockWeights.from_module(net_g))
module_change = float((f_g - f0).abs().max() / f0.abs().max())
model_change = float((out_g - out0).abs().max() / out0.abs().max())
full_check = check_invariance(inv_model, my_bw0, 4, gen).max_relative
my_sens = check_sensitivity(inv_model, my_bw0, generator=gen)
assert module_change < 1e-12 and model_change < 1e-12 and full_check < 1e-12 and min(my_sens.values()) > 1e-6
print(f"transformed nn.Module: same function (< 1e-12): {module_change < 1e-12}; same ScaleGMN output (< 1e-12): "
      f"{model_change < 1e-12}; check_invariance over 4 samples (< 1e-12): {full_check < 1e-12}")
print("non-symmetries change the output (> 1e-6):", {k: v > 1e-6 for k, v in my_sens.items()})

# %% [markdown]
# ## 6. Trained residual networks: does exact equivariance matter?
#
# Sections 1-5 showed on random weights that ScaleGMN on the exact block graphs is invariant to the whole gauge
# group, and that the naive constructions are either not invariant or blind. This section asks whether that matters
# on *trained* networks, in a task: **accuracy prediction**. As in notebook 06, a metanetwork ranks networks by their
# test accuracy from their weights alone (Kendall $\tau$), here on zoos of residual networks with BatchNorm or
# LayerNorm. Every network is held out whole: its checkpoints all sit in one part of the 60/20/20 split, the model of
# each kind is chosen on the validation networks, and the intervals resample whole test networks and seeds.
#
# The models differ in what they are invariant to:
# ScaleGMN on the exact graphs (the whole group); two naive ScaleGMNs, one with the shortcuts dropped
# (`plain_twin`: invariant, but blind to what the shortcuts add) and one with the norms fed as affine layers
# (`norm_affine`: not invariant to the norms' free scales); GMN (permutations only); StatNN (statistics of each
# weight tensor) and a flat MLP (neither), and a floor that ranks by the weights' norm.
#
# The test that separates them is the **gauge test**. Every held-out network is replaced by a random gauge transform
# of itself: permutations, the stream's shared scalings, BatchNorm's free per-channel scales and LayerNorm's common
# one. These networks compute the same functions and have the same accuracies, so a model that learned the task, and
# not the coordinates its training networks happened to use, ranks them as before.
#
# ### 6.1 The zoos
# The study's first zoo, `rescnn1d-bn-hp-mnist1d`, holds residual Conv1d nets: a strided stem, one residual block of
# two 8-channel convolutions, BatchNorm after every convolution, global average pooling, a linear head. They are
# trained on MNIST-1D with the headroom recipe of notebook 03 (training fraction, optimizer, learning rate,
# initialisation and weight decay drawn per network), so their accuracies spread widely, and in BatchNorm's training
# mode (the running statistics are stored, and the graph reads them). The recipe seeds each network by its index,
# so the first 128 networks, built here in about half a minute, are the zoo's own first 128; section 6.4 trains on
# them.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.course.reference import load_reference
from scalegmn_lite.course.residual_story import plot_zoo_accuracy
from scalegmn_lite.zoo import build_zoo, get_recipe

res_recipe = get_recipe("rescnn1d-bn-hp-mnist1d")
print(res_recipe.arch, "|", res_recipe.description)
first = build_zoo(res_recipe, indices=range(128), progress=False)
plot_zoo_accuracy(first, n_curves=12, seed=SEED)
plt.tight_layout()
plt.show()

# %% [markdown]
# The reference run's zoos, at full size (4096 networks each), as its result file records them: final test accuracy
# at the 10th, 50th and 90th percentile, the build time on one core and the checkpoints the study pools.

# %%
ref_res = load_reference("residual")
if ref_res is not None:
    zt = pd.DataFrame([{"zoo": name, "networks": z["networks"], "architecture": z["specs"][0],
                        "final test acc 10/50/90%": " / ".join(f"{z['quantiles_0_10_25_50_75_90_100'][i]:.2f}"
                                                              for i in (1, 3, 5)),
                        "build s": "cached" if z["seconds_build"] is None else f"{z['seconds_build']:.0f}",
                        "studied": "yes" if name in ref_res["zoos"] else "built and reported"}
                       for name, z in ref_res["zoo_table"].items()])
    print(zt.to_string(index=False))
    print("checkpoints pooled by the study:", ref_res["settings"]["checkpoints"], "(-1: the final one)")

# %% [markdown]
# ### 6.2 A trained residual ScaleGMN, in seconds
# The course ships the reference run's ScaleGMN (seed 0) for the residual Conv1d zoo with 64 of its held-out test
# networks. Loading it verifies every file's hash; `check_shipped` recomputes the reference run's predictions for the
# 64 networks. Then the gauge test, on this sample: transform each network by a random gauge element and predict
# again, and do the same with a transformation that is *not* a symmetry (every hidden unit scaled by $-1$, which a
# ReLU does not commute with).

# %% tags=["nbval-ignore-output"]
from scipy.stats import kendalltau

from scalegmn_lite.course.shipped import check_shipped, load_shipped
from scalegmn_lite.tasks.invariant.blocks import gauge_transform, non_symmetry_transform
from scalegmn_lite.tasks.invariant.fit import predict

try:
    shipped_res = load_shipped("residual-accuracy-predictor-scalegmn")
except KeyError as err:  # a checkout whose reference run has no residual model yet
    shipped_res = None
    print(err)
if shipped_res is not None:
    print(shipped_res.describe())
    print("reproduces the reference run's predictions:", check_shipped(shipped_res))
    held = shipped_res.heldout
    pred = predict(shipped_res.model, held).squeeze(-1)
    pred_g = predict(shipped_res.model, gauge_transform(held, seed=1)).squeeze(-1)
    pred_n = predict(shipped_res.model, non_symmetry_transform(held, "wrong_scaling", seed=1)).squeeze(-1)
    y_true = shipped_res.target.numpy()
    print(f"Kendall tau on these {len(y_true)} held-out networks: {kendalltau(pred.numpy(), y_true)[0]:.3f}")
    print(f"gauge-transformed: max |change of a prediction| {float((pred_g - pred).abs().max()):.2e}, "
          f"tau {kendalltau(pred_g.numpy(), y_true)[0]:.3f}")
    print(f"not a symmetry:    max |change of a prediction| {float((pred_n - pred).abs().max()):.2e}")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(y_true, pred.numpy(), c=shipped_res.extra["checkpoint"].numpy(), cmap="viridis", s=18)
    ax.plot([y_true.min(), y_true.max()], [y_true.min(), y_true.max()], "k:", lw=1)
    ax.set_xlabel("true test accuracy")
    ax.set_ylabel("predicted")
    ax.set_title("held-out residual nets (colour: checkpoint epoch)", fontsize=9)
    plt.show()

# %% [markdown]
# The gauge-transformed networks get the same predictions up to float rounding and BatchNorm's $\epsilon$ (section 4:
# with $\epsilon > 0$ a free BatchNorm scale changes the function by about $\epsilon$, so the prediction can move by
# as much). The non-symmetry computes other functions, and the prediction moves.
#
# ### 6.3 The reference run: which models survive the gauge test?
# The table lists every model on each zoo of the reference run: held-out $\tau$ with its 95% interval, the same on
# gauge-transformed test networks, the in-sample $\tau$ (training networks, at the epoch kept) and the validation
# score the study chose its model on.

# %%
from scalegmn_lite.course.residual_story import (
    plot_data_curve,
    plot_gauge_test,
    plot_validation_curves,
    scores_frame,
)

if ref_res is not None:
    s = ref_res["settings"]
    print(f"reference settings: hidden width {s['hidden']}, {s['layers']} layers, {s['epochs']} epochs, seeds "
          f"{s['seeds']}; networks per zoo (a seeded subset where smaller than the zoo): "
          + "; ".join(f"{z} {r['networks']} (train/val/test checkpoints {r['sizes']['train']}/{r['sizes']['val']}/"
                      f"{r['sizes']['test']})" for z, r in ref_res["zoos"].items()))
    print(scores_frame(ref_res).to_string(index=False))

# %% tags=["nbval-ignore-output"]
if ref_res is not None:
    zs = list(ref_res["per_zoo"])
    fig, axes = plt.subplots(1, len(zs), figsize=(5.2 * len(zs), 4), sharey=True)
    for ax, z in zip(np.atleast_1d(axes), zs):
        plot_gauge_test(ref_res, z, ax=ax)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# Read each pair of bars: the dark one is the model on the test networks, the light one on their gauge transforms.
# The verdicts below say, from the intervals, which pairs differ. The two figures after them show whether more
# compute would change the picture: the learning curves (validation $\tau$ per epoch; still rising at the last epoch
# means more epochs would help) and the data curve (held-out and in-sample $\tau$ as the number of training networks
# grows; a gap between them that shrinks with more networks means more networks would help).

# %%
from IPython.display import Markdown, display

from scalegmn_lite.common.claims import count_claims
from scalegmn_lite.course.reference import findings_lines

if ref_res is not None:
    n_claims = count_claims(ref_res["claims"])
    findings = [c for c in ref_res["claims"] if c.get("kind") == "finding"]
    checks = [c for c in ref_res["claims"] if c.get("kind") != "finding"]
    display(Markdown(f"**The reference run's verdicts** ({n_claims['finding']['holds']} of "
                     f"{n_claims['finding']['total']} findings hold):\n\n" + "\n".join(findings_lines(findings))
                     + "\n\n**Exact checks:**\n\n" + "\n".join(findings_lines(checks))))

# %% [markdown]
# The same run read zoo by zoo, in words generated from its file (`reading`): the model chosen on validation against
# the target, what the gauge test does to each model (a verb only where the paired interval excludes zero), ScaleGMN
# against the naive ScaleGMNs on the transformed networks, how far in-sample scores sit above held-out ones, and what
# the curves below say about more compute.

# %%
from scalegmn_lite.course.residual_story import reading

if ref_res is not None:
    display(Markdown(reading(ref_res)))

# %% tags=["nbval-ignore-output"]
if ref_res is not None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    plot_validation_curves(ref_res, zs[0], ax=axes[0])
    plot_data_curve(ref_res, ax=axes[1])
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ### 6.4 Reproduce it yourself
# `scalegmn-lite reproduce --reference --only residual` reruns the whole study (about an hour on 2 cores);
# `reproduce --quick --only residual` runs it on the Conv1d zoo at 1024 networks in a few minutes. Here a small
# version runs live on the 128 networks built in section 6.1: ScaleGMN, the naive norm-affine ScaleGMN and StatNN,
# two seeds, three epochs, with the study's own code (`run_zoo`, then `judge` for the intervals). 26 test networks
# are far too few for the reference figures, so read the intervals, not the means: the point is to run the pipeline
# and the gauge test end to end.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.experiments import RunContext
from scalegmn_lite.experiments import residual as residual_study

mine_p = dict(residual_study.QUICK, models=("scalegmn", "scalegmn-normaffine", "statnn"), seeds=(0, 1), epochs=3)
mine = {"zoos": {"first-128": residual_study.run_zoo(first, mine_p, RunContext(seed=SEED, progress=False))},
        "settings": mine_p}
mine.update(residual_study.judge(mine, n_boot=500))
print(scores_frame(mine).drop(columns="zoo").to_string(index=False))
plot_gauge_test(mine, "first-128")
plt.show()

# %% [markdown]
# Whatever the means, ScaleGMN's two bars are equal up to BatchNorm's $\epsilon$: its predictions cannot depend on
# which gauge a network was stored in. The baselines' light bars are free to move, and on the reference run's
# thousand-network test splits (section 6.3) the intervals say whether they do.

# %% [markdown]
# ## Summary, and what is next: attention
#
# * A residual stream has **one** permutation and **one** positive scale for every depth that reads or writes it:
#   the shortcut is an edge of fixed weight 1. Its scaling gauge, $\sum_i h_i + d_s$, is strictly smaller than the
#   plain twin's $\sum_i h_i + (n+1)\,d_s$ for $n \ge 1$; a ReLU after the additions changes nothing; a projection
#   shortcut starts a new stream.
# * **BatchNorm** adds a free per-channel scale of its input (nothing compensates it) and allows a sign flip paired
#   with $\gamma \mapsto -\gamma$; the flip alone is no symmetry.
# * **LayerNorm** adds one common scale and a shift along $\mathbf{1}$, permutes with $\gamma, \beta$, and allows no
#   per-neuron scaling: the sympy derivation gives dimension 1, and $n = 2$ has an explicit counterexample.
# * Exact claims use $\epsilon = 0$; for $\epsilon > 0$ the deviation is measured, bounded and linear in $\epsilon$.
# * **As a graph** (`to_block_graph`): one vertex layer per stream depth, all on one site, and the identity shortcut
#   as ordinary edges of constant 1. Under the true gauge their factor $q_{t+1}/q_t$ is exactly 1, so the feared
#   "constant edge breaks equivariance" does not happen. A BatchNorm input is a vertex layer (features $b - \mu$,
#   edges $\gamma/\sigma \mapsto (q/d)\,\gamma/\sigma$); a LayerNorm input is one pool (views normalised over the
#   layer). ScaleGMN on this graph is exact (errors below $10^{-13}$ in float64) for every part of the group, for both
#   heads, and it sees every non-symmetry.
# * The naive constructions fail in two different ways. Feeding norms as affine layers (`norm_affine`) breaks
#   equivariance to the norms' scales and signs. Dropping the shortcut (`plain_twin`) and per-vertex LayerNorm views
#   (`layernorm_per_vertex`) stay equivariant but are **blind**: they give identical outputs to networks that compute
#   different functions. Passing the equivariance check is half of the test; the negative controls are the other half.
# * Your own `nn.Sequential` with `Residual` blocks and BatchNorm in eval mode converts with `BlockWeights.from_module`;
#   BatchNorm in training mode is refused with the reason.
# * **On trained residual networks** (section 6), ScaleGMN on the exact graphs ranks held-out networks by accuracy
#   and ranks their gauge transforms identically; models that are not invariant can move when the networks are stored
#   in another gauge. Whether each baseline's drop and each comparison with the naive ScaleGMNs is real is for the
#   intervals to say: the verdicts of section 6.3 come from the reference run's file, as do all of its numbers.
#
# **Next: attention.** A multi-head attention layer has larger, non-diagonal gauges: per head,
# $(W_Q, W_K) \mapsto (W_Q M^\top, W_K M^{-1})$ with any $M \in GL(d_k)$, and $(W_V, W_O) \mapsto (W_V N, N^{-1} W_O)$
# with $N \in GL(d_v)$, and the heads can be permuted. Transformer-NFN (Tran et al., ICLR 2025) proves this group
# maximal and builds a metanetwork equivariant to it. With RMSNorm, once its gains are folded into the next weights,
# any orthogonal $Q$ on the stream cancels: the $O(d)$ gauge SliceGPT uses to delete rows and columns.
#
# ## Exercises
#
# **1.** How large is the scaling gauge of `EXERCISE_09_1_NETWORK` (`mlp 8-16bn-[16bn-16]x2-[32-32|proj]-4 relu`:
# a Linear layer with BatchNorm, two identity blocks whose first layer has a BatchNorm, a projection block to width
# 32, and a head)? Count by hand, then check.
#
# *Hint:* three kinds of terms: inner units of the branches, streams (each counted once, however many depths it
# spans), and the inputs of the BatchNorms. Which layers write into a stream and which into an inner unit?
#
# <details><summary>Solution</summary>
#
# Inner units: $16 + 16$ (the two identity blocks) $+ 32$ (the projection block's first layer) $= 64$. Streams: the
# first one (width 16, written by the stem and the two identity blocks) and the one the projection starts (32):
# $48$. BatchNorm inputs: $16$ (stem) $+ 16 + 16$ (the blocks) $= 48$. In all
#
# ```python
# block_dims = 64 + 48 + 48  # 160
# ```
# `BlockNetworkSpec.from_text(EXERCISE_09_1_NETWORK).describe()` lists the same terms.
# </details>

# %%
from scalegmn_lite.course.beyond import (
    EXERCISE_09_1_NETWORK,
    SYMMETRY_CANDIDATES,
    check_block_dims,
    check_layernorm_counterexample,
    check_scaled_eps,
    check_symmetries,
)

print(EXERCISE_09_1_NETWORK)
block_dims = None  # your dim G_scale
check_block_dims(block_dims)

# %% [markdown]
# **2.** Which of these transformations are symmetries (exactly, in float64)? Answer with the set of letters.
#
# *Hint:* three questions for each: does a constant edge (a shortcut) have to change? does a normalization see a
# per-neuron change? is $\epsilon$ kept while a pre-norm scale changes the variance?
#
# <details><summary>Solution</summary>
#
# ```python
# symmetries = {"a", "c", "f", "g"}
# ```
# (a) a shared stream scale; (c) LayerNorm's shift, exact for every $\epsilon$; (f) the BatchNorm sign flip
# *with* $\gamma$, exact for every $\epsilon$; (g) a shared positive scale survives the ReLU after the additions.
# Not: (b) the flip without $\gamma$; (d) a stream scale at one depth only; (e) $q = -1$ on a ReLU unit; (h) a
# pre-norm scale with $\epsilon = 10^{-5}$ kept moves the outputs by about $10^{-5}$, small but no symmetry.
# </details>

# %%
for key, text in SYMMETRY_CANDIDATES.items():
    print(f"({key}) {text}")
symmetries = None  # a set of letters, e.g. {"a", ...}
check_symmetries(symmetries)

# %% [markdown]
# **3.** Find your own LayerNorm counterexample with two features: numbers $z = (z_1, z_2)$ and positive scales
# $d = (d_1, d_2)$ with $\mathrm{ln}(Dz) \ne \mathrm{ln}(z)$ ($\gamma = 1$, $\beta = 0$, $\epsilon = 0$).
#
# *Hint:* $\mathrm{ln}$ of two features only depends on the sign of $z_1 - z_2$ (the figure in section 3). Pick
# $z_1 > z_2 > 0$ and a $d$ that makes $d_2 z_2$ overtake $d_1 z_1$.
#
# <details><summary>Solution</summary>
#
# ```python
# z_answer, d_answer = (3.0, 1.0), (1.0, 5.0)  # D z = (3, 5): the order of the features flips
# ```
# Any $d_2 / d_1 > z_1 / z_2$ does it. A common scale $d_1 = d_2$ never does: it keeps the sign of $z_1 - z_2$.
# </details>

# %%
z_answer, d_answer = None, None  # two features, two positive scales
check_layernorm_counterexample(z_answer, d_answer)

# %% [markdown]
# **4.** Section 4 said that rescaling $\epsilon$ makes a pre-norm scaling exact. Write `scaled_eps(eps, d)`, the
# $\epsilon$ the transformed network must use (for BatchNorm `d` is a tensor of per-channel scales, for LayerNorm a
# number). Then: why does the course not adopt this?
#
# *Hint:* the scaled network divides by $\sqrt{d^2\sigma^2 + \epsilon'}$; for which $\epsilon'$ is this
# $d\sqrt{\sigma^2 + \epsilon}$?
#
# <details><summary>Solution</summary>
#
# ```python
# def scaled_eps(eps, d):
#     return d**2 * eps
# ```
# $\sqrt{d^2\sigma^2 + d^2\epsilon} = d\sqrt{\sigma^2 + \epsilon}$. But $\epsilon$ is a hyperparameter, not a weight:
# the transformed network would leave the weight space (a different architecture), and with per-channel $d$ it would
# need one $\epsilon$ per channel, which `torch.nn.BatchNorm1d` does not have.
# </details>

# %%
def scaled_eps(eps, d):
    raise NotImplementedError


check_scaled_eps(scaled_eps)

# %% [markdown]
# **5.** Predict, without running anything, how the four graph constructions of section 5 fare on
# `EXERCISE_09_5_NETWORK` (`mlp 3-5bn-[4-5|proj]-[5-5]-2 relu eps=0`: a Linear layer with BatchNorm, a projection
# block, an identity block, a head; no LayerNorm). For each construction give the set of checks it **fails**, named
# as in `CONSTRUCTION_CHECKS`. A gauge part (`"batchnorm_scale"`, ...) fails when the invariant ScaleGMN's error
# is above the checker's tolerance. A non-symmetry (`"unshared_stream_scale"`, ...) fails when the output does *not*
# move, so the construction is blind to it. A check the network gives no occasion for cannot fail.
#
# *Hint:* each ablation mishandles one piece (the identity shortcut, the norms' statistics and free scales, the
# LayerNorm's pool). Which of these pieces does this network have, and does a projection shortcut count as one?
#
# <details><summary>Solution</summary>
#
# ```python
# construction_fails = {
#     "exact": set(),
#     "plain_twin": {"unshared_stream_scale", "shortcut_edge_rescaled"},
#     "norm_affine": {"batchnorm_scale", "batchnorm_sign"},
#     "layernorm_per_vertex": set(),
# }
# ```
# `plain_twin` drops only identity shortcuts: the projection is a learned weight and stays in the graph, but the
# identity block's shortcut goes, and with it the constant edge through which an unshared stream scale or a rescaled
# shortcut becomes visible. `norm_affine` mishandles the BatchNorm (there is no LayerNorm to break). Without a
# LayerNorm, `layernorm_per_vertex` builds exactly the exact graph.
# </details>

# %%
from scalegmn_lite.course.block_figures import CONSTRUCTION_CHECKS, EXERCISE_09_5_NETWORK, check_construction_failures

print(EXERCISE_09_5_NETWORK)
print(CONSTRUCTION_CHECKS)
construction_fails = None  # {construction: set of checks it fails}, for "exact", "plain_twin", "norm_affine", ...
check_construction_failures(construction_fails)
