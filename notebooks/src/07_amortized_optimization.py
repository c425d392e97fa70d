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
# We first build a minimal operator from the layers of notebook 05 and train it for 60 steps, then
# run the library's study: on held-out networks only, the one-shot operators against plain SGD
# started from the same $\theta$ on the same objective for 25, 50, 100 and 150 epochs, and
# ScaleGMN-B against the symmetry-broken GMN.
#
# **Sources.** The setting and the claims measured at the end: *Symmetry-Aware Fully-Amortized
# Optimization with Scale Equivariant Graph Metanetworks*, arXiv 2510.08300 (2025). ScaleGMN:
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
# ## The objective, from scratch and from the library
# For one network, $\lambda \lVert\theta\rVert_1$ sums the absolute values of every weight and bias;
# the cross-entropy is the usual one of the `torch.nn` module. `amortized_objective` computes the
# same for a whole batch of networks at once.

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
# the proposal of $\theta$, and computes the same function.

# %%
torch.manual_seed(SEED)
op = AmortizedOperator(hidden_dim=8, num_layers=2, bidirectional=True).double()
with torch.no_grad():
    op.gmn.update_scales.fill_(0.5)  # an untrained operator with a visible update
    g = GaugeElement.sample(spec, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
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
# Train it on the tanh MLPs of the study's MLP zoo (`mlp-hp-mnist1d`, the same zoo and the same
# *final* networks the study starts from) for 60 steps: each step draws 16 networks and 256
# training examples and minimises the cross-entropy of the *proposed* networks (here $\lambda = 0$).
# The last quarter of the networks is held out.

# %% tags=["nbval-ignore-output"]
mlp_setting = next(s for s in study_cfg.settings if not s.is_cnn)
mini_zoo = load_or_build(mlp_setting.recipe(study_cfg.full, study_cfg.reference), device="cpu",
                         progress=False).where(activation=mlp_setting.activation)
if "diverged" in mini_zoo.metadata:  # as the study does: drop members whose training diverged
    mini_zoo = mini_zoo.filter(lambda df: ~df["diverged"].astype(bool))
mnist1d = load_dataset("mnist1d")
zoo_ws = mini_zoo.weights()  # final networks, as in the study
n_train = zoo_ws.batch_size * 3 // 4
train_ws, test_ws = zoo_ws[:n_train], zoo_ws[n_train:]
torch.manual_seed(SEED)
mini = MinimalOperator()
opt = torch.optim.Adam(mini.parameters(), lr=3e-3)
gen = torch.Generator().manual_seed(SEED)
losses = []
for step in range(60):
    nets = train_ws[torch.randint(0, n_train, (16,), generator=gen)]
    idx = torch.randint(0, mnist1d.x_train.shape[0], (256,), generator=gen)
    loss = amortized_objective(mini(nets), mnist1d.x_train[idx], mnist1d.y_train[idx], 0.0).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(float(loss))
with torch.no_grad():
    acc_before = network_metrics(test_ws, mnist1d.x_test, mnist1d.y_test)["acc"]
    acc_after = network_metrics(mini(test_ws), mnist1d.x_test, mnist1d.y_test)["acc"]
gain = bootstrap_mean((acc_after - acc_before).numpy())  # one seed: the interval covers the held-out networks
print(f"held-out networks ({test_ws.batch_size}): accuracy {acc_before.mean():.3f} -> {acc_after.mean():.3f}, "
      f"gain {gain['mean']:+.3f} [95% interval {gain.lo:+.3f}, {gain.hi:+.3f}]")
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses, alpha=0.4, label="per step")
ax.plot(pd.Series(losses).rolling(10, min_periods=1).mean(), label="10-step mean")
ax.set(xlabel="step", ylabel="cross-entropy of the proposals", title="training the minimal operator")
ax.legend()
plt.show()

# %%
from scalegmn_lite.course.metanets import check_operator_equivariance

print(check_operator_equivariance(mini))  # float64 copy, random sign flips and permutations of a tanh MLP
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
# * the starting points are the **final** networks of the zoo (`cnn1d-hp-mnist1d` or
#   `mlp-hp-mnist1d`: networks trained with widely varying training-set fractions, learning rates,
#   optimizers, init scales and weight decays, so many of them have room to improve), restricted to
#   the setting's activation and split into train/val/test *by network*;
# * the operators of the setting (ScaleGMN-B, and GMN-B with a matched parameter count where listed)
#   are trained with `train_operator` (warm-up, clipping, rollback on spikes), one per seed in
#   `study_cfg.seeds`;
# * plain SGD starts from the same held-out networks on the same objective; for settings with
#   $\lambda = 0$ the study also runs Adam, its learning rate tuned on the validation networks.
#
# Operators and SGD runs are cached by a hash of their configuration, so `reproduce` and this
# notebook share them (stored timings are those of the run that computed them). The next cell
# prints the quick-mode configuration; full mode (`SCALEGMN_LITE_FULL=1`) adds digits, ReLU, $\lambda$
# everywhere, all four operator kinds (also ScaleGMN-F and the ablation `no-canon`) and larger
# operators trained for more steps.

