# %% [markdown]
# # 02 · CNN vs MLP: how much gauge freedom is there?

# %% tags=["nbval-ignore-output"]
import matplotlib.pyplot as plt

from scalegmn_lite.common.config import notebook_setup
from scalegmn_lite.course.diagrams import draw_conv_toeplitz_gauge

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

draw_conv_toeplitz_gauge()  # a conv1d kernel (2 out, 1 in channel, size 3) on length 6, and a dense layer
plt.show()

# %% [markdown]
# *Look at the diagonals:* shared weights tie a channel's rows to one scale (CNN: 2); dense rows scale alone (MLP: 8).

# %% [markdown]
# A convolution is a linear map, so it can be "unrolled" into a matrix acting on the flattened signal.
# For conv1d with kernel $K \in \mathbb{R}^{c_\text{out} \times c_\text{in} \times k}$:
#
# $$M[(o, p),\ (c,\ p\,s + j - \text{pad})] = K[o, c, j],$$
#
# a block **Toeplitz** matrix (for conv2d: blocks of Toeplitz blocks, *doubly-block Toeplitz*). Every
# kernel weight appears in many entries. A dense layer of the same unrolled size may rescale every
# neuron separately; which scalings keep a convolution a convolution?
#
# **Sources.** The comparison $G_\text{scale}(W^\text{CNN}) \subsetneq G_\text{scale}(W^\text{MLP})$ is
# the argument of *Symmetry-Aware Fully-Amortized Optimization with Scale Equivariant Graph
# Metanetworks*, arXiv 2510.08300 (2025), for why equivariance should matter more for MLPs; the group
# is the one of ScaleGMN (Kalogeropoulos et al., NeurIPS 2024). Notebook 07 comes back to it.
#
# **You will learn** to unroll a convolution into a Toeplitz matrix, to turn "stays a convolution"
# into linear equations, and to count the gauge dimension of CNNs and MLPs.

# %%
import pandas as pd
import seaborn as sns
import sympy as sp
import torch
import torch.nn.functional as F

from scalegmn_lite import GaugeElement, NetworkSpec, WeightSpace, batched_forward
from scalegmn_lite.symbolic.conv import (
    check_conv_scaling_numerically,
    conv1d_index,
    is_convolution,
    layer_scaling_dims,
    network_scaling_dims,
    scaling_constraints,
    symbolic_kernel,
    toeplitz_matrix,
    unrolled_matrix,
)
from scalegmn_lite.symbolic.latex import show_math

# %% [markdown]
# ## 1. The Toeplitz matrix of a tiny convolution
#
# One input and one output channel, input length $n = 4$, kernel $k = 2$ (so 3 output positions),
# and a $2 \times 2$ kernel on a $3 \times 3$ image:

# %%
K1 = symbolic_kernel(1, 1, 2)
M1 = toeplitz_matrix(K1, 4)
show_math(r"M_{\text{conv1d}} = ", M1)
K2 = symbolic_kernel(1, 1, 2, 2)
M2 = toeplitz_matrix(K2, (3, 3))
_ = show_math(r"M_{\text{conv2d}} = ", M2)

# %% [markdown]
# **From scratch**: fill the matrix with a Python loop for a numeric kernel and compare with
# `torch.nn.functional.conv1d`; then the library's `unrolled_matrix`, checked equal.

# %%
torch.manual_seed(SEED)
c_out, c_in, k, n = 2, 3, 3, 7
w = torch.randn(c_out, c_in, k, dtype=torch.float64)
n_out = n - k + 1
M = torch.zeros(c_out * n_out, c_in * n, dtype=torch.float64)
for o in range(c_out):
    for p in range(n_out):
        for c in range(c_in):
            for j in range(k):
                M[o * n_out + p, c * n + p + j] = w[o, c, j]
x = torch.randn(5, c_in, n, dtype=torch.float64)
assert torch.allclose(x.reshape(5, -1) @ M.T, F.conv1d(x, w).reshape(5, -1))
assert torch.equal(M, unrolled_matrix(w, conv1d_index(c_out, c_in, k, n)))
print("hand-built Toeplitz == conv1d == library:", True)

