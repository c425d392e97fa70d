# %% [markdown]
# # 07 · Fully-amortized optimization
#
# Instead of running SGD on every network, train *one* operator $h_\phi$ that maps a network's
# weights to better weights in a single forward pass:
# $$\theta' = h_\phi(G, \theta) = \theta + s_\ell\, \Delta_\ell(\theta), \qquad
# \mathcal L(\phi) = \mathbb E_{\theta \sim \text{zoo}}\Big[\lambda \lVert h_\phi(\theta) \rVert_1 +
# \tfrac{1}{|B|}\textstyle\sum_{(x, y) \in B} \mathrm{CE}\big(f_{h_\phi(\theta)}(x), y\big)\Big].$$
# The gradient flows through the batched functional forward of the *proposed* networks. If $h$ is
# a ScaleGMN with an equivariant head, then for every gauge element $g$ of the input's architecture
# $$h(g\cdot\theta) = g \cdot h(\theta),$$
# so two weight vectors that compute the same function get proposals that compute the same function.
# The setting is that of *Symmetry-Aware Fully-Amortized Optimization with Scale Equivariant Graph
# Metanetworks* (arXiv 2510.08300, 2025; below "the fully-amortized optimization paper").
#
# We start with a trained operator shipped with the course, which improves 64 networks it never saw
# in one forward pass. Then we build a minimal operator from the layers of notebook 05 and train it for 60 steps, then
# run the library's study: on held-out networks only, the one-shot operators against plain SGD
# started from the same $\theta$ on the same objective for 25, 50, 100 and 150 epochs, and
# ScaleGMN-B against the symmetry-broken GMN. Then the question that decides whether any of this
# is useful: does an operator improve networks it has *never seen*, and if not, why? The
# diagnostics section measures held-out against in-sample gain as training goes on and as the
# number of training networks grows.
#
# **Sources.** The setting and the claims measured at the end: the fully-amortized optimization
# paper (arXiv 2510.08300). ScaleGMN:
# Kalogeropoulos et al., NeurIPS 2024. GMN: Lim et al., ICLR 2024. MNIST-1D: Greydanus, *Scaling
# down Deep Learning*, 2020.
#
# **You will learn** what "fully amortized" means, how an equivariant operator is assembled and
# trained through the functional forward of the networks it proposes, and how to read a study whose
# outcome at small scale need not be the published one.

# %%
from scalegmn_lite.common.config import notebook_setup

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

# %%
import copy

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from torch import nn

from scalegmn_lite import GaugeElement, NetworkSpec, WeightSpace
from scalegmn_lite.common.stats import bootstrap_mean
from scalegmn_lite.symbolic.conv import network_scaling_dims
from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, network_metrics
from scalegmn_lite.tasks.amortized.protocol import COLUMNS, StudyConfig
from scalegmn_lite.tasks.amortized.study import compute_claims, run_study
from scalegmn_lite.tasks.losses import amortized_objective
from scalegmn_lite.zoo import load_or_build
from scalegmn_lite.zoo.data import load_dataset

torch.set_num_threads(1)  # small kernels: one thread is as fast and robust to a shared machine
pd.set_option("display.width", 160)

# %% [markdown]
# ## A trained operator, in seconds
# Before any equation, the method working. The course ships the ScaleGMN-B operator of its committed
# reference run (trained for 6000 steps on 1429 tanh CNNs of an MNIST-1D zoo) together with 64
# *held-out* CNNs of that run: networks the operator never saw. One forward pass proposes new weights
# for all 64 at once; we measure their test accuracy before and after, and `check_shipped` checks that
# the accuracies after agree with those the reference run recorded for the same networks.

# %%
from scalegmn_lite.course import operator_figures as figs
from scalegmn_lite.course.shipped import check_shipped, load_shipped

shipped = load_shipped("operator-cnn1d-tanh")
shipped_check = check_shipped(shipped)  # one forward pass on the 64 networks, then their test accuracy on MNIST-1D
assert shipped_check["agrees"], shipped_check
print(type(shipped.model).__name__, "trained on", shipped.info["trained_on"])
print("held-out networks:", shipped.heldout.batch_size, "|", shipped.heldout.spec.to_text())
print("accuracies after the update agree with the reference run's:", shipped_check["agrees"])

# %% tags=["nbval-ignore-output"]
mnist1d = load_dataset("mnist1d")
with torch.no_grad():
    after_shipped = network_metrics(shipped.model(shipped.heldout), mnist1d.x_test, mnist1d.y_test)["acc"]
figs.plot_before_after(shipped.target, after_shipped, what="held-out tanh CNNs")
plt.tight_layout()
plt.show()
print(f"mean test accuracy {100 * float(shipped.target.mean()):.1f}% -> {100 * float(after_shipped.mean()):.1f}% "
      f"(the reference run recorded {100 * shipped_check['reference_mean']:.1f}%)")
shipped_gain = (after_shipped - shipped.target).numpy()
assert (shipped_gain > 0).mean() > 0.5  # most dots above the diagonal
assert np.corrcoef(shipped.target.numpy(), shipped_gain)[0, 1] < 0  # the worst networks gain most

# %% [markdown]
# Most dots sit above the diagonal: in one forward pass, without any gradient step on these networks,
# the operator lifts the accuracy of networks it has never seen, and the worst networks gain most. The
# rest of this notebook explains how such an operator is built and trained, trains a small one on
# 2 CPU cores in a few minutes, and asks when it works and when it does not.
#
# ## How the operator is trained
# The loop first: the zoo's networks are *inputs*; the only weights that learn are the operator's,
# through the loss of the networks it proposes.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.course.diagrams import draw_operator_loop

draw_operator_loop()
plt.show()

# %% [markdown]
# ### The objective, from scratch and from the library
# The loss box of the diagram. For one network, $\lambda \lVert\theta\rVert_1$ sums the absolute values
# of every weight and bias; the cross-entropy is the usual one of the `torch.nn` module.
# `amortized_objective` computes the same for a whole batch of networks at once.

# %%
spec = NetworkSpec.from_text("mlp 40-16-10 tanh")
ws = WeightSpace.randn(spec, 3, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64)
x, y = torch.randn(32, 40, dtype=torch.float64), torch.randint(0, 10, (32,))
lam = 1e-3
by_hand = torch.stack([lam * sum(p.abs().sum() for p in ws.to_module(b).parameters())
                       + nn.functional.cross_entropy(ws.to_module(b)(x), y) for b in range(3)])
library = amortized_objective(ws, x, y, lam)
print("same objective:", torch.allclose(by_hand, library, atol=1e-12))

# %% [markdown]
# **Quick check.** The cross-entropy term only depends on the function a network computes, so it is
# gauge invariant. Is the L1 term $\lambda \lVert\theta\rVert_1$ invariant too, for the tanh networks of
# this notebook? For ReLU networks?
#
# <details><summary>Answer</summary>
#
# For tanh, yes: the gauge group permutes hidden neurons and flips their signs, and both leave every
# $|\theta_i|$ unchanged. For ReLU, no: a positive scaling multiplies a neuron's incoming weights and
# bias by $q$ and its outgoing weights by $1/q$, which changes $\lVert\theta\rVert_1$ (it grows without
# bound as $q \to \infty$ or $q \to 0$). The objective then prefers some members of an orbit over
# others, although they compute the same function.
# </details>

# %% [markdown]
# ## The operator is gauge equivariant
# Transform the input network by a random gauge element $g$ (hidden-neuron permutations and, for
# tanh, sign flips; for ReLU, positive scalings): the proposal of $g\cdot\theta$ is $g$ applied to
# the proposal of $\theta$, and computes the same function. Below, the update
# $\Delta(\theta) = h(\theta) - \theta$ of the output layer of a `mlp 40-16-10 tanh` (input columns =
# the 16 hidden neurons): for $g$ the two maps agree entry by entry; for a scaling tanh does not admit
# ($q = 2$, `sample_non_symmetry(..., "wrong_scaling")`) they do not.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.weightspace.gauge import sample_non_symmetry

torch.manual_seed(SEED)
op = AmortizedOperator(hidden_dim=8, num_layers=2, bidirectional=True).double()
with torch.no_grad():
    op.gmn.update_scales.fill_(0.5)  # an untrained operator with a visible update