# %%
for s in study_cfg.settings:
    print(f"{s.name:14s} zoo {s.zoo}, {s.activation}, lambda={s.lam:g}, operators {list(s.kinds)}")
print("operator seeds:", list(study_cfg.seeds), "| operator steps:", study_cfg.steps,
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
print("seeds per operator row:", sorted(set(table[table.method.isin(["scalegmn-b", "gmn"])].seeds)))

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
OPERATORS = [k for k in ("scalegmn-b", "scalegmn-f", "gmn", "no-canon")]
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
# against SGD-150 and, where they were trained, against GMN, the ablation and ScaleGMN-F (paired
# differences of accuracy on the same held-out networks, 95% intervals over seeds and networks).

# %% tags=["nbval-ignore-output"]
def paired(name, a, b):
    per = res.per_network[name]
    iv = bootstrap_mean(per[a]["acc"] - per[b]["acc"])  # [S, B] - [S or 1, B]
    verdict = "better" if iv.lo > 0 else "worse" if iv.hi < 0 else "not distinguishable"
    return f"{a} - {b}: {iv['mean']:+.3f} [{iv.lo:+.3f}, {iv.hi:+.3f}] -> {a} {verdict}"


for name in names:
    print(f"{name}:")
    for other in ("initial", sgd_last, "gmn", "no-canon", "scalegmn-f"):
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
# table below) is not the published one. With more compute
# (`SCALEGMN_LITE_FULL=1` on a GPU: bigger zoos, larger operators, 15x the steps) the same cells
# measure the published setting.
#
# The short table: mean test accuracy per method (rows) and setting (columns), means over seeds and
# held-out networks.

# %% tags=["nbval-ignore-output"]
table.pivot(index="method", columns="setting", values="mean_acc").round(3)

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

# %% [markdown]
# ## Training stability, transfer and the ablation
# Every operator's run, one row per setting, kind and seed: steps, rollbacks (NaN or loss spike
# followed by a restore of the last good state and a smaller learning rate), first and final
# training loss (means of the first and last 10 accepted steps), validation accuracy.

# %% tags=["nbval-ignore-output"]
res.training[["setting", "method", "seed", "steps", "rollbacks", "first_loss", "final_loss", "val_acc", "params",
              "seconds", "cached"]].round(4)

# %%
assert (res.training.steps == study_cfg.steps).all()  # no run ended early or silently diverged
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
pd.DataFrame(res.transfer).round(4)

# %%
assert all(np.isfinite(r["one_shot_acc"]) for r in res.transfer)
print(sorted({r["transfer"] for r in res.transfer}))

# %% [markdown]
# ## The claims of the published work, measured here
# `compute_claims(res)` turns each claim of arXiv 2510.08300 (Table 1) into a test on this run's
# per-network results: a paired difference with its 95% interval over seeds and held-out networks
# (the speed claim is a measured ratio, without an interval). The status is `holds` when the
# interval lies on the claimed side of the threshold, `refuted` when it lies on the other side, and
# `inconclusive` when it straddles it.

# %% tags=["nbval-ignore-output"]
claims = compute_claims(res, sgd_final=max(study_cfg.sgd_epochs))
for c in claims:
    m = c.measured
    mean = m.get("l1_reduction_diff") if isinstance(m, dict) else m
    if c.ci:  # a paired difference with its 95% interval over seeds and held-out networks
        shown = f"mean {mean:+.4f} [95% interval {c.ci[0]:+.4f}, {c.ci[1]:+.4f}]"
    else:  # the speed claim: a measured ratio
        shown = f"ratio {mean:.1f}x (measured, no interval)"
    line = f"{c.id:31s} {c.status:12s} {shown}  target {c.target}"
    if isinstance(m, dict) and "test_loss_diff" in m:
        line += (f"\n{'':31s} {'':12s} test-loss diff {m['test_loss_diff']:+.4f} "
                 f"[95% interval {m['test_loss_diff_ci_lo']:+.4f}, {m['test_loss_diff_ci_hi']:+.4f}] (must be < 0)")
    print(line)
statuses = [c.status for c in claims]
print({s: statuses.count(s) for s in ("holds", "refuted", "inconclusive")})

# %% [markdown]
# **Reading the verdicts.** Each line above is one published claim: the measured mean of the paired
# difference (ScaleGMN-B minus SGD-150 accuracy on the CNN zoo, ScaleGMN-B minus GMN-B accuracy on
# the MLP zoo, the L1-norm reduction and test-loss differences with $\lambda > 0$), its 95% interval,
# and the status that interval implies; the speed claim compares measured seconds per network, one
# network at a time, with the published 1000x. The count on the last line says how many claims this
# run reproduced.
#
# At quick scale a claim whose status is not `holds` is a *miss* of this run, not evidence against
# the paper: the zoos, operators and training budget here are far smaller than the published ones,
# and `refuted` only means that *this* budget measured the opposite with confidence. A claim that
# holds here holds for these small zoos and operators; whether it holds at the published scale is
# what full mode measures.

# %% [markdown]
# ## With more compute: the committed reference run
# `scalegmn-lite reproduce --reference` runs the same protocol with more of everything: every row of
# Table 1 (also the MLP with $\lambda > 0$), 400 operator steps, five operator seeds and twice the
# held-out networks (48 per tanh setting; the number is printed below). **The committed reference
# results of this study are older than this notebook's zoos:** they were produced (commit 0c60fa2, see
# the footnote line below) on the earlier zoos of 512 networks (about 250 per activation, final
# checkpoints only); the quick study above already trains on the 1024-network zoos, and the reference
# zoos now hold 4096 networks (`results/reference/zoo.json`). Its results are committed in
# `results/reference/` and read here; nothing below is recomputed. The left panels repeat the
# accuracy-against-SGD-epochs plot of this notebook's quick run with the reference numbers.

# %%
from scalegmn_lite.course.reference import claims_frame, describe_run, load_reference

ref = load_reference("amortized")
if ref is not None:
    print(describe_run())
    print(ref["config"]["steps"], "operator steps |", len(ref["config"]["seeds"]), "seeds |",
          {k: v["test"] for k, v in ref["counts"].items()}, "held-out networks per setting")
    print(claims_frame(ref).to_string(index=False))


def _bar(iv):
    return [[iv["mean"] - iv["ci"][0]], [iv["ci"][1] - iv["mean"]]]


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

# %% [markdown]
# **What the reference run says, in plain words** (the cell after this one asserts each statement
# against the committed files, so this text cannot silently drift from them):
#
# * **CNN, one shot against SGD-150: does not reproduce** (`cnn-one-shot-beats-sgd150` refuted). The
#   operator lifts the held-out tanh CNNs by about one point, while 150 epochs of plain SGD from the
#   same networks gain about twenty and tuned Adam more. The published 50.3% against 44.5% is not
#   what this protocol gives on MNIST-1D with operators of this size.
# * **MLP, ScaleGMN-B against GMN-B: not resolved** (`mlp-scalegmn-beats-gmn` inconclusive). The
#   two are within a few tenths of a point of each other and the interval straddles zero; the
#   published edge (35.4% against 35.0%) is of the same small size, so this run neither confirms
#   nor rules it out.
# * **L1: half of the claim reproduces.** With $\lambda > 0$ the operator does reach a larger L1-norm
#   reduction than SGD-150, but at a *higher* test loss, so the claim as stated (larger reduction *at a
#   lower loss*) is refuted.
# * **Speed: a large factor, not 1000x.** One forward pass against 150 epochs, one network at a
#   time, is about two orders of magnitude faster here; the published factor comes from SGD costing
#   minutes per network on CIFAR-10, ours costs seconds on small networks and 2000 images.
#
# The operators' training losses fall only a little in 400 steps (the training table of the JSON has
# first and final losses), so the likeliest reading is an operator that is far from converged at
# 2-core budgets; `--full` on a GPU runs the published sizes.

# %%
if ref is not None:
    st = {c["id"]: c for c in ref["claims"]}
    iv = ref["intervals"]
    gain_op = iv["cnn1d-tanh"]["scalegmn-b"]["acc"]["mean"] - iv["cnn1d-tanh"]["initial"]["acc"]["mean"]
    gain_sgd = iv["cnn1d-tanh"]["sgd-150"]["acc"]["mean"] - iv["cnn1d-tanh"]["initial"]["acc"]["mean"]
    assert st["cnn-one-shot-beats-sgd150"]["status"] == "refuted" and gain_op < 0.03 < 0.15 < gain_sgd
    assert st["mlp-scalegmn-beats-gmn"]["status"] == "inconclusive"
    assert max(map(abs, st["mlp-scalegmn-beats-gmn"]["ci"])) < 0.01
    l1 = st["l1-larger-reduction-lower-loss"]
    assert l1["status"] == "refuted" and l1["ci"][0] > 0 and l1["measured"]["test_loss_diff_ci_lo"] > 0
    assert 50 < st["one-shot-1000x-faster"]["measured"] < 1000
    print("the statements above match the committed reference run")

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
    for p_ in sw["points"]:
        g = p_["gain"]
        cnn = p_["family"] != "mlp"
        ax.errorbar(p_["dim_gscale"], g["mean"], yerr=_bar(g), fmt="s" if cnn else "o", capsize=3,
                    color="tab:blue" if cnn else "tab:orange")
        ax.annotate(p_["setting"].replace("-relu", ""), (p_["dim_gscale"], g["mean"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    for t_ in sw["twins"]:
        a, b = (next(p_ for p_ in sw["points"] if p_["setting"] == k) for k in (t_["cnn"], t_["mlp"]))
        ax.plot([a["dim_gscale"], b["dim_gscale"]], [a["gain"]["mean"], b["gain"]["mean"]], ":", color="grey",
                label="a CNN and its unrolled twin")
    dims = np.array([p_["dim_gscale"] for p_ in sw["points"]], dtype=float)
    gains = np.array([p_["gain"]["mean"] for p_ in sw["points"]])
    xs = np.linspace(0, dims.max() * 1.05, 50)
    ax.plot(xs, np.polyval(np.polyfit(dims, gains, 1), xs), color="k", lw=1,
            label=f"slope {sw['slope']['mean'] * 100:+.3f} pts/dim "
                  f"[{sw['slope']['ci'][0] * 100:+.3f}, {sw['slope']['ci'][1] * 100:+.3f}]")
    ax.axhline(0, color="k", ls="--", lw=0.8)
    ax.plot([], [], "s", color="tab:blue", label="CNN")
    ax.plot([], [], "o", color="tab:orange", label="MLP")
    ax.set_xlim(-5, dims.max() * 1.2)
    ax.set(xlabel="dim G_scale (positive scale factors)", ylabel="accuracy gain, ScaleGMN-B - GMN-B",
           title=f"gain against gauge dimension (reference, {sw['slope']['seeds']} seeds, 95% intervals)")
    ax.legend(fontsize=7)
    plt.tight_layout()
    plt.show()
    print(claims_frame(sweep_ref).to_string(index=False))

# %% [markdown]
# **What the sweep says, in plain words** (asserted by the next cell). On *no* architecture of the
# sweep is ScaleGMN-B better than the symmetry-broken GMN-B: every gain is negative or
# indistinguishable from zero, at most about a point in size. But the deficit shrinks as the gauge
# grows: the fitted slope is positive with an interval that excludes zero
# (`gain-grows-with-gscale-dim` holds), and the cleanest comparison, the small CNN against its
# unrolled twin (the same functions, 8 against 100 scale factors), gives the twin the larger gain
# (`twin-gain-exceeds-cnn` holds). So the direction the published explanation predicts is measured
# here, but at this budget it only closes ScaleGMN-B's gap to GMN-B; it never becomes an advantage.
# Six architectures on one dataset are a small sweep: apart from the twin pair, the architectures
# also differ in depth, width and initial accuracy, so read the slope as a trend, not a law.

# %%
if sweep_ref is not None:
    st = {c["id"]: c["status"] for c in sweep_ref["claims"]}
    pts = sw["points"]
    assert st == {"gain-grows-with-gscale-dim": "holds", "twin-gain-exceeds-cnn": "holds"}
    assert all(p_["gain"]["ci"][0] < 0 for p_ in pts) and max(abs(p_["gain"]["mean"]) for p_ in pts) < 0.02
    assert sw["slope"]["ci"][0] > 0 and len({p_["dim_gscale"] for p_ in pts}) >= 4
    print("the statements above match the committed reference run")

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
# * A fully-amortized optimizer is an equivariant operator on weight space trained on a zoo: the
#   minimal version above is a dozen lines on top of the layers of notebook 05, trained through the
#   functional forward of the networks it proposes, and checked equivariant.
# * The library's operator (a ScaleGMN with a residual, per-layer scaled update) trains with
#   warm-up, clipping and rollback, and is applied in one forward pass to any network or batch of
#   networks, including your own `nn.Sequential`.
# * The study starts from the final networks of zoos with headroom and compares, on held-out
#   networks and with intervals over seeds and networks, the one-shot proposals with SGD on the same
#   objective and ScaleGMN-B with the symmetry-broken GMN. The printed verdicts and claim statuses
#   say what this run measured; at quick scale a claim that does not hold is a miss of the budget.
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
def shrink(ws):
    raise NotImplementedError


check_operator_equivariance(shrink)

# %% [markdown]
# **2.** Give the minimal operator a second message round: `TwoRoundOperator`, a subclass of
# `MinimalOperator` whose `step` (one round of messages and the vertex update) runs twice, and check
# it. Then train it as above, for 300 steps: how much of the gap to SGD-150 closes? Compare with the
# library operator's training loss in the training table.
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