# %% [markdown]
# The same matrix coloured by *which kernel weight* each entry holds ($K[o, c, j]$, one colour per
# weight; white = structural zero). Each colour runs along a diagonal inside its block: that
# repetition is the weight sharing that the scalings below must respect.

# %% tags=["nbval-ignore-output"]
import matplotlib as mpl
import numpy as np

idx = conv1d_index(c_out, c_in, k, n).astype(float)  # 0 = zero entry, else 1 + flat kernel index
idx[idx == 0] = np.nan
fig, ax = plt.subplots(figsize=(9, 3.4))
im = ax.imshow(idx - 1, cmap=mpl.colormaps["tab20"].resampled(c_out * c_in * k), aspect="equal")
for c in range(1, c_in):
    ax.axvline(c * n - 0.5, color="k", lw=1)
ax.axhline(n_out - 0.5, color="k", lw=1)
ax.set(xlabel="input (channel c, position)", ylabel="output (channel o, position p)",
       title=f"unrolled conv1d: {c_out} x {c_in} blocks, kernel size {k}")
ax.grid(False)
ax.set_xticks(range(0, c_in * n, n), [f"c={c}" for c in range(c_in)])
ax.set_yticks(range(0, c_out * n_out, n_out), [f"o={o}" for o in range(c_out)])
cb = fig.colorbar(im, ax=ax, ticks=range(0, c_out * c_in * k, k))
cb.set_label("kernel entry (o, c, j), flattened")
plt.show()

# %% [markdown]
# ## 2. Linearize: which diagonal scalings keep the weight sharing?
#
# First look: the tiny conv1d's matrix ($k = 2$, length 4) with numbers, and the same matrix with its
# rows and columns rescaled. A **ramp** (row $p$ and column $p$ both by $e^{\beta p}$) keeps every
# diagonal constant, so it is again a convolution; random factors per position do not.

# %% tags=["nbval-ignore-output"]
idx_tiny = conv1d_index(1, 1, 2, 4)
M_tiny = unrolled_matrix(torch.tensor([[[1.0, 0.5]]], dtype=torch.float64), idx_tiny)  # kernel (1, 0.5)
beta = 0.4
ramp = torch.exp(beta * torch.arange(4, dtype=torch.float64))
rand = torch.exp(torch.randn(7, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64) * 0.5)
variants = {"convolution $M$": M_tiny,
            r"ramp: $e^{\beta p}\, M_{ps}\, e^{-\beta s}$": ramp[:3, None] * M_tiny / ramp[None, :],
            "random factor per position": rand[4:, None] * M_tiny / rand[None, :4]}
vmax = 1.5 * max(float(m.max()) for m in variants.values())  # light colours: the numbers stay readable
fig, axes = plt.subplots(1, 3, figsize=(11, 2.6))
for ax, (name, m) in zip(axes, variants.items()):
    ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=vmax)
    for (r_, c_), v in np.ndenumerate(m.numpy()):
        if v != 0:
            ax.text(c_, r_, f"{v:.2f}", ha="center", va="center", fontsize=9)
    conv = is_convolution(m, idx_tiny)
    ax.set(title=f"{name}\n{'still a convolution' if conv else 'not a convolution'}", xticks=[], yticks=[])
    ax.grid(False)
plt.tight_layout()
plt.show()

# %%
print("ramp keeps a convolution:", is_convolution(ramp[:3, None] * M_tiny / ramp[None, :], idx_tiny),
      "| random factors:", is_convolution(rand[4:, None] * M_tiny / rand[None, :4], idx_tiny))

# %% [markdown]
# Which scalings work in general? Scale the unrolled neurons, $M \mapsto D_\text{out} M D_\text{in}^{-1}$ with
# $D = \operatorname{diag}(e^{u})$: entry $(r, s)$ is multiplied by $e^{u_r - u_s}$. The result is a
# convolution iff entries that share a kernel weight get the same factor,
#
# $$u_r - u_s = u_{r'} - u_{s'} \quad\text{whenever}\quad M_{rs} = M_{r's'} = K[o, c, j].$$
#
# These are linear equations $A u = 0$; the dimension of the group is the nullity of $A$. For the
# tiny conv1d above (unknowns: first $v_0..v_3$ for the inputs, then $u_0..u_2$ for the outputs):