g = GaugeElement.sample(spec, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
panels = figs.update_panels(op, ws, g, lambda w: sample_non_symmetry(w, "wrong_scaling"), layer=1)
figs.draw_update_equivariance(panels, symmetry="gauge element g", non_symmetry="q = 2 (not a symmetry)")
plt.show()
assert panels.gauge_gap < 1e-9 and panels.non_symmetry_gap > 1e-3

# %%
with torch.no_grad():
    out, out_g = op(ws), op(g.apply(ws))
print("h(g.theta) == g.h(theta):", g.apply(out).allclose(out_g, rtol=1e-9, atol=1e-10))
print("same proposed function:", torch.allclose(out(x), out_g(x), atol=1e-9))

# %% [markdown]
# ## Back to notebook 02: how much gauge freedom is there to exploit?
# Notebook 02 counted the dimension of the positive-scaling gauge group: one scale per hidden
# *channel* for a CNN, one per hidden *neuron* for an MLP. The published explanation of why
# equivariance should help more on MLPs than on CNNs is this gap,
# $G_{\text{scale}}(W^{\text{CNN}}) \subsetneq G_{\text{scale}}(W^{\text{MLP}})$. Which networks
# does the study below actually compare? The architectures are read from the study's configuration
# (the zoo recipe of each setting, with the setting's activation).

# %%
study_cfg = StudyConfig.from_env()
arch_of = {}  # setting -> (zoo recipe, spec of its networks: the recipe's architecture with the setting's activation)
for s in study_cfg.settings:
    recipe = s.recipe(study_cfg.full, study_cfg.reference)
    arch_of[s.name] = (recipe.name, NetworkSpec.from_text(recipe.arch[0]).with_activation(s.activation))
found = []
for zoo_name, arch in dict.fromkeys(arch_of.values()):  # each architecture once, in the order of the settings
    d = network_scaling_dims(arch)  # dim_cnn: one per hidden channel (an MLP: per neuron); dim_mlp: unrolled
    found.append((arch, d))
    gauge = "/".join(sorted({sym.value for sym in arch.symmetries}))
    print(f"{zoo_name:17s} {arch.to_text():34s} hidden gauge: {gauge:5s} factors q: {d.dim_cnn:3d}"
          f"   (its unrolled dense twin: {d.dim_mlp})")
cnn_d = next(d for a, d in found if a.family != "mlp")
mlp_d = next(d for a, d in found if a.family == "mlp")
print("the CNN has fewer factors than its unrolled twin:", cnn_d.strictly_smaller)
print("the study's MLP has as many factors as its CNN:", mlp_d.dim_cnn == cnn_d.dim_cnn)
print("settings with a continuous scaling gauge (positive_scale):",
      sorted(n for n, (_, a) in arch_of.items() if any(v.value == "positive_scale" for v in a.symmetries)))

# %% [markdown]
# What follows from the printed lines, before any training:
#
# * The study's settings use **tanh** networks. The hidden gauge of tanh is the *finite* group of
#   sign flips $q \in \{\pm 1\}$ (together with permutations), not a continuous scaling group: the
#   counts above say how many independent sign flips (or, for ReLU, scale factors) there are, but no
#   setting of this study has a continuous scaling gauge to exploit.
# * The gap between a CNN and its *unrolled* dense twin is large, but the study does not compare a
#   CNN with its unrolled twin: it compares the CNN zoo with an MLP zoo whose hidden layer has as
#   many neurons as the CNN has hidden channels. The two architectures have the same number of
#   gauge directions, so a difference between the MLP and the CNN rows measured below cannot be
#   attributed to the dimension of the gauge group.
# * The question is measured separately, on ReLU zoos whose gauge dimensions differ (among them a
#   CNN and its unrolled twin): the reference run's `gscale` experiment, plotted near the end of
#   this notebook.
#
# ## A minimal operator from the layers of notebook 05
# Before the library's study, the whole idea in one cell. The operator reads a network's graph
# (notebook 04), runs one round of messages (notebook 05: `ScaleEq` on $[x_t, (\Gamma_e e_{st}) \odot
# (\Gamma_v x_s)]$, summed per receiver, then a vertex update), and outputs a change per bias
# ($\mathrm{ScaleEq}$ of the vertex) and per weight ($(\Gamma e_{st}) \odot \varphi(\text{views of }
# x_s, x_t, e_{st})$). Input and output vertices are fixed ($q = 1$), so they may carry learned
# constant features. The proposal is $\theta' = \theta + s_\ell\,\Delta_\ell(\theta)$, one learned step
# $s_\ell$ per layer.

# %%
from scalegmn_lite.nn.graphs import graph_to_weights, to_graph
from scalegmn_lite.nn.layers import ScaleEq, ScaleInv
from scalegmn_lite.nn.layers.invariant import Kinds
from scalegmn_lite.nn.scalegmn import apply_update, edge_view_kinds, vertex_view_kinds

INPUT, OUTPUT = 0, 2  # vertex types of to_graph


class MinimalOperator(nn.Module):
    def __init__(self, d=16, max_layers=8):
        super().__init__()
        self.embed_v, self.embed_e = nn.Linear(1, d, bias=False), nn.Linear(1, d, bias=False)
        self.io = nn.Parameter(0.5 * torch.randn(2, d))  # constant features of input / output vertices
        self.gamma_e, self.gamma_v = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.message, self.update = ScaleEq(2 * d, d), ScaleEq(2 * d, d)
        self.view = ScaleInv(d)
        self.gamma_out = nn.Linear(d, 1, bias=False)
        self.phi_out = nn.Sequential(nn.Linear(3 * d, d), nn.SiLU(), nn.Linear(d, 1))
        self.bias_out = ScaleEq(d, 1)
        self.steps = nn.Parameter(torch.full((max_layers,), 0.05))  # one step size per layer

    def step(self, x, e, src, dst, vk):
        """One round: a message along every edge, summed per receiver, then the vertex update."""
        z = torch.cat([x[dst], self.gamma_e(e) * self.gamma_v(x[src])], dim=-1)  # scales like q_t
        M = torch.zeros_like(x).index_add(0, dst, self.message(z, Kinds(vk[dst])))
        return x + self.update(torch.cat([x, M], dim=-1), Kinds(vk))

    def forward(self, ws):
        g = to_graph(ws)
        vk = vertex_view_kinds(g, "auto")  # each hidden vertex gets the view of its activation's group
        ek = edge_view_kinds(vk, g.edge_index)
        src, dst = g.edge_index
        x = self.embed_v(g.x)
        x = x + (g.vtype == INPUT)[:, None] * self.io[0] + (g.vtype == OUTPUT)[:, None] * self.io[1]
        e = self.embed_e(g.edge_attr)
        x = self.step(x, e, src, dst, vk)
        views = torch.cat([self.view(x[src], Kinds(vk[src])), self.view(x[dst], Kinds(vk[dst])),
                           self.view(e, Kinds(ek))], dim=-1)
        d_weights = self.gamma_out(e) * self.phi_out(views)  # scales like q_t / q_s
        d_biases = self.bias_out(x, Kinds(vk))  # scales like q_t
        delta = graph_to_weights(g, d_biases, d_weights)[0]
        return apply_update(ws, delta, self.steps)


# %% [markdown]
# Train it on the tanh MLPs of the study's MLP zoo (`mlp-plateau-mnist1d`, the same zoo and the same
# *final* networks the study's MLP rows start from) for 60 steps: each step draws 16 networks and 256
# training examples and minimises the cross-entropy of the *proposed* networks (here $\lambda = 0$).
# The last quarter of the networks is held out. The plot shows, beside the loss of the proposals, the
# loss of the *unmodified* networks on the same batches: the operator helps exactly where the first
# curve is below the second.

# %% tags=["nbval-ignore-output"]
mlp_setting = next(s for s in study_cfg.settings if not s.is_cnn)
mini_zoo = load_or_build(mlp_setting.recipe(study_cfg.full, study_cfg.reference), device="cpu",
                         progress=False).where(activation=mlp_setting.activation)
if "diverged" in mini_zoo.metadata:  # as the study does: drop members whose training diverged
    mini_zoo = mini_zoo.filter(lambda df: ~df["diverged"].astype(bool))
zoo_ws = mini_zoo.weights()  # final networks, as in the study
n_train = zoo_ws.batch_size * 3 // 4
train_ws, test_ws = zoo_ws[:n_train], zoo_ws[n_train:]
torch.manual_seed(SEED)
mini = MinimalOperator()
opt = torch.optim.Adam(mini.parameters(), lr=3e-3)
gen = torch.Generator().manual_seed(SEED)
losses, unmodified = [], []
for step in range(60):
    nets = train_ws[torch.randint(0, n_train, (16,), generator=gen)]
    idx = torch.randint(0, mnist1d.x_train.shape[0], (256,), generator=gen)
    loss = amortized_objective(mini(nets), mnist1d.x_train[idx], mnist1d.y_train[idx], 0.0).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(float(loss))
    with torch.no_grad():  # the same networks and examples, not modified
        unmodified.append(float(amortized_objective(nets, mnist1d.x_train[idx], mnist1d.y_train[idx], 0.0).mean()))
with torch.no_grad():
    acc_before = network_metrics(test_ws, mnist1d.x_test, mnist1d.y_test)["acc"]
    acc_after = network_metrics(mini(test_ws), mnist1d.x_test, mnist1d.y_test)["acc"]
gain = bootstrap_mean((acc_after - acc_before).numpy())  # one seed: the interval covers the held-out networks
verdict = ("a gain" if gain.lo > 0 else "a loss" if gain.hi < 0
           else "no change distinguishable from zero at this budget")
print(f"held-out networks ({test_ws.batch_size}): accuracy {100 * acc_before.mean():.1f}% -> "
      f"{100 * acc_after.mean():.1f}%, gain {figs.points(gain['mean'])} points "
      f"[95% interval {figs.points(gain.lo)} to {figs.points(gain.hi)}]: {verdict}")
print(f"last 10 steps: cross-entropy of the proposals {np.mean(losses[-10:]):.3f}, "
      f"of the unmodified networks {np.mean(unmodified[-10:]):.3f}")
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses, alpha=0.3, color="tab:blue")
ax.plot(pd.Series(losses).rolling(10, min_periods=1).mean(), color="tab:blue", label="proposals (10-step mean)")
ax.plot(pd.Series(unmodified).rolling(10, min_periods=1).mean(), color="k", ls="--",
        label="unmodified networks (10-step mean)")
ax.set(xlabel="step", ylabel="cross-entropy on the step's batch", title="training the minimal operator")
ax.legend()
plt.show()

# %%
from scalegmn_lite.nn.checks import check_equivariance

# the library's checker (exercise 1 below uses the same test): a float64 copy of the trained operator,
# random sign flips and permutations of tanh MLPs of a width it was not trained on
mini64 = copy.deepcopy(mini).double().eval()
eq = check_equivariance(lambda items: [mini64(w) for w in items],
                        WeightSpace.randn(NetworkSpec.from_text("mlp 6-5-5-3 tanh"), 3,
                                          generator=torch.Generator().manual_seed(0), dtype=torch.float64),
                        n_samples=3, generator=torch.Generator().manual_seed(1))