# %%
A = scaling_constraints([conv1d_index(1, 1, 2, 4)], free_input=True, free_output=True)
A = sp.Matrix(A.toarray().astype(int))
show_math("A = ", A)
null = A.nullspace()
print("dim G_scale(conv) =", len(null), " dense layer of the same size: 3 + 4 =", 7)
_ = show_math(r"\ker A = \operatorname{span}\Big\{", *[v.T for v in null], r"\Big\}")

# %% [markdown]
# Three directions: a common scale of the outputs, one of the inputs, and a **ramp**
# $u_p = v_p = \beta p$ (a geometric scaling along positions, compensated by $K[j] \mapsto K[j] e^{-\beta j}$).
# A conv2d layer has two ramps, one along the rows and one along the columns of the image. In a
# network the input and output neurons are fixed, which removes the ramps; what remains is one
# factor per hidden **channel**, against one per hidden **neuron** (channel $\times$ position) for the MLP.

# %%
d_layer = layer_scaling_dims(1, 1, 2, 4, exact=True)
d_net = network_scaling_dims("conv1d 1-1-1/2 k2 relu 1x4", exact=True)
print("single layer:", (d_layer.dim_cnn, d_layer.dim_mlp),
      " network 1-1-1 on length 4:", (d_net.dim_cnn, d_net.dim_mlp))

# %% [markdown]
# **Quick check.** A single conv1d layer with 3 input and 2 output channels (kernel 3, length 6), both
# sides free: how many scaling directions keep it a convolution, and how many has the dense layer of
# the same unrolled size?
#
# <details><summary>Answer</summary>
#
# $2 + 3 + 1 = 6$: one common factor per output channel, one per input channel, and the ramp. The
# dense layer has one factor per unrolled neuron, $2 \cdot 4 + 3 \cdot 6 = 26$ (4 output positions,
# 6 input positions). The single-layer table in section 3 lists this layer (`conv1d 3->2 n=6 k=3`).
# </details>

# %% [markdown]
# ## 3. Gauge dimensions for several sizes
#
# Whole networks (hidden layers of the conv net vs the MLP of the same unrolled sizes; inputs and
# outputs fixed), counted by the nullity of the constraint system (numpy), and the single-layer
# count. The last row is the **degenerate** case: the kernel covers the whole input, each hidden layer
# has one position, so channels = neurons and the two dimensions are equal. Bars on a log axis:

# %% tags=["nbval-ignore-output"]
sizes = [
    "conv1d 1-1-1/2 k2 relu 1x4",
    "conv1d 1-4-4/3 k3 relu 1x16",
    "conv1d 1-4-4/3 k3 s2 p1 relu 1x16",
    "conv1d 1-8-8/10 k3 relu 1x40",
    "conv2d 1-4-4/3 k3 relu 1x8x8",
    "conv2d 1-8-8/10 k3 p1 relu 1x8x8",
    "conv1d 2-4/3 k4 relu 2x4",
]
if FULL:
    sizes += ["conv2d 3-16-16/10 k3 relu 3x16x16", "conv1d 1-16-16-16/10 k5 relu 1x64"]
table = pd.DataFrame([vars(network_scaling_dims(s)) for s in sizes])
fig, ax = plt.subplots(figsize=(9, 0.6 + 0.5 * len(table)))
rows_y = np.arange(len(table))
for shift, col, label in [(-0.2, "dim_cnn", "CNN: one factor per hidden channel"),
                          (0.2, "dim_mlp", "unrolled MLP: one per hidden neuron")]:
    ax.barh(rows_y + shift, table[col], 0.4, label=label)
    for y_, v in zip(rows_y, table[col]):
        ax.text(v, y_ + shift, f" {v}", va="center", fontsize=8)
ax.set_yticks(rows_y, [f"{s_} (degenerate)" if d else s_ for s_, d in zip(table["size"], table.degenerate)])
ax.invert_yaxis()
ax.set(xscale="log", xlim=(1, 3 * table.dim_mlp.max()), xlabel="dim G_scale (log scale)",
       title="scaling gauge of whole networks (inputs, outputs fixed)")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %%