assert eq.ok()
print("trained minimal operator equivariant (float64, random sign flips and permutations):", eq.ok())
print("training loss decreased (last 10 vs first 10 steps):", np.mean(losses[-10:]) < np.mean(losses[:10]))

# %% [markdown]
# That is the whole mechanism. The library's `AmortizedOperator` is the same idea with more of
# everything: several bidirectional layers, per-layer normalisation of the inputs, a stable
# training loop (warm-up, clipping, rollback on loss spikes) and caching.
#
# **Quick check.** The minimal operator only ever sees *one* network at a time through its graph.
# Why can the same trained operator be applied to an MLP of a different width?
#
# <details><summary>Answer</summary>
#
# Every parameter of the operator acts per vertex or per edge (shared across all of them), and the
# messages are sums over neighbours, so nothing depends on the number of vertices: a wider network
# is just a bigger graph. Whether the proposals are *good* there is another matter (the transfer
# rows of the study measure it).
# </details>

# %% [markdown]
# ## The study
# `run_study` runs the whole protocol (`scalegmn_lite.tasks.amortized.study`). For every setting:
#
# * the starting points are the **final** networks of a zoo, restricted to the setting's activation
#   and split into train/val/test *by network*. Two kinds of zoo, two questions:
#   * the **headroom** setting (`cnn1d-tanh`, zoo `cnn1d-hp-mnist1d`): networks trained with widely
#     varying training-set fractions, learning rates, optimizers, init scales and weight decays, so
#     many of them have room to improve. This is where we ask whether the operator *transfers* to
#     networks it never saw, and where the diagnostics below are measured;
#   * the **Table 1** rows (`*-plateau-*`, zoos `cnn1d-plateau-mnist1d`, `mlp-plateau-mnist1d`): every
#     network trained on the whole training set to a cosine-decayed end, so it has stopped improving,
#     like the published zoo's final networks (SGD-150 from them gains +6.7 points on the CNNs,
#     published +6.6; notebook 03 measures it). The published claims are judged here;
# * the operators of the setting are trained with `train_operator` (warm-up, clipping, rollback on
#   spikes), one per seed in `study_cfg.seeds`. **ScaleGMN-B** is the bidirectional ScaleGMN,
#   equivariant to the tanh gauge (permutations and sign flips). **GMN-B** (`gmn`) is the
#   symmetry-broken baseline: permutation equivariant only, inputs normalised, its hidden size chosen
#   so that it has as many parameters as ScaleGMN-B. **GMN-B+aug** (`gmn-aug`) is the same network
#   trained with a random gauge element applied to every training network it sees (the fair
#   symmetry-broken baseline: it is shown the symmetry instead of having it built in);
# * every `eval_every` steps the operator is scored on *validation* networks (their mean accuracy
#   gain on training images) and the best step's weights are kept: early stopping, with test networks
#   and test images playing no part in the choice;
# * plain SGD starts from the same held-out networks on the same objective; for settings with
#   $\lambda = 0$ the study also runs Adam, its learning rate tuned on the validation networks.
#
# Operators and SGD runs are cached by a hash of their configuration, so `reproduce` and this
# notebook share them (stored timings are those of the run that computed them). The next cell
# prints the quick-mode configuration; full mode (`SCALEGMN_LITE_FULL=1`) adds digits, ReLU, $\lambda$
# everywhere, larger operators trained for more steps and two more operator kinds: **ScaleGMN-F**
# (`scalegmn-f`, forward-only message passing) and the ablation **no-canon** (the same update form
# without the scale-invariant, canonicalized views of the weights).

# %%
for s in study_cfg.settings:
    print(f"{s.name:22s} {s.role:8s} zoo {s.zoo}, {s.activation}, lambda={s.lam:g}, operators {list(s.kinds)}, "
          f"{s.steps or study_cfg.steps} steps")
print("operator seeds:", list(study_cfg.seeds), "| hidden size:", study_cfg.hidden_dim, "| layers:",
      study_cfg.num_layers, "| scored on validation networks every", study_cfg.eval_every, "steps",
      "| starting points:", study_cfg.start, "| SGD epochs:", list(study_cfg.sgd_epochs))

# %% tags=["nbval-ignore-output"]
res = run_study(study_cfg, device="cpu", progress=False)
print(f"study finished in {res.seconds:.0f} s")

# %%
table = res.table
assert list(table.columns) == COLUMNS
assert np.isfinite(table[["mean_acc", "max_acc", "test_loss"]].to_numpy()).all()
print(sorted(set(table.method)))
print({k: v["test"] for k, v in res.counts.items()}, "held-out starting points per setting")
print("seeds per operator row:", sorted(set(table[table.method.isin(["scalegmn-b", "gmn", "gmn-aug"])].seeds)))

# %% [markdown]
# Every interval below comes from `res.per_network`: for every setting and method, the metric of
# each held-out network, one row per operator seed (`[S, B]`; one row for the initial networks and
# SGD, which do not depend on the operator seed). `bootstrap_mean` resamples seeds and networks
# independently, so an operator's 95% interval covers both the variation between seeds and between
# held-out networks.
#
# ### Accuracy against SGD epochs
# Each panel: SGD from the same held-out networks (0 epochs = the initial networks, black), and each
# one-shot operator as a square near 0 SGD epochs (it costs one forward pass; the squares are spread
# sideways only to be readable), all with their 95% intervals.

# %% tags=["nbval-ignore-output"]
intervals = res.intervals()  # setting -> method -> metric -> bootstrap_mean of the [S, B] table
names = list(res.curves)
OPERATORS = ["scalegmn-b", "scalegmn-f", "gmn", "gmn-aug", "no-canon"]
fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.3), sharey=True)
for ax, name in zip(np.atleast_1d(axes), names):
    iv = intervals[name]
    ep = sorted(res.curves[name])
    sgd = [iv["initial" if e == 0 else f"sgd-{e}"]["acc"] for e in ep]
    ax.errorbar(ep, [v["mean"] for v in sgd], yerr=[[v["mean"] - v.lo for v in sgd], [v.hi - v["mean"] for v in sgd]],
                fmt="o-", color="k", capsize=2, label="SGD")
    for j, (m, col) in enumerate(zip([m for m in OPERATORS if m in iv], sns.color_palette())):
        a = iv[m]["acc"]
        ax.errorbar(2 + 4 * j, a["mean"], yerr=[[a["mean"] - a.lo], [a.hi - a["mean"]]], fmt="s", color=col,
                    capsize=3, label=f"{m} ({a['seeds']} seeds)")
    ax.set(title=name, xlabel="SGD epochs")
    ax.legend(fontsize=7)
np.atleast_1d(axes)[0].set_ylabel("mean test accuracy")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Gain over the initial networks
# When a gain is a point or two, the operator markers above sit on top of the initial point. The
# same numbers as *gains*: each method's accuracy minus the initial networks', paired on the same
# held-out networks, in points, with 95% intervals (dashed: no gain).

# %% tags=["nbval-ignore-output"]
def gain_panel(ax, per_net, title):
    """Accuracy gain over the initial networks (points) of every method in ``per_net``."""
    ms = [m for m in OPERATORS + ["sgd-25", "sgd-150", "adam-150"] if m in per_net]
    ivs = [bootstrap_mean(np.asarray(per_net[m]["acc"]) - np.asarray(per_net["initial"]["acc"])) for m in ms]
    mean = np.array([100 * v["mean"] for v in ivs])
    err = np.array([[100 * (v["mean"] - v["ci"][0]) for v in ivs], [100 * (v["ci"][1] - v["mean"]) for v in ivs]])
    colors = [sns.color_palette()[OPERATORS.index(m)] if m in OPERATORS else "k" for m in ms]
    for i in range(len(ms)):
        ax.errorbar(mean[i], i, xerr=err[:, i:i + 1], fmt="o", color=colors[i], capsize=3)
    ax.axvline(0, ls="--", color="grey", lw=0.8)
    ax.set_yticks(range(len(ms)), ms)
    ax.set(title=title, xlabel="accuracy gain over initial (points)")


fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 2.8))
for ax, name in zip(np.atleast_1d(axes), names):
    gain_panel(ax, res.per_network[name], name)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Accuracy against time
# The same comparison on the axis that motivates amortization: seconds per network, one network at a
# time (log scale). SGD is a curve (one measured epoch of `torch.nn` + `torch.optim` training per
# network, times the number of epochs), each operator a single point (one forward pass); the dashed
# line is the initial networks. Where the study tuned Adam on the validation networks, its curve is
# drawn too.

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, len(names), figsize=(3.8 * len(names), 3.3), sharey=True)
for ax, name in zip(np.atleast_1d(axes), names):
    t = res.timing[name]
    for opt_name, label, style in (("sgd", "SGD", "o-"), ("adam", "Adam, tuned", "^--")):
        if t.get(opt_name):
            pts = sorted(t[opt_name], key=lambda r: r["epochs"])
            ax.plot([r["seconds_single"] for r in pts], [r["mean_acc"] for r in pts], style, color="k",
                    alpha=1.0 if opt_name == "sgd" else 0.5,
                    label=f"{label} ({pts[0]['epochs']}-{pts[-1]['epochs']} epochs)")
    for (m, r), col in zip(t["operators"].items(), sns.color_palette()):
        ax.plot(r["seconds_single"], r["mean_acc"], "s", color=col, markersize=8, label=f"{m} (one shot)")
    ax.axhline(intervals[name]["initial"]["acc"]["mean"], color="grey", ls=":", label="initial")
    ax.set(xscale="log", title=name, xlabel="seconds per network (one at a time)")
    ax.legend(fontsize=7)