assert ((table.dim_cnn < table.dim_mlp) | table.degenerate).all()
assert (table[table.degenerate].dim_cnn == table[table.degenerate].dim_mlp).all()
print("CNN < MLP for every non-degenerate network, equal in the degenerate one:", True)

# %% [markdown]
# The counts agree with the closed forms: $\dim G_\text{scale}(\text{CNN}) = \sum_l c_l$ and
# $\dim G_\text{scale}(\text{MLP}) = \sum_l c_l \cdot \#\text{positions}_l$ over hidden layers. Single
# layers ($D_\text{out} M D_\text{in}^{-1}$, both sides free):

# %%
layers = pd.DataFrame([vars(layer_scaling_dims(*a)) for a in
                       [(1, 1, 2, 4), (2, 3, 3, 6), (4, 4, 3, 16), (2, 2, (2, 2), (3, 3)), (3, 2, (3, 3), (6, 6))]])
assert (layers.dim_cnn < layers.dim_mlp).all()
# channels + one ramp per spatial axis: 1 for conv1d, 2 for conv2d
ramps = [(1, 1, 1), (2, 3, 1), (4, 4, 1), (2, 2, 2), (3, 2, 2)]  # (c_out, c_in, spatial axes)
assert layers.dim_cnn.tolist() == [co + ci + axes for co, ci, axes in ramps]
layers

# %% [markdown]
# Each CNN count is $c_\text{out} + c_\text{in}$ plus one ramp per spatial axis: $1 + 1 + 1 = 3$,
# $2 + 3 + 1 = 6$, $4 + 4 + 1 = 9$ for the conv1d layers, and **two** ramps (rows and columns) for the
# conv2d layers: $2 + 2 + 2 = 6$ and $2 + 3 + 2 = 7$.

# %% [markdown]
# ## 4. Numerical confirmation on real torch convolutions
#
# A random **per-channel** scaling of a conv layer's unrolled matrix is again a convolution (with kernel
# $K[o, c] d_o / d_c$); a random **per-position** scaling is not. And at the network level the library's
# `GaugeElement` (one factor per channel) preserves the function of a ReLU CNN. (The last layer in the
# table has a single output position, the degenerate case: there per position = per channel.)
#
# First the picture. Left: how far each scaled matrix is from a convolution (the largest spread among
# entries that must share one kernel weight, relative to the largest entry). Right: how much the
# CNN's output moves under a gauge element $g$, and under the same factors on the hidden channels
# *without* the compensation in the next layer (not a symmetry). Exact zeros are drawn at $10^{-18}$.

# %% tags=["nbval-ignore-output"]
gen = torch.Generator().manual_seed(SEED)
layer_args = [(3, 2, 3, 8, 1, 0), (4, 1, 3, 10, 2, 1), (2, 2, 8, 8, 1, 0)]  # (c_out, c_in, k, n, stride, pad)


def sharing_violation(M, index):
    """Largest spread among the entries of M that share one kernel weight, relative to max |M|."""
    ids, vals = torch.as_tensor(index).reshape(-1), M.reshape(-1)
    hi = torch.full((int(ids.max()) + 1,), -torch.inf, dtype=M.dtype).scatter_reduce(0, ids, vals, "amax")
    lo = torch.full((int(ids.max()) + 1,), torch.inf, dtype=M.dtype).scatter_reduce(0, ids, vals, "amin")
    return float((hi - lo)[1:].max() / M.abs().max())