np.atleast_1d(axes)[0].set_ylabel("mean test accuracy")
plt.tight_layout()
plt.show()
sgd_last = f"sgd-{max(study_cfg.sgd_epochs)}"
for name in names:
    t = res.timing[name]
    op_s = t["operators"]["scalegmn-b"]["seconds_single"]
    sgd_s = next(r["seconds_single"] for r in t["sgd"] if r["epochs"] == max(study_cfg.sgd_epochs))
    print(f"{name}: ScaleGMN-B {op_s * 1e3:.1f} ms per network, {sgd_last.upper()} {sgd_s:.2f} s per network "
          f"(ratio {sgd_s / op_s:.0f}x)")

# %% [markdown]
# ### What the numbers say
# Computed from `res.per_network`: for every setting, ScaleGMN-B against the initial networks,
# against SGD-150 and, where they were trained, against GMN-B, GMN-B+aug, the ablation and ScaleGMN-F (paired
# differences of accuracy on the same held-out networks, 95% intervals over seeds and networks).

# %% tags=["nbval-ignore-output"]
def paired(name, a, b):
    per = res.per_network[name]
    iv = bootstrap_mean(per[a]["acc"] - per[b]["acc"])  # [S, B] - [S or 1, B]
    verdict = "better" if iv.lo > 0 else "worse" if iv.hi < 0 else "not distinguishable"
    return f"{a} - {b}: {iv['mean']:+.3f} [{iv.lo:+.3f}, {iv.hi:+.3f}] -> {a} {verdict}"


for name in names:
    print(f"{name}:")
    for other in ("initial", sgd_last, "gmn", "gmn-aug", "no-canon", "scalegmn-f"):
        if other in res.per_network[name]:
            print("   ", paired(name, "scalegmn-b", other))

# %% [markdown]
# **How to read this, and what not to conclude.** Read the verdicts printed above, setting by
# setting: "better" or "worse" means the 95% interval of the paired difference excludes zero, "not
# distinguishable" means it does not. This is a small run: the operator steps, seeds and held-out
# counts printed above, on 2 CPU cores. Whatever the verdicts say, they are what this budget
# measured. Where GMN (no scaling symmetry) comes out ahead of ScaleGMN-B, or SGD-150 ahead of the
# one-shot proposals, that does not show that equivariance hurts nor that the published picture is
# wrong: an operator trained this briefly (compare first and final training losses in the training
# figure below) is not the published one.
#
# **What full mode is, and what it is not.** `SCALEGMN_LITE_FULL=1` (or `scalegmn-lite reproduce
# --full`) runs the *reference protocol*, bigger, on the course's own zoos: the headroom setting with its
# diagnostics, memorization controls and transfer claims, every Table 1 row on the plateau zoos, the
# kept step chosen on validation networks, and a larger operator trained longer
# (`StudyConfig.full_size`: hidden size 64, 4 layers, more steps, 5 seeds, up to 256 held-out networks),
# meant for a GPU. It does **not** use the published zoo (the Small CNN Zoo of
# CIFAR-10 CNNs), so it measures a larger version of this setting, not the published one. The library
# can read the published files: `scalegmn_lite.zoo.loaders.load_small_cnn_zoo(folder, activation="tanh",
# split="train")` returns a `Zoo` whose `.weights()` are ready for an operator. But `run_study` and
# `reproduce` build their zoos from recipes and cannot take a loaded zoo today; with the files present, a
# user would call `train_operator(AmortizedOperator(...), zoo.weights(), x, y, OperatorTrainConfig(...))`
# directly, with grayscale CIFAR-10 images `x, y` of their own (the course bundles only MNIST-1D and
# digits), and score held-out networks with `network_metrics` as the first section of this notebook did.
#
# Mean test accuracy per setting (means over seeds and held-out networks), rounded:

# %% tags=["nbval-ignore-output"]
for line in figs.mean_accuracy_lines(table):
    print(line)

# %% [markdown]
# ### Weight magnitudes
# With $\lambda > 0$ the objective rewards small weights; compare the distribution of $|\theta|$
# of the initial networks, the one-shot proposals (first seed) and SGD-150 on the same objective.

# %% tags=["nbval-ignore-output"]
l1_name = next(s.name for s in study_cfg.settings if s.lam > 0)
w = res.weights[l1_name]
frames = [pd.DataFrame({"|theta|": ws_.flatten().abs().flatten().cpu().numpy(), "method": m})
          for m, ws_ in w.items()]
ax = sns.histplot(pd.concat(frames), x="|theta|", hue="method", bins=60, log_scale=(True, False),
                  element="step", fill=False, stat="density", common_norm=False)
ax.set_title(f"{l1_name}: weight magnitudes")
plt.show()
red = intervals[l1_name]
for m in ("scalegmn-b", sgd_last):
    r, lo = red[m]["l1_red"], red[m]["loss"]
    print(f"{m}: L1-norm reduction {r['mean']:.1f}% [{r.lo:.1f}, {r.hi:.1f}], test loss {lo['mean']:.3f} "
          f"[{lo.lo:.3f}, {lo.hi:.3f}]")
before = w["initial"].flatten().abs()
for m in ("scalegmn-b", sgd_last):
    after = w[m].flatten().abs()
    ratio = (after.median(1).values / before.median(1).values).median()
    print(f"{m}: median |theta| {ratio:.2f}x the initial one; weights below 0.001: "
          f"{float((after < 1e-3).double().mean()):.1%} (initial {float((before < 1e-3).double().mean()):.1%})")

# %% [markdown]
# **Reading the histogram.** The two ways to a smaller L1 norm look different. An operator trained
# for a few hundred steps moves the *whole* distribution: every weight shrinks by a similar factor
# (the median ratio printed above), which buys L1 reduction quickly but shrinks the weights that
# matter along with those that do not, so the network's logits get smaller and its test loss goes
# up. SGD with the L1 term instead drives many individual weights towards zero (a heavier left tail,
# the share of weights below 0.001 printed above) while keeping the useful ones large, so it buys each
# unit of norm reduction at a smaller cost in loss. That is the mechanism behind the published
# pattern "a larger L1 reduction, but at a higher loss" for a one-shot operator; whether the operator's
# reduction is even the larger one in this run is read from the first two printed lines.

# %% [markdown]
# ## Training stability, transfer and the ablation
# Every operator's run as one arrow, from its first to its final training loss (means of the first
# and last 10 accepted steps), one row per setting and kind, one arrow per seed. A red cross marks a
# run with rollbacks (a NaN or a loss spike, followed by a restore of the last good state and a smaller
# learning rate). The full log, with the kept step, the validation accuracy and the parameter count
# of every run, is the DataFrame `res.training`.

# %% tags=["nbval-ignore-output"]
figs.plot_training_runs(res.training)
plt.tight_layout()
plt.show()
print(figs.training_summary(res.training))

# %%
steps_of = {s.name: s.steps or study_cfg.steps for s in study_cfg.settings}
assert (res.training.steps == res.training.setting.map(steps_of)).all()  # no run ended early or diverged
print("operators trained:", len(res.training), "=", len(study_cfg.seeds), "seeds x",
      sum(len(s.kinds) for s in study_cfg.settings), "(setting, kind) pairs")

# %% [markdown]
# **Transfer.** The MLP operator is applied, in one batch, to held-out networks of its own
# architecture and to networks of other widths and depths it never saw (trained one epoch from
# scratch, so they have room to improve); the tanh CNN operator is applied to the MLP zoo.
# **Ablation.** `no-canon` keeps the $\Gamma x \odot \varphi(\cdot)$ form but drops the
# scale-invariant (canonicalized) views; it is trained in full mode only (in quick mode the paired
# comparisons above have no `no-canon` line).

# %% tags=["nbval-ignore-output"]
for line in figs.transfer_lines(res.transfer):
    print(line)

# %%
assert all(np.isfinite(r["one_shot_acc"]) for r in res.transfer)
print(sorted({r["transfer"] for r in res.transfer}))

# %% [markdown]
# ## Does the operator transfer to networks it never saw?
# A one-shot optimizer is only useful on networks outside its training set. The headroom setting
# records what is needed to tell *memorising* from *learning to optimize*
# (`res.diagnostics`, `scalegmn_lite.tasks.amortized.diagnostics`):
#
# * **against steps**: every `eval_every` steps, the mean accuracy gain on training networks
#   (*in-sample*), validation networks (used to choose the kept step) and test networks (*held out*;
#   recorded, never used to choose anything), averaged over the seeds;
# * **against the number of training networks**: ScaleGMN-B trained on the first 16, 128, ... of its
#   training networks, all for the same number of steps, without early stopping. The 16-network run
#   is the positive control: if even its *in-sample* gain is small, the operator cannot express the
#   fix at all, and no amount of data will help;
# * **the size of the update** $\lVert\theta' - \theta\rVert / \lVert\theta\rVert$ per network;
# * **accuracy gain against loss gain**, with a calibration-only control: the loss each network would
#   reach by dividing its logits by the one temperature that fits its training images best. An
#   operator whose loss gain is no larger than that is recalibrating, not moving decision boundaries;
# * **which networks gain**: the held-out gain against the zoo's hyper-parameters of each network.

# %% tags=["nbval-ignore-output"]
head_name = next(s.name for s in study_cfg.settings if s.role == "headroom")
diag = res.diagnostics[head_name]


def plot_steps(ax, curves, title):
    """In-sample, validation and held-out gain (points) against operator steps, one colour per kind."""
    for kind, c in curves.items():
        if not c:
            continue
        col = sns.color_palette()[OPERATORS.index(kind)]  # the same colour per kind in every figure
        for key, ls in (("train", ":"), ("val", "--"), ("test", "-")):
            if key in c:
                ax.plot(c["step"], 100 * np.asarray(c[key]), ls, color=col,
                        label=f"{kind} {dict(train='in-sample', val='validation', test='held out')[key]}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="operator steps", ylabel="accuracy gain (points)", title=title)
    ax.legend(fontsize=6)


def plot_sizes(ax, points, title):
    """In-sample and held-out gain (points) against the number of training networks."""
    n = [p_["networks"] for p_ in points]
    ax.plot(n, [100 * p_["in_sample_gain"] for p_ in points], "o:", color="tab:blue", label="in-sample")
    ax.plot(n, [100 * p_["held_out_gain"] for p_ in points], "s-", color="tab:red", label="held out")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xscale="log", xlabel="training networks", ylabel="accuracy gain (points)",
           title=f"{title} ({points[0]['steps']} steps each)")
    ax.set_xticks(n, [str(v) for v in n])  # label the measured sizes only
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=7)


fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
plot_steps(axes[0], diag["steps_curve"], f"{head_name}: gain during training")
plot_sizes(axes[1], diag["size_curve"], f"{head_name}: gain against training networks")
plt.tight_layout()
plt.show()
ctl = diag["overfit_control"]
print(f"positive control, {ctl['networks']} training networks: in-sample gain {100 * ctl['in_sample_gain']:+.1f} "
      f"points, held out {100 * ctl['held_out_gain']:+.1f}")
for kind, d in diag["in_sample"].items():
    print(f"{kind:10s} kept weights: held-out gain {100 * d['held_out_mean']:+.2f} points, in-sample (as many "
          f"training networks, test images) {100 * d['mean']:+.2f}")

# %% tags=["nbval-ignore-output"]
def plot_calibration(ax, cal, title):
    """Per held-out network: accuracy gain against loss gain, and the temperature-only loss gain."""
    ax.scatter(cal["loss_gain"], 100 * np.asarray(cal["acc_gain"]), s=10, label="operator")
    ax.scatter(cal["temperature_loss_gain"], np.zeros(len(cal["acc_gain"])), s=10, marker="|", color="k",
               label="best temperature only (no accuracy change)")
    ax.axvline(0, color="grey", lw=0.8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="test-loss gain (before - after)", ylabel="accuracy gain (points)", title=title)
    ax.legend(fontsize=6)


fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
plot_calibration(axes[0], diag["calibration"]["scalegmn-b"], f"{head_name}: ScaleGMN-B, first seed")
wg = diag.get("who_gains")
if wg:
    pn = wg["per_network"]
    for opt_, mk in (("sgd", "o"), ("adam", "^")):
        sel = [i for i, o in enumerate(pn["optimizer"]) if o == opt_]
        axes[1].scatter(np.array(pn["train_fraction"])[sel] * (1 + 0.05 * (opt_ == "adam")),
                        100 * np.array(pn["gain"])[sel], marker=mk, s=14, label=f"trained with {opt_}")
    axes[1].set(xscale="log", xlabel="training fraction of the network's own training",
                ylabel="held-out gain (points)", title="which networks gain (ScaleGMN-B, mean over seeds)")
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()
for kind, u in diag["update_size"].items():
    c = diag["calibration"][kind]
    print(f"{kind:10s} ||delta theta|| / ||theta||: median {u['median']:.2f} | mean loss gain "
          f"{c['mean_loss_gain']:+.3f} vs best temperature alone {c['mean_temperature_loss_gain']:+.3f}")
if wg:
    print("Spearman correlation of the held-out gain with:",
          ", ".join(f"{k} {v['rho']:+.2f}" for k, v in wg["spearman"].items() if v))
    print("mean gain by the network's optimizer:", ", ".join(f"{k} {figs.points(v['gain'], 2)} points "
                                                              f"({v['networks']} networks)"
                                                              for k, v in wg["mean_gain_by_optimizer"].items()))

# %% [markdown]
# **How to read the diagnostics of this quick run.** If the dotted (in-sample) curves climb while
# the solid (held-out) ones stay near zero, the operator is memorising its training networks. If
# both stay flat, it has not learned anything yet: at this budget (a few hundred steps of a small
# operator) that is the usual outcome, and the steps curve says whether it was still rising when
# training stopped. The size curve answers the other question: the positive control on 16 networks
# should show a clearly positive in-sample gain (the operator *can* fit a fix), and the held-out
# gain should grow with the number of training networks if data, not capacity, is what is missing.
# The committed reference run below repeats all of this with 6000 steps of a wider, deeper operator
# on a zoo four times larger, and is where the transfer claims are judged.

# %% [markdown]
# ## The claims of the published work, measured here
# `compute_claims(res)` turns each claim of the fully-amortized optimization paper (its Table 1 and
# its transfer claims) into a test on this run's per-network results: a paired difference with its
# 95% interval over seeds and held-out networks (the speed claim is a measured ratio, without an
# interval). The figure shows each interval beside the claimed threshold (black tick): the claim
# *holds* when the whole interval lies on the claimed side (green), is *refuted* when it lies on the
# other side (red), and is *inconclusive* when it contains the threshold (grey). Each line below says
# the same in words, computed from the interval.

# %% tags=["nbval-ignore-output"]
claims = compute_claims(res, sgd_final=max(study_cfg.sgd_epochs))
figs.plot_claims(claims, title="the paper's claims at this budget (quick run)")
plt.tight_layout()
plt.show()
for c in claims:
    print(figs.claim_line(c))
statuses = [c.status for c in claims]
print(f"{statuses.count('holds')} of {len(claims)} claims reproduced at this budget")

# %% [markdown]
# **Reading the verdicts.** Each line above is one claim. The four of the paper's Table 1 are judged
# on the plateau rows: ScaleGMN-B minus SGD-150 accuracy on CNNs, ScaleGMN-B minus GMN-B accuracy on
# MLPs, the L1-norm reduction and test-loss differences with $\lambda > 0$, and the speed claim (measured
# seconds per network, one network at a time, against the published 1000x). The three transfer claims
# are judged on the headroom CNNs: the held-out gain above zero, the held-out gain at the published
# scale (at least 10 points), and the held-out gain at least half the in-sample gain. Each shows the
# measured mean, its 95% interval and the status that interval implies; the count on the last line says
# how many claims this run reproduced.
#
# At quick scale a claim whose status is not `holds` is **not reproduced at this budget**, a *miss*
# of this run, not evidence against the paper: the zoos, operators and training budget here are far
# smaller than the published ones, and `refuted` only means that *this* budget measured the opposite
# with confidence. A claim that holds here holds for these small zoos and operators. Full mode
# measures the same claims on larger MNIST-1D and digits zoos with a larger operator, not on the
# published zoo (see "What full mode is" above).

# %% [markdown]
# ## With more compute: the committed reference run
# `scalegmn-lite reproduce --reference` runs the same protocol with more of everything (about 90
# minutes on 2 CPU cores): the 4096-network zoos (about 1400 training networks per tanh setting), 64
# held-out networks per setting, three operator seeds, and a wider, deeper operator (hidden size 32, three
# message-passing layers) trained for 6000 steps on the headroom setting and 1500 on the Table 1 rows,
# the kept step chosen on validation networks every 250 steps. That operator was picked by a small search
# on *validation* networks (`tools/operator_search.py`, committed as
# `results/reference/search/operator_search.json`), plotted first. Its results are committed in
# `results/reference/` and read here; nothing below is recomputed.

# %%
import json
from pathlib import Path

from scalegmn_lite.course.reference import describe_run, load_reference, reference_dir
from scalegmn_lite.tasks.amortized.study import regime_table

ref = load_reference("amortized")
search_path = (reference_dir() or Path("results/reference")) / "search" / "operator_search.json"
search = json.loads(search_path.read_text()) if search_path.is_file() else None
if ref is not None:
    rc = ref["config"]
    sizes = sorted({(v["train"], v["test"]) for v in ref["counts"].values()})
    print(f"operator: hidden size {rc['hidden_dim']}, {rc['num_layers']} layers, {rc['steps']} steps (headroom), "
          f"{len(rc['seeds'])} seeds | {len(ref['counts'])} settings, with "
          + " or ".join(f"{a} training and {b} held-out networks" for a, b in sizes))


def _bar(iv):
    return [[iv["mean"] - iv["ci"][0]], [iv["ci"][1] - iv["mean"]]]


# %% tags=["nbval-ignore-output"]
if search is not None:
    fig, ax = plt.subplots(figsize=(6, 3.3))
    for c in search["candidates"]:
        steps_ = [e["step"] for e in c["val_curve"]]
        ax.plot(steps_, [100 * e["val"] for e in c["val_curve"]],
                label=f"hidden {c['hidden_dim']}, {c['num_layers']} layers, lr {c['lr']:g}, {c['schedule']}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="operator steps", ylabel="validation gain (points)",
           title=f"the search: ScaleGMN-B on {search['candidates'][0]['setting']}, validation networks only")
    ax.legend(fontsize=7)
    plt.tight_layout()
    plt.show()
    pk = search["pick"]
    print(f"picked: hidden size {pk['hidden_dim']}, {pk['num_layers']} layers, lr {pk['lr']:g}, {pk['schedule']} "
          f"schedule (best validation gain {figs.points(pk['best_val_gain'])} points at step {pk['best_step']})")

# %% [markdown]
# The picked operator's validation curve is still rising at the end of the search's 3000 steps, which is
# why the reference run trains it for 6000. Now the reference run itself: accuracy against SGD epochs
# (left panels, with this notebook's quick run pale), then the gains over the initial networks.