violation = {"per channel": [], "per position": []}
for co, ci, kk, nn, s, p in layer_args:
    index = conv1d_index(co, ci, kk, nn, s, p)
    M = unrolled_matrix(torch.randn(co, ci, kk, generator=gen, dtype=torch.float64), index)
    d_out, d_in = (torch.randn(c, generator=gen, dtype=torch.float64).exp() for c in (co, ci))
    M_ch = d_out.repeat_interleave(index.shape[0] // co)[:, None] * M / d_in.repeat_interleave(nn)[None, :]
    p_out, p_in = (torch.randn(m, generator=gen, dtype=torch.float64).exp() for m in M.shape)
    violation["per channel"].append(sharing_violation(M_ch, index))
    violation["per position"].append(sharing_violation(p_out[:, None] * M / p_in[None, :], index))

spec = NetworkSpec.from_text("conv1d 1-4-4/3 k3 relu 1x16")
ws = WeightSpace.randn(spec, 4, generator=gen, dtype=torch.float64)
g = GaugeElement.sample(spec, 4, generator=gen, dtype=torch.float64)
xs = torch.randn(32, 1, 16, generator=gen, dtype=torch.float64)
y, y_g = batched_forward(ws, xs), batched_forward(g.apply(ws), xs)
s0 = g.scales[0]  # the factors of the first hidden layer, applied to it alone: no compensation
ws_bad = ws.replace_params(weights=[ws.weights[0] * s0[:, :, None, None], *ws.weights[1:]],
                           biases=[ws.biases[0] * s0, *ws.biases[1:]])
change = {"gauge g (a symmetry)": (y_g - y).abs().amax((1, 2)) / y.abs().amax((1, 2)),
          "same factors, uncompensated": (batched_forward(ws_bad, xs) - y).abs().amax((1, 2)) / y.abs().amax((1, 2))}

fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for ax, data, xlab, title in [
        (axes[0], violation, [f"{ci}->{co}, n={nn}, s={s}" for co, ci, _, nn, s, _ in layer_args],
         "distance from a convolution"),
        (axes[1], change, [f"network {b}" for b in range(4)], "relative change of the CNN's output")]:
    xx = np.arange(len(xlab))
    for shift, (name, vals) in zip((-0.2, 0.2), data.items()):
        ax.bar(xx + shift, [max(float(v), 1e-18) for v in vals], 0.4, label=name)
        for x_, v in zip(xx, vals):
            if float(v) == 0:
                ax.text(x_ + shift, 1e-17, "exactly 0", rotation=90, ha="center", va="bottom", fontsize=8)
    ax.axhline(torch.finfo(torch.float64).eps, color="gray", ls=":", lw=1, label="float64 round-off")
    ax.set_xticks(xx, xlab)
    ax.set(yscale="log", ylim=(1e-18, 1e2), title=title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)  # below the data
axes[0].set_xlabel("conv1d layer (last: one output position, degenerate)")
plt.tight_layout()
plt.show()

# %%
assert max(violation["per channel"]) < 1e-12 and min(violation["per position"][:2]) > 1e-3
assert float(change["gauge g (a symmetry)"].max()) < 1e-12 and float(change["same factors, uncompensated"].min()) > 1e-3
print("per channel: a convolution, per position: not (except the degenerate layer);"
      " the gauge keeps the function, uncompensated factors do not:", True)

# %%
checks = pd.DataFrame([{"layer": f"conv1d {ci}->{co} n={nn} k={kk} s={s} p={p}",
                        **check_conv_scaling_numerically(co, ci, kk, nn, s, p, generator=gen)}
                       for co, ci, kk, nn, s, p in layer_args])
assert checks.per_channel_is_conv.all() and (checks.unrolled_matches_conv < 1e-12).all()
checks[["layer", "per_channel_is_conv", "per_position_is_conv"]]

# %%
print("per-channel gauge preserves the CNN:", bool(torch.allclose(y, y_g, rtol=1e-10, atol=1e-12)))
M_pos = unrolled_matrix(ws.weights[0][0], conv1d_index(4, 1, 3, 16))
M_pos = torch.rand(M_pos.shape[0], 1, generator=gen, dtype=torch.float64).add(0.5) * M_pos
print("per-position scaling keeps a convolution:", is_convolution(M_pos, conv1d_index(4, 1, 3, 16)))

# %% [markdown]
# ## 5. How the gap grows
#
# Two hidden conv layers with $c$ channels on a signal of length $n$ (kernel 3): the CNN's gauge grows
# like $2c$, the unrolled MLP's like $2c\,n$.

# %%
rows = []
for c in [1, 2, 4, 8, 16]:
    for n in [8, 16, 32] + ([64] if FULL else []):
        d = network_scaling_dims(f"conv1d 1-{c}-{c}/3 k3 relu 1x{n}")
        rows += [{"channels": c, "length": n, "model": "CNN", "dim": d.dim_cnn},
                 {"channels": c, "length": n, "model": "MLP (unrolled)", "dim": d.dim_mlp}]
dims = pd.DataFrame(rows)
assert (dims[dims.model == "CNN"].dim.values < dims[dims.model != "CNN"].dim.values).all()
print(len(dims) // 2, "sizes, CNN strictly smaller in all:", True)

# %% tags=["nbval-ignore-output"]
ax = sns.lineplot(dims, x="channels", y="dim", hue="length", style="model", markers=True, palette="viridis")
ax.set(xscale="log", yscale="log", ylabel="dim G_scale", title="scaling gauge: one factor per channel vs per neuron")
sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1))
plt.show()