# %% tags=["nbval-ignore-output"]
if ref is not None:
    ref_names = list(ref["curves"])
    fig, axes = plt.subplots(1, len(ref_names), figsize=(3.3 * len(ref_names), 3.3), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), ref_names):
        iv = ref["intervals"][name]
        ep = sorted(int(e) for e in ref["curves"][name])
        sgd = [iv["initial" if e == 0 else f"sgd-{e}"]["acc"] for e in ep]
        ax.errorbar(ep, [v["mean"] for v in sgd], yerr=np.array([_bar(v) for v in sgd])[:, :, 0].T, fmt="o-",
                    color="k", capsize=2, label="SGD (reference)")
        for j, (m, col) in enumerate(zip([m for m in OPERATORS if m in iv], sns.color_palette())):
            a = iv[m]["acc"]
            ax.errorbar(2 + 4 * j, a["mean"], yerr=_bar(a), fmt="s", color=col, capsize=3,
                        label=f"{m} ({a['seeds']} seeds)")
        if name in res.per_network:  # this notebook's quick run, pale
            q = intervals[name]
            ax.plot(ep, [q["initial" if e == 0 else f"sgd-{e}"]["acc"]["mean"] for e in ep], "o:", color="k",
                    alpha=0.35, label="SGD (quick, this run)")
            ax.plot(2, q["scalegmn-b"]["acc"]["mean"], "s", color=sns.color_palette()[0], alpha=0.35,
                    markersize=9, label="scalegmn-b (quick)")
        ax.set(title=f"{name} (reference)", xlabel="SGD epochs")
        ax.legend(fontsize=6)
    np.atleast_1d(axes)[0].set_ylabel("mean test accuracy")
    plt.tight_layout()
    plt.show()
    fig, axes = plt.subplots(1, len(ref_names), figsize=(3.4 * len(ref_names), 2.8))
    for ax, name in zip(np.atleast_1d(axes), ref_names):
        gain_panel(ax, ref["per_network"][name], f"{name} (reference)")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# **Regime parity.** Every method's gain over the starting networks of each setting, beside the
# published gain of the same method in the paper's Table 1 (CNN rows against its Small CNN Zoo row, MLP
# rows against its MLP row; GMN-B+aug has no published row). The `zoo` experiment measured SGD-150's
# gain from the final networks of each zoo (64 networks per activation); the plateau zoos are built so
# that it matches the published +6.6 (CNN) and +2.2 (MLP) points, the headroom zoo so that there is room.
# The numbers behind the figure: `regime_table(ref["intervals"], ref["counts"])`.

# %% tags=["nbval-ignore-output"]
if ref is not None:
    regime = regime_table(ref["intervals"], ref["counts"])
    figs.plot_regime(regime)
    plt.tight_layout()
    plt.show()
    starts = regime.drop_duplicates("setting")
    print("starting accuracy of the held-out networks:",
          ", ".join(f"{r.setting} {100 * r.start:.1f}%" for r in starts.itertuples()),
          "| published:", ", ".join(sorted({f"{100 * v:.1f}%" for v in starts["published start"]})))
    zoo_ref = load_reference("zoo", quiet=True)
    if zoo_ref is not None:
        sg = zoo_ref["sgd150_from_final"]
        print("SGD-150 from the zoos' final networks (zoo experiment, tanh):",
              "; ".join(f"{z} {100 * v['tanh']['start']:.1f}% -> {100 * v['tanh']['end']:.1f}% "
                        f"({figs.points(v['tanh']['gain'])} points)" for z, v in sg.items()),
              "| published gain:", ", ".join(f"{k} {figs.points(v)} points"
                                             for k, v in zoo_ref["published_sgd150_gain"].items()))

# %% [markdown]
# **The diagnostics at reference size** (headroom setting): the same four panels as for the quick run.

# %% tags=["nbval-ignore-output"]
if ref is not None:
    rd = ref["diagnostics"][next(iter(ref["diagnostics"]))]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    plot_steps(axes[0], rd["steps_curve"], f"{rd['setting']} (reference): gain during training")
    plot_sizes(axes[1], rd["size_curve"], "gain against training networks")
    plot_calibration(axes[2], rd["calibration"]["scalegmn-b"], "ScaleGMN-B, first seed")
    plt.tight_layout()
    plt.show()
    for kind, d in rd["in_sample"].items():
        u, c = rd["update_size"][kind], rd["calibration"][kind]
        print(f"{kind:10s} held-out gain {figs.points(d['held_out_mean'])} points, "
              f"in-sample {figs.points(d['mean'])} | "
              f"update size (median) {u['median']:.2f} | loss gain {c['mean_loss_gain']:+.3f} vs best temperature "
              f"alone {c['mean_temperature_loss_gain']:+.3f}")
    ctl = rd["overfit_control"]
    print(f"positive control ({ctl['networks']} networks, {ctl['steps']} steps): in-sample "
          f"{100 * ctl['in_sample_gain']:+.1f} points, held out {100 * ctl['held_out_gain']:+.1f}")
    print("size curve:", [(p_["networks"], round(100 * p_["in_sample_gain"], 1), round(100 * p_["held_out_gain"], 1))
                          for p_ in rd["size_curve"]], "(networks, in-sample, held out; points)")
    if "who_gains" in rd:
        print("who gains (Spearman with the held-out gain):",
              ", ".join(f"{k} {v['rho']:+.2f}" for k, v in rd["who_gains"]["spearman"].items() if v),
              "| by optimizer:", ", ".join(f"{k} {figs.points(v['gain'])} points ({v['networks']} networks)"
                                           for k, v in rd["who_gains"]["mean_gain_by_optimizer"].items()))

# %% [markdown]
# **The paper's claims at reference size**, as for the quick run: each interval beside its claimed
# threshold, then in words.

# %% tags=["nbval-ignore-output"]
if ref is not None:
    figs.plot_claims(ref["claims"], title="the paper's claims at reference size")
    plt.tight_layout()
    plt.show()
    for c in ref["claims"]:
        print(figs.claim_line(c))

# %% [markdown]
# **What the reference run says, in plain words.** The next cell writes the paragraph from the committed
# file (so no figure in it is typed by hand) and asserts what the paragraph concludes. Every interval is
# over the 3 seeds and the 64 held-out networks, paired where two methods are compared.

# %%
from IPython.display import Markdown, display

from scalegmn_lite.course.reference import claim_interval


def pts(iv, digits=1):
    """An interval of accuracy differences in points: mean [lo, hi] (of an interval or a stored claim)."""
    iv = claim_interval(iv) if "status" in iv else iv
    return f"{100 * iv['mean']:+.{digits}f} [{100 * iv['ci'][0]:+.{digits}f}, {100 * iv['ci'][1]:+.{digits}f}]"


if ref is not None:
    st = {c["id"]: c for c in ref["claims"]}
    iv = ref["intervals"]["cnn1d-tanh"]
    pn = ref["per_network"]["cnn1d-tanh"]
    d_ = ref["diagnostics"]["cnn1d-tanh"]
    g, ins = st["operator-gain-cnn"], d_["in_sample"]["scalegmn-b"]
    curve = d_["steps_curve"]["scalegmn-b"]
    per_k = 1000 // (curve["step"][-1] - curve["step"][-2])  # evaluations per 1000 steps
    rise = 100 * (curve["test"][-1] - curve["test"][-1 - per_k])
    sizes = d_["size_curve"]
    mem = (ref.get("memorization") or {}).get("cnn1d-tanh", {})
    memo = st.get("operator-beats-memorization")
    upd, cal, sp = d_["update_size"]["scalegmn-b"], d_["calibration"]["scalegmn-b"], d_["who_gains"]["spearman"]
    p_iv = ref["intervals"]["cnn1d-plateau-tanh"]
    sgd_plateau = p_iv["sgd-150"]["acc"]["mean"] - p_iv["initial"]["acc"]["mean"]
    text = [
        f"* **The operator transfers to networks it never saw** (`operator-gain-cnn`: **{g['status']}**). On 64 "
        f"held-out tanh CNNs of the headroom zoo ScaleGMN-B lifts mean test accuracy from "
        f"{100 * iv['initial']['acc']['mean']:.1f}% to {100 * iv['scalegmn-b']['acc']['mean']:.1f}%: {pts(g)} points. "
        f"In-sample, on as many of its own training networks, it gains {100 * ins['mean']:+.1f}; held out it keeps "
        f"{ins['held_out_mean'] / ins['mean']:.0%} of that (`operator-generalizes`: "
        f"**{st['operator-generalizes']['status']}**).",
        "* **But copying a training network does better.** " + (
            "The memorization controls, scored on the same held-out networks and test images: " + ", ".join(
                f"{c} {100 * v['accuracy']['mean']:.1f}%" for c, v in mem.items() if v["accuracy"]["mean"] ==
                v["accuracy"]["mean"]) + f". `operator-beats-memorization` is **{memo['status']}**: "
            f"the operator's output minus {memo['measured'].get('best_control', 'the best control')} is "
            f"{pts(memo)} points. A one-shot operator that lifts weak networks by nine points still leaves them "
            "far below a network the zoo already holds; what it has learned is an *update* (below), not the "
            "answer." if memo and mem else "This file has no memorization controls (rerun the study)."),
        f"* **The published scale is not reached** (`operator-gain-cnn-published`: "
        f"**{st['operator-gain-cnn-published']['status']}**; published +12.4 points on CIFAR-10's CNNs, ours are "
        f"MNIST-1D conv1d networks). The held-out curve (left panel) was still rising when training stopped at "
        f"{curve['step'][-1]} steps, by {rise:+.1f} points over the last 1000; whether more steps would close the "
        f"gap is what that slope says, not a certainty. With {sizes[0]['networks']} training networks the "
        f"operator fits them ({100 * sizes[0]['in_sample_gain']:+.1f} points in-sample, the positive control) and "
        f"hurts held-out ones ({100 * sizes[0]['held_out_gain']:+.1f}); the held-out gain rises with the number of "
        "training networks: " + ", ".join(f"{p_['networks']}: {100 * p_['held_out_gain']:+.1f}" for p_ in sizes) + ".",
        f"* **Equivariance helps here.** ScaleGMN-B minus the parameter-matched GMN-B: "
        f"{pts(st['scalegmn-b-beats-gmn-b-headroom'])} points "
        f"(`scalegmn-b-beats-gmn-b-headroom`: **{st['scalegmn-b-beats-gmn-b-headroom']['status']}**); minus GMN-B "
        f"trained with gauge augmentation: {pts(st['scalegmn-b-beats-gmn-b-aug-headroom'])} "
        f"(**{st['scalegmn-b-beats-gmn-b-aug-headroom']['status']}**). The published CNN row has the opposite "
        "order (GMN-B 51.5% against ScaleGMN-B 50.3%).",
        f"* **It changes the networks, not only their confidence.** The median update is {upd['median']:.2f} times "
        f"the norm of the network itself; the test loss falls "
        f"{cal['mean_loss_gain'] / cal['mean_temperature_loss_gain']:.1f} "
        f"times more than a fitted logit temperature alone lowers it. Those that gain most started worst "
        f"(Spearman with the starting accuracy {sp['initial_acc']['rho']:+.2f}, with the training fraction "
        f"{sp['train_fraction']['rho']:+.2f}).",
        f"* **SGD gains more where there is headroom**: 150 epochs of plain SGD add "
        f"{100 * (iv['sgd-150']['acc']['mean'] - iv['initial']['acc']['mean']):+.1f} points. One forward pass is "
        f"{st['one-shot-1000x-faster']['measured']:.0f} times cheaper per network than SGD-150, one network at a time "
        f"(`one-shot-1000x-faster`: **{st['one-shot-1000x-faster']['status']}** against the published 1000).",
        f"* **Table 1, on the plateau zoos** (SGD-150 gains {100 * sgd_plateau:+.1f} points on their held-out CNNs, "
        f"published +6.6): `cnn-one-shot-beats-sgd150` **{st['cnn-one-shot-beats-sgd150']['status']}** "
        f"({pts(st['cnn-one-shot-beats-sgd150'])}); `mlp-scalegmn-beats-gmn` "
        f"**{st['mlp-scalegmn-beats-gmn']['status']}** ({pts(st['mlp-scalegmn-beats-gmn'], 2)}; the published edge "
        f"is 0.4 points); `l1-larger-reduction-lower-loss` **{st['l1-larger-reduction-lower-loss']['status']}**.",
    ]
    display(Markdown("\n".join(text)))
    # what the paragraph concludes from its figures
    assert g["ci"][0] > 0 and ins["held_out_mean"] > 0.5 * ins["mean"] and g["status"] == "holds"
    if memo and mem:
        best_ctrl = max(v["accuracy"]["mean"] for v in mem.values() if v["accuracy"]["mean"] == v["accuracy"]["mean"])
        assert best_ctrl > iv["scalegmn-b"]["acc"]["mean"] and memo["status"] != "holds"  # "copying does better"
    assert rise > 0  # "still rising"
    assert sizes[0]["in_sample_gain"] > 0.1 and sizes[0]["held_out_gain"] < 0
    assert [p_["held_out_gain"] for p_ in sizes] == sorted(p_["held_out_gain"] for p_ in sizes)
    assert st["scalegmn-b-beats-gmn-b-headroom"]["ci"][0] > 0  # "equivariance helps here"
    assert cal["mean_loss_gain"] > cal["mean_temperature_loss_gain"] > 0 and upd["median"] > 1
    assert sp["initial_acc"]["rho"] < 0 and sp["train_fraction"]["rho"] < 0
    assert iv["sgd-150"]["acc"]["mean"] > iv["scalegmn-b"]["acc"]["mean"]

# %% [markdown]
# **What changed when the verdicts were made stricter.** Every finding of this study (and of the
# sweep) whose verdict or interval moved when claims began to be judged against the memorization
# controls, with margins of their own and intervals that resample the right units (flips in bold):

# %%
from scalegmn_lite.course.reference import reference_dir, verdict_changes_markdown

changes = reference_dir().parent / "verdict_changes.json" if reference_dir() else None
if changes is not None and changes.is_file():
    display(Markdown(verdict_changes_markdown(changes, "reference", experiment="amortized")
                     + "\n" + verdict_changes_markdown(changes, "reference", experiment="gscale")))

# %% [markdown]
# ### The open question: does the gain grow with the gauge's dimension?
# The explanation offered for why equivariance helps more on MLPs than on CNNs is the size of the
# scaling gauge (notebook 02: one factor per hidden channel of a CNN, per hidden neuron of an MLP).
# The quick study above cannot test it (tanh networks, and an MLP with as many factors as the CNN).
# The `gscale` experiment of `scalegmn-lite reproduce` does (a four-architecture sweep in quick mode;
# the committed reference run, plotted here, has six): ReLU zoos of architectures whose scaling gauges have
# dimension 8 to 100, among them a small CNN (4 + 4 channels, dimension 8) and its **unrolled twin**,
# the MLP with the CNN's hidden sizes once unrolled (72 + 28 neurons, dimension 100): the same
# function class with 12.5 times the gauge. On each, ScaleGMN-B and the parameter-matched GMN-B are
# trained with the same protocol and seeds; the gain is their paired accuracy difference on the same
# held-out networks.