# %%
cnn_by_length = dims[dims.model == "CNN"].pivot(index="channels", columns="length", values="dim")
print("CNN dimension independent of the signal length:", bool((cnn_by_length.nunique(axis=1) == 1).all()))

# %% [markdown]
# Where are the CNN lines? There are three of them (one per length) and they lie exactly on top of
# each other, as the cell above checks: the CNN's gauge dimension is $2c$ whatever the signal
# length, because a channel is one vertex at every position. The MLP lines fan out with the length,
# $2c \cdot n$ up to the positions lost at the borders. That independence is the whole point: the
# gap grows with the input size.
#
# **Quick check.** A conv2d network with 8 channels per hidden layer on $28 \times 28$ images (kernel
# 3, no padding): roughly how many scaling directions does the unrolled MLP have per hidden layer,
# and the CNN?
#
# <details><summary>Answer</summary>
#
# The CNN: 8 per hidden layer (one per channel). The MLP: $8 \times 26 \times 26 = 5408$ for the first
# hidden layer (8 channels at $26 \times 26$ positions), $8 \times 24 \times 24 = 4608$ for the second.
# </details>

# %% [markdown]
# ## Summary
#
# * A conv layer is a (doubly-block) Toeplitz matrix; linearizing the diagonal scalings turns "stays a
#   convolution" into linear equations whose nullity is the gauge dimension.
# * In a network, $\dim G_\text{scale}(\text{CNN}) = \sum$ hidden channels, strictly smaller than the
#   unrolled MLP's $\sum$ hidden channels $\times$ positions, except in the degenerate case of one
#   position per hidden layer. A single free layer also has "ramp" directions, one per spatial axis (one
#   for conv1d, two for conv2d), which fixed inputs remove.
# * Real torch convs confirm it: per-channel scalings keep the conv structure, per-position ones break it.
#
# ## Exercises
#
# **1.** Add stride and padding to the growth experiment: write the closed form
# `formula(c, n, stride, padding) -> (dim_cnn, dim_mlp)` for `conv1d 1-c-c/3 k3 s{stride} p{padding}
# relu 1x{n}` (two hidden conv layers of $c$ channels, kernel 3). How do the MLP counts change, and the
# CNN ones?
#
# *Hint:* a conv layer maps $n$ positions to $\lfloor (n + 2p - k)/s \rfloor + 1$; the second hidden
# layer reads the first one's output.
#
# <details><summary>Solution</summary>
#
# ```python
# def formula(c, n, stride, padding):
#     n1 = (n + 2 * padding - 3) // stride + 1
#     n2 = (n1 + 2 * padding - 3) // stride + 1
#     return 2 * c, c * (n1 + n2)
# ```
# The CNN count does not move (one factor per channel); the MLP count follows the number of positions.
# </details>

# %%
from scalegmn_lite.course.gauge import (
    EXERCISE_02_2_NETWORK,
    EXERCISE_02_4_NETWORK,
    check_bias_dims,
    check_circular_dims,
    check_conv_dims_formula,
    check_flatten_dims,
    circular_conv1d_index,  # noqa: F401 (for exercise 3)
)
from scalegmn_lite.symbolic.conv import dense_index, network_index, scaling_dimension  # noqa: F401 (exercises 3, 4)


def formula(c, n, stride, padding):
    raise NotImplementedError


check_conv_dims_formula(formula)