# %% tags=["nbval-ignore-output"]
sweep_ref = load_reference("gscale")
if sweep_ref is not None:
    sw = sweep_ref["gscale_sweep"]
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    for p_ in sw["points"]:  # gains in points (x 100), like the slope in the legend
        g = p_["gain"]
        cnn = p_["family"] != "mlp"
        ax.errorbar(p_["dim_gscale"], 100 * g["mean"], yerr=100 * np.array(_bar(g)), fmt="s" if cnn else "o",
                    capsize=3, color="tab:blue" if cnn else "tab:orange")
        ax.annotate(p_["setting"].replace("-relu", ""), (p_["dim_gscale"], 100 * g["mean"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    for t_ in sw["twins"]:
        a, b = (next(p_ for p_ in sw["points"] if p_["setting"] == k) for k in (t_["cnn"], t_["mlp"]))
        ax.plot([a["dim_gscale"], b["dim_gscale"]], [100 * a["gain"]["mean"], 100 * b["gain"]["mean"]], ":",
                color="grey", label="a CNN and its unrolled twin")
    dims = np.array([p_["dim_gscale"] for p_ in sw["points"]], dtype=float)
    gains = 100 * np.array([p_["gain"]["mean"] for p_ in sw["points"]])
    xs = np.linspace(0, dims.max() * 1.05, 50)
    ax.plot(xs, np.polyval(np.polyfit(dims, gains, 1), xs), color="k", lw=1,
            label=f"slope {sw['slope']['mean'] * 100:+.4f} points per dimension "
                  f"[{sw['slope']['ci'][0] * 100:+.4f}, {sw['slope']['ci'][1] * 100:+.4f}]")
    ax.axhline(0, color="k", ls="--", lw=0.8)
    ax.plot([], [], "s", color="tab:blue", label="CNN")
    ax.plot([], [], "o", color="tab:orange", label="MLP")
    ax.set_xlim(-5, dims.max() * 1.2)
    ax.set(xlabel="dim G_scale (positive scale factors)", ylabel="accuracy gain, ScaleGMN-B - GMN-B (points)",
           title=f"gain against gauge dimension (reference, {sw['slope']['seeds']} seeds, 95% intervals)")
    ax.legend(fontsize=7)
    plt.tight_layout()
    plt.show()
    for c in sweep_ref["claims"]:
        print(figs.claim_line(c))

# %% [markdown]
# **What the sweep says, in plain words** (asserted by the next cell). On *no* architecture of the
# sweep is ScaleGMN-B better than the symmetry-broken GMN-B: every gain is negative or
# indistinguishable from zero, at most about a point in size. Look at the figure by family:
#
# * **the four MLPs (circles) are flat within noise**: from 8 to 100 scale factors their gains stay
#   between about -0.4 and 0 points, with overlapping intervals; on MLPs alone the gauge's dimension
#   does not visibly move the gain;
# * **the two CNNs (squares) sit lowest** (about -0.8 and -1.3 points): they are what makes the fitted
#   slope positive (`gain-grows-with-gscale-dim` holds, but its interval comes from CNN against MLP,
#   not from a trend among comparable networks);
# * **the clean comparison is the small CNN against its unrolled twin** (dotted line): the same
#   functions with 8 against 100 scale factors. The twin's gain is larger (`twin-gain-exceeds-cnn`
#   holds): about -0.8 points for the CNN, about 0 for the twin.
#
# So the direction the published explanation predicts is measured on the one pair where nothing else
# changes, but at this budget a larger gauge only closes ScaleGMN-B's gap to GMN-B; it never becomes
# an advantage. Six architectures on one dataset are a small sweep: read the slope as a trend, not a
# law.

# %%
if sweep_ref is not None:
    st = {c["id"]: c["status"] for c in sweep_ref["claims"]}
    pts = sw["points"]
    assert st == {"gain-grows-with-gscale-dim": "holds", "twin-gain-exceeds-cnn": "holds"}
    assert all(p_["gain"]["ci"][0] < 0 for p_ in pts) and max(abs(p_["gain"]["mean"]) for p_ in pts) < 0.02
    assert sw["slope"]["ci"][0] > 0 and len({p_["dim_gscale"] for p_ in pts}) >= 4
    mlps = [p_["gain"] for p_ in pts if p_["family"] == "mlp"]
    cnns = [p_["gain"] for p_ in pts if p_["family"] != "mlp"]
    assert len(mlps) == 4 and all(-0.005 < g["mean"] <= 0.001 for g in mlps)  # flat within noise
    assert max(g["ci"][0] for g in mlps) < min(g["ci"][1] for g in mlps)  # their intervals overlap
    assert max(g["mean"] for g in cnns) < min(g["mean"] for g in mlps)  # the CNNs sit lowest
    print("the statements above match the committed reference run")

# %% [markdown]
# *Footnote: where the reference figures of this notebook (and the shipped operator of its first
# section) come from.*

# %%
footnote = describe_run("amortized")
assert shipped.info["commit"][:10] in footnote  # the shipped operator comes from the same run
print(footnote)

# %% [markdown]
# ## Using an operator on your own `torch.nn.Sequential`
# The trained MLP operator (first seed) applied to a fresh module; as the quick check above says,
# the width need not be that of the zoo.

# %%
mlp_name = next(s.name for s in study_cfg.settings if not s.is_cnn and "scalegmn-b" in s.kinds)
trained = res.ops[mlp_name]["scalegmn-b"]
torch.manual_seed(SEED)
user_net = nn.Sequential(nn.Linear(40, 16), nn.Tanh(), nn.Linear(16, 10))
improved = trained.apply_module(user_net)
print(improved)
print("shapes kept:", [p.shape for p in improved.parameters()] == [p.shape for p in user_net.parameters()])

# %% [markdown]
# ## Summary
# * A trained operator works in seconds: the shipped ScaleGMN-B operator of the reference run lifts 64
#   held-out tanh CNNs in one forward pass, and `check_shipped` confirms it is the reference run's model.
# * A fully-amortized optimizer is an equivariant operator on weight space trained on a zoo: the
#   minimal version above is a dozen lines on top of the layers of notebook 05, trained through the
#   functional forward of the networks it proposes, and checked equivariant.
# * The library's operator (a ScaleGMN with a residual, per-layer scaled update) trains with
#   warm-up, clipping and rollback, and is applied in one forward pass to any network or batch of
#   networks, including your own `nn.Sequential`.
# * The study starts from the final networks of two kinds of zoo: a *headroom* zoo, where we ask
#   whether the operator transfers to networks it never saw, and *plateau* zoos whose networks
#   stopped improving like the published ones, where the paper's Table 1 is judged. It compares, on
#   held-out networks and with intervals over seeds and networks, the one-shot proposals with SGD on
#   the same objective and ScaleGMN-B with the symmetry-broken GMN-B (with and without gauge
#   augmentation), keeping the operator step that is best on *validation* networks. The printed
#   verdicts and claim statuses say what this run measured; at quick scale a claim that does not hold
#   is not reproduced at this budget.
# * The diagnostics tell memorising from learning to optimize: held-out against in-sample gain as
#   training goes on and as the number of training networks grows, the 16-network positive control,
#   the size of the update and a calibration-only control. At reference size (6000 steps of a wider
#   operator, 4096-network zoos) they show the operator transferring to held-out networks, and still
#   improving when training stopped.
# * The accuracy-against-time plot shows what amortization buys: one forward pass per network
#   against many epochs of training per network.
# * The gauge-dimension count of notebook 02 is the proposed reason equivariance should matter more
#   on MLPs than on CNNs. The quick study uses tanh networks (a finite sign-flip gauge) and an MLP
#   with as many hidden neurons as the CNN has hidden channels, so it cannot test that reason; the
#   reference run's sweep over ReLU zoos of gauge dimension 8 to 100 (a CNN and its unrolled twin
#   among them) does, and its answer is plotted above.
#
# ## Exercises
#
# **1.** The simplest equivariant operators have no graph at all. Write `shrink(ws)` that returns
# $0.9\,\theta$ (every weight and bias) and check it. Then try the elementwise
# $\theta + 0.1\,\theta^3$ on the default tanh MLP and on a ReLU MLP (`spec="mlp 6-5-5-3 relu"`):
# which one passes, and why?
#
# *Hint:* the action multiplies $W_{ts}$ by $q_t/q_s$. What does cubing do to $\pm 1$, and to $2$?
#
# <details><summary>Solution</summary>
#
# ```python
# def shrink(ws):
#     return ws.map(lambda t: 0.9 * t)
#
# def cube(ws):
#     return ws.map(lambda t: t + 0.1 * t ** 3)
# ```
# `shrink` is linear, so it commutes with any linear action. `cube` passes for tanh: $(\pm1)^3 = \pm1$,
# so sign flips commute with it; it fails for ReLU: $(q_t/q_s)^3 \ne q_t/q_s$ unless the ratio is 1.
# (Both are equivariant *and blind*: they do not look at the rest of the network. The graph
# operator does.)
# </details>

# %%
from scalegmn_lite.course.metanets import check_operator_equivariance


def shrink(ws):
    raise NotImplementedError


check_operator_equivariance(shrink)

# %% [markdown]
# **2.** Give the minimal operator a second message round: `TwoRoundOperator`, a subclass of
# `MinimalOperator` whose `step` (one round of messages and the vertex update) runs twice, and check
# it. Then train it as above, for 300 steps: how much of the gap to SGD-150 closes? Compare with the
# library operator's training losses in the training figure.
#
# *Hint:* call `super().step(...)` twice, feeding the first round's vertex features into the second.
# The check also tests what the second round buys: with forward messages only, a vertex of the
# second hidden layer hears the first layer's weights two hops away, so one round cannot.
#
# <details><summary>Solution</summary>
#
# ```python
# class TwoRoundOperator(MinimalOperator):
#     def step(self, x, e, src, dst, vk):
#         for _ in range(2):  # the same message and update maps, applied twice
#             x = super().step(x, e, src, dst, vk)
#         return x
# ```
# For the second part, rerun the training cell with `mini = TwoRoundOperator()` and `range(300)`,
# and compare the held-out gain it prints with the `scalegmn-b - sgd-150` line of the verdicts. The
# extra round keeps the operator equivariant (every round is) and lets each proposal depend on a
# larger part of the network; how much accuracy that buys at this budget is what your run measures.
# </details>

# %%
from scalegmn_lite.course.metanets import check_collapsed_loss, check_equivariance_verdicts, check_two_round_operator


class TwoRoundOperator(MinimalOperator):
    def step(self, x, e, src, dst, vk):
        raise NotImplementedError  # two rounds of MinimalOperator.step


check_two_round_operator(TwoRoundOperator())

# %% [markdown]
# **3.** When the L1 term wins, the weights collapse towards zero. First, without training: what is
# the cross-entropy of a network of the study (10 classes) whose weights and biases are all zero?
# Then raise `update_scale_init` or $\lambda$ in `StudyConfig.quick(...)`: when does the L1 reduction
# pass 85%, and what happens to accuracy (the published failure: the test loss of the collapsed
# networks)?
#
# *Hint:* a zero network gives every class the same logit. Which probability does the softmax give
# the true class?
#
# <details><summary>Solution</summary>
#
# All logits are 0, so the softmax gives $1/10$ to every class and the cross-entropy is
# $-\ln(1/10) = \ln 10 \approx 2.303$ on every example: `answer_3 = np.log(10)`. For the second part,
# run the L1 setting alone with larger $\lambda$ (or `update_scale_init`):
#
# ```python
# from scalegmn_lite.tasks.amortized.protocol import quick_settings
# for lam_ in (1e-3, 1e-2, 3e-2):
#     r = run_study(StudyConfig.quick(settings=quick_settings(lam_)[1:2]), device="cpu", progress=False)
#     iv = r.intervals()["cnn1d-tanh-l1"]["scalegmn-b"]
#     print(lam_, iv["l1_red"]["mean"], iv["acc"]["mean"], iv["loss"]["mean"])
# ```
# The reduction grows with $\lambda$; where the weights collapse, the accuracy falls towards chance
# (0.1) and the test loss towards $\ln 10$, the value of the first part. Which $\lambda$ gets there
# first is what your run measures.
# </details>

# %%
answer_3 = None  # the cross-entropy of an all-zero network with 10 classes
check_collapsed_loss(answer_3)

# %% [markdown]
# **4.** Check the equivariance of a trained study operator with
# `scalegmn_lite.nn.checks.check_equivariance` on networks of the study's CNN architecture, with
# tanh (sign flips and permutations) and with ReLU (positive scalings and permutations), and show
# that the GMN operator fails it. Write `equivariant(op, ws)` (True or False) first: the check runs
# it on small untrained operators.
#
# *Hint:* ScaleGMN-B was built in `mode="auto"`: every hidden vertex uses the group of its own
# activation, whatever the zoo it was trained on.
#
# <details><summary>Solution</summary>
#
# ```python
# from scalegmn_lite.nn.checks import check_equivariance
#
# def equivariant(op, ws):
#     return check_equivariance(op, ws).ok()  # float64 copy of op, random gauge elements of ws
#
# tanh = WeightSpace.randn(NetworkSpec.from_text("conv1d 1-16-16/10 k5 s2 tanh 1x40"), 4)
# relu = WeightSpace.randn(NetworkSpec.from_text("conv1d 1-16-16/10 k5 s2 relu 1x40"), 4)
# equivariant(res.ops["cnn1d-tanh"]["scalegmn-b"], tanh)   # True
# equivariant(res.ops["cnn1d-tanh"]["scalegmn-b"], relu)   # True
# equivariant(res.ops["cnn1d-tanh"]["gmn"], tanh)          # False
# ```
# </details>

# %%
def equivariant(op, ws):
    raise NotImplementedError  # True or False


check_equivariance_verdicts(equivariant)