# %% [markdown]
# **2.** Include the bias constraints (`network_scaling_dims(..., bias=True)`). Why do they not change
# the CNN count in a network? Predict `(dim_cnn, dim_mlp)` with biases for `EXERCISE_02_2_NETWORK`
# (`conv1d 1-4-4/3 k3 s2 p1 relu 1x16`) before you run `network_scaling_dims`.
#
# *Hint:* a bias adds one constraint per group of neurons that share it. Which neurons share a bias
# in a conv layer, and are they not tied already? Exercise 1's formula gives the counts without biases.
#
# <details><summary>Solution</summary>
#
# A bias is shared by all positions of its channel, so it asks for one factor per channel: exactly
# what the weight sharing already forces. (For the MLP, each neuron's bias scales with that neuron.)
# Both counts stay what they are without biases: 16 positions become 8, then 4 (stride 2, padding 1),
# so
#
# ```python
# bias_dims = (2 * 4, 4 * (8 + 4))  # (8, 48)
# ```
# </details>

# %%
print(EXERCISE_02_2_NETWORK)
bias_dims = None  # your (dim_cnn, dim_mlp)
check_bias_dims(bias_dims)

# %% [markdown]
# **3.** Circular padding makes the matrix circulant. Which scalings survive for a single layer then
# (is the ramp still allowed)? Write `circular_dim(c_out, c_in, k, n)`, the dimension of the scaling
# group of one circular conv1d layer (stride 1, kernel $k \ge 2$, length $n$, both sides free). You
# can count it with `scaling_dimension([circular_conv1d_index(c_out, c_in, k, n)], free_input=True,
# free_output=True)`; the check wants the closed form.
#
# *Hint:* the ramp $u_p = \beta p$ has to be consistent after wrapping around from position $n-1$ to 0.
# Without the wrap-around a single layer has $c_\text{out} + c_\text{in} + 1$ directions (quick check
# above).
#
# <details><summary>Solution</summary>
#
# The wrap-around entries tie position $n-1$ to position 0, so $\beta n = 0$: the ramp is gone and only
# the common scales remain, one per output and one per input channel (for one channel each: the two
# common scales of inputs and outputs).
#
# ```python
# def circular_dim(c_out, c_in, k, n):
#     return c_out + c_in
# ```
# </details>

# %%
def circular_dim(c_out, c_in, k, n):
    raise NotImplementedError


check_circular_dims(circular_dim)

# %% [markdown]
# **4.** Flattening the last conv layer into a dense layer instead of global average pooling: extend
# `network_index` and count again. Which neurons are tied now? Give `(dim_cnn, dim_mlp)` for
# `EXERCISE_02_4_NETWORK` (`conv1d 1-4-4/3 k3 relu 1x16`) with its dense layer reading the flattened
# $4 \times 12$ features.
#
# *Hint:* `network_index(spec)` returns the index matrices of the layers (and `dense=True` those of the
# unrolled MLP). After flattening, the dense layer has its own weight for every (channel, position):
# replace its matrix with `dense_index` of the same shape, shifted past the other layers' ids, and
# count with `scaling_dimension(indices)`.
#
# <details><summary>Solution</summary>
#
# ```python
# spec = NetworkSpec.from_text(EXERCISE_02_4_NETWORK)
# flatten_dims = []
# for dense in (False, True):
#     idx, _, _ = network_index(spec, dense=dense)
#     flat = dense_index(*idx[-1].shape) + int(max(m.max() for m in idx))
#     flatten_dims.append(scaling_dimension(idx[:-1] + [flat]))
# flatten_dims = tuple(flatten_dims)  # (8, 104), as with pooling
# ```
# Nothing changes. The positions of a hidden channel are tied by the kernels, not by the pooling:
# the first conv layer reads fixed inputs, so its weight sharing gives all positions of a channel one
# factor, and the next conv layer passes that on. The flattened dense layer ties nothing (one weight
# per input) and frees nothing, so each hidden channel still has one factor: $4 + 4 = 8$, against
# $4 \cdot 14 + 4 \cdot 12 = 104$ unrolled neurons.
# </details>

# %%
print(EXERCISE_02_4_NETWORK)
flatten_dims = None  # your (dim_cnn, dim_mlp)
check_flatten_dims(flatten_dims)
