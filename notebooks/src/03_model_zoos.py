# %% [markdown]
# # 03 - Model zoos
#
# Metanetworks learn from *zoos*: many small networks trained with varied hyperparameters. We build our
# own from data that needs no download (scikit-learn digits, MNIST-1D), training $N$ networks in **one**
# batched computation: with weights $\theta_1..\theta_N$ stacked on a leading axis, the loss
# $$L(\theta_1, \dots, \theta_N) = \sum_b \mathrm{CE}_b(\theta_b)$$
# has $\partial L / \partial \theta_b = \partial \mathrm{CE}_b / \partial \theta_b$: each network gets its own
# gradient, and its own learning rate, weight decay, init scale and seed.
#
# **Sources.** MNIST-1D: Greydanus, *Scaling down Deep Learning*, 2020 (a 1-D digit data set, generated
# here, no download). SIREN INRs: Sitzmann et al., *Implicit Neural Representations with Periodic
# Activation Functions*, NeurIPS 2020. Zoos of trained networks as data sets: Unterthiner et al.,
# *Predicting Neural Network Accuracy from Weights*, 2020 (StatNN), and the NFN and ScaleGMN
# benchmarks (Zhou et al., NeurIPS 2023; Kalogeropoulos et al., NeurIPS 2024).
#
# **You will learn** to train many networks at once, to check a batched trainer against a plain
# loop, and what a zoo needs (spread of accuracies, splits by network) to be useful to a metanetwork.
# We then build the zoos notebooks 06-08 train on, look at how widely their networks' accuracies spread,
# and see why the way an INR is initialised decides whether a metanetwork can read it.

# %%
from scalegmn_lite.common.config import notebook_setup

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

# %%
import matplotlib.pyplot as plt
import seaborn as sns
import torch

from scalegmn_lite.course.zoo_figures import (
    OPTIMIZER_COLORS,
    draw_loss_curves,
    draw_one_step,
    draw_recipe_samples,
    draw_split_membership,
    recipe_ranges,
    split_membership,
)
from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.zoo import get_recipe, init_weights, load_or_build, train_batched, train_loop
from scalegmn_lite.zoo.data import load_dataset

digits, mnist1d = load_dataset("digits"), load_dataset("mnist1d")
print(digits)
print(mnist1d)

# %% [markdown]
# ## From scratch: one SGD step for $B$ networks at once
# A dense layer of $B$ networks is a batched matrix product $h'_b = h_b W_b^\top + b_b$. We write one
# momentum-free SGD step by hand and compare it with the library trainer. The figure: each network's
# loss before the step and after it, by hand (bars) and by the library (crosses on the bars).

# %% tags=["nbval-ignore-output"]
spec = NetworkSpec.from_text("mlp 64-16-10 relu")
B = 4
ws = init_weights(spec, seeds=list(range(B)), init_scale=1.0, dtype=torch.float64)
x, y = digits.x_train[:32].double().flatten(1), digits.y_train[:32]
lr = torch.tensor([0.01, 0.03, 0.1, 0.3], dtype=torch.float64)


def batch_loss(W1, b1, W2, b2):
    """Mean cross-entropy of each of the B networks on (x, y): a [B] tensor."""
    h = torch.relu(torch.baddbmm(b1[:, None], x.expand(B, -1, -1), W1.transpose(1, 2)))
    logits = torch.baddbmm(b2[:, None], h, W2.transpose(1, 2))  # [B, 32, 10]
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), y.expand(B, -1), reduction="none").mean(1)


params = [p.clone().requires_grad_() for p in ws.params()]  # W1, b1, W2, b2
loss = batch_loss(*params)
grads = torch.autograd.grad(loss.sum(), params)
by_hand = [p.detach() - lr.view(-1, *[1] * (p.dim() - 1)) * g for p, g in zip(params, grads)]
lib = train_batched(ws, (digits.x_train[:32].double(), y), 1, lr, 0.0, 32, generator=torch.Generator().manual_seed(0),
                    momentum=0.0, progress=False)
with torch.no_grad():
    draw_one_step(lr.tolist(), loss, batch_loss(*by_hand), batch_loss(*lib.ws.params()))
plt.show()

# %%
same_step = all(torch.allclose(a, b, atol=1e-12) for a, b in zip(by_hand, lib.ws.params()))
assert same_step
print("hand-written step == library step:", same_step)

# %% [markdown]
# **Quick check.** The cell above differentiates `loss.sum()`, the *sum* of the $B$ per-network
# losses. What would go wrong with `loss.mean()`?
#
# <details><summary>Answer</summary>
#
# Network $b$'s gradient would be $\frac{1}{B}\,\partial \mathrm{CE}_b / \partial \theta_b$: every
# network would effectively train with learning rate $\mathrm{lr}_b / B$, so its run would depend on
# how many other networks share the batch. With the sum, each network's step is exactly the step it
# would take alone (the networks do not interact: $\partial \mathrm{CE}_b / \partial \theta_{b'} = 0$
# for $b' \ne b$).
# </details>

# %% [markdown]
# ## Batched training equals training one network at a time
# The reference trains each network separately with `torch.nn` modules and `torch.optim.SGD`. CNN training
# is chaotic, so we compare after a few steps, where agreement to $10^{-5}$ in float32 is a real check.
# The figure: the training loss of six networks after each of the first four steps, batched (lines)
# and one at a time (circles).

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.zoo.train import evaluate

final_diff = {}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for ax, (name, arch) in zip(axes, [("mnist1d", "mlp 40-32-32-10 tanh"), ("digits", "conv2d 1-8-8/10 k3 relu 1x8x8")]):
    d = load_dataset(name).subset(300, 60)
    sp = NetworkSpec.from_text(arch)
    w0 = init_weights(sp, list(range(6)), torch.linspace(0.5, 2, 6))
    lr, wd = torch.logspace(-2.5, -0.7, 6), torch.logspace(-5, -2, 6)
    runs = {"batched": [w0], "loop": [w0]}
    for steps in range(1, 5):
        runs["batched"].append(train_batched(w0, d, 1, lr, wd, 64, seeds=list(range(6)), max_steps=steps,
                                             progress=False).ws)
        runs["loop"].append(train_loop(w0, d, 1, lr, wd, 64, seeds=list(range(6)), max_steps=steps))
    curves = {k: torch.stack([evaluate(w, d.x_train, d.y_train)[0] for w in v]) for k, v in runs.items()}
    draw_loss_curves(curves["batched"], curves["loop"], [f"lr {v:.3f}" for v in lr.tolist()], ax=ax,
                     title=f"{sp.family} on {name}")
    final_diff[sp.family] = runs["batched"][-1].max_abs_diff(runs["loop"][-1])
axes[0].get_legend().remove()  # the same six learning rates on both panels: one legend, outside the data
sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title_fontsize=8, frameon=False)
plt.tight_layout()
plt.show()

# %%
for family, diff in final_diff.items():
    print(f"{family:7s} max |batched - loop| <= 1e-5: {diff <= 1e-5}")

# %% [markdown]
# ## Zoos from recipes
# A recipe fixes the data set, architectures, activations and log-uniform ranges of learning rate, init
# scale and weight decay; network $i$ draws its hyperparameters from a generator seeded by (recipe seed, $i$),
# so the same recipe gives bit-identical weights. `load_or_build` caches zoos by recipe hash. We start with
# three small teaching zoos; the zoos notebooks 06-08 train on come later in this notebook. The figure:
# what the two classifier recipes drew, one dot per network, over each recipe's range (both train with
# SGD; the later zoos mix SGD and Adam).

# %% tags=["nbval-ignore-output"]
zoos = {name: load_or_build(get_recipe(name), device="cpu", progress=False)
        for name in ["mlp-mnist1d", "cnn1d-mnist1d", "inr-digits"]}
cls_zoos = ["mlp-mnist1d", "cnn1d-mnist1d"]
fig = draw_recipe_samples({n: zoos[n].metadata for n in cls_zoos}, {n: get_recipe(n) for n in cls_zoos})
sns.move_legend(fig.axes[-1], "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
plt.show()

# %% tags=["nbval-ignore-output"]
for name, z in zoos.items():
    print(name, z)

# %%
for name, z in zoos.items():
    r = get_recipe(name)
    print(f"{name}: {len(z) == r.num_networks}, checkpoints {list(z.checkpoints)}")
in_range = all(any(lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9) for lo, hi in recipe_ranges(get_recipe(n), col))
               for n in cls_zoos for col in ("lr", "init_scale", "weight_decay") for v in zoos[n].metadata[col])
assert in_range
print("every sampled value inside its recipe's range:", in_range)

# %% [markdown]
# ## Accuracy against hyperparameters
# A zoo is only useful for accuracy prediction if accuracies spread: we vary learning rate and init scale over
# two orders of magnitude and keep early checkpoints.

# %% tags=["nbval-ignore-output"]
from matplotlib.ticker import NullFormatter, ScalarFormatter

md = zoos["mlp-mnist1d"].metadata
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
sns.scatterplot(data=md, x="lr", y="test_acc", hue="activation", ax=axes[0], legend=False).set_xscale("log")
sns.scatterplot(data=md, x="init_scale", y="test_acc", hue="activation", ax=axes[1], legend=False).set_xscale("log")
# the init scale spans one decade: a few plain ticks instead of crowded log labels
lo, hi = md["init_scale"].min(), md["init_scale"].max()
axes[1].set_xticks([t for t in (0.3, 0.5, 1, 2, 3) if lo * 0.9 <= t <= hi * 1.1])
axes[1].xaxis.set_major_formatter(ScalarFormatter())
axes[1].xaxis.set_minor_formatter(NullFormatter())
sns.histplot(data=md, x="test_acc", hue="activation", ax=axes[2])
sns.move_legend(axes[2], "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title_fontsize=8, frameon=False)
axes[0].set(xlabel="learning rate", ylabel="test accuracy")
axes[1].set(xlabel="init scale", ylabel="test accuracy")
axes[2].set(xlabel="test accuracy", ylabel="networks")
fig.suptitle("MLPs on MNIST-1D (colours: activation, as in the legend)")
plt.tight_layout()
plt.show()

# %%
acc = md["test_acc"]
print("10-90% test accuracy spread >= 5 points:", float(acc.quantile(0.9) - acc.quantile(0.1)) >= 0.05)

# %% [markdown]
# ## Training curves over checkpoints

# %% tags=["nbval-ignore-output"]
import pandas as pd

rows = []
for name in cls_zoos:
    z = zoos[name]
    for e in z.checkpoints:
        rows.append(pd.DataFrame({"zoo": name, "epoch": e, "test_acc": z.metadata[f"test_acc@{e}"]}))
curves = pd.concat(rows)
ax = sns.lineplot(data=curves, x="epoch", y="test_acc", hue="zoo", estimator="median", errorbar=("pi", 80))
sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title_fontsize=8, frameon=False)
ax.xaxis.get_major_locator().set_params(integer=True)
ax.set(title="median test accuracy (band: 10-90%)", ylabel="test accuracy")
plt.show()

# %% [markdown]
# ## MLP vs CNN on MNIST-1D
# The two families at the quick recipes' budgets. Both are far from their best: the full recipes
# train 30 epochs on all 4000 samples.

# %% tags=["nbval-ignore-output"]
gap = pd.concat([zoos["mlp-mnist1d"].metadata.assign(family="MLP"),
                 zoos["cnn1d-mnist1d"].metadata.assign(family="CNN")])
ax = sns.boxplot(data=gap, x="family", y="test_acc", hue="activation")
sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title_fontsize=8, frameon=False)
ax.set(ylabel="test accuracy (final checkpoint)", title="MNIST-1D at the quick budget")
plt.show()
med = gap.groupby("family")["test_acc"].median()
for fam, name in [("MLP", "mlp-mnist1d"), ("CNN", "cnn1d-mnist1d")]:
    r, z = get_recipe(name), zoos[name]
    archs = " | ".join(sorted(s.to_text() for s in z.specs))  # ReLU and tanh networks of one architecture
    print(f"{fam}: {archs}: {z.specs[0].num_params} parameters each, {r.epochs} epochs on "
          f"{r.train_size} examples, median test accuracy {med[fam]:.3f}")
print(f"at this budget the {'CNN' if med['CNN'] > med['MLP'] else 'MLP'} zoo has the higher median")

# %% [markdown]
# **Do not read this as "MLPs beat CNNs on MNIST-1D".** If the MLP zoo comes out ahead above, that is a
# budget artefact: the quick CNNs have a few hundred parameters (8 channels) and train a few epochs on
# 1000 examples, while the MLPs have several times more parameters. The MNIST-1D paper was designed so
# that, trained to convergence, CNNs are clearly *better* than MLPs on it (translation of the digit
# pattern is part of the data). A zoo is chosen for the *spread* of its accuracies, which is what a
# metanetwork learns from; the full recipes are one environment variable away.

# %% [markdown]
# ## INRs: one SIREN per digit
# Each SIREN $f_\theta(x) = W_3 \sin(w_0(W_2 \sin(w_0(W_1 x + b_1)) + b_2)) + b_3$ fits one upsampled digit;
# quality is $\mathrm{PSNR} = 10 \log_{10}(1/\mathrm{MSE})$ (pixel values in $[0, 1]$: 20 dB is an error of
# 10% of the pixel range, 40 dB of 1%).

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.zoo.inr import digit_images, render

inr = zoos["inr-digits"]
size = get_recipe("inr-digits").image_size
imgs, labels = digit_images(size)
rec = render(inr.weights(), size)
fig, axes = plt.subplots(2, 8, figsize=(12, 3.2))
for j in range(8):
    axes[0, j].imshow(imgs[j], cmap="gray")
    axes[1, j].imshow(rec[j].clamp(0, 1), cmap="gray")
    axes[0, j].set_title(f"label {labels[j].item()}")
    axes[1, j].set_title(f"{inr.metadata['psnr'][j]:.1f} dB")
for a in axes.flat:
    a.axis("off")

# %%
print("labels match the images:", inr.metadata["label"].tolist() == labels[:len(inr)].tolist())
print("median PSNR > 25 dB:", float(inr.metadata["psnr"].median()) > 25)

# %% [markdown]
# ## The zoos notebooks 06-08 train on
# The zoos above are small teaching zoos. The trained studies of notebooks 06-08 learn from larger
# ones, built like the Small CNN Zoo (Unterthiner et al. 2020), whose 30k runs vary the **training-set
# fraction**, the **optimizer** (SGD or Adam), the learning rate, the init scale and the weight decay,
# and record **checkpoints at epochs 0, 1, 2, 3, then evenly to the end** (published: 0, 1, 2, 3, 20,
# 40, 60, 80, 86). A metanetwork that has seen a few hundred networks memorises them; with thousands it
# starts to generalise, so these zoos are larger at reference size (`reproduce --reference`).
#
# We build them here, once: the later notebooks load them from the same cache. A first build takes
# minutes per zoo on a laptop CPU (the cell prints how long each took); later runs load them in seconds.
# The cell after it lists each zoo, what it is and which notebook trains on it.

# %% tags=["nbval-ignore-output"]
import time

from scalegmn_lite.course.zoo_story import STUDY_ZOOS, accuracy_spread, draw_accuracy_strips, study_zoo_table
from scalegmn_lite.zoo.recipes import get_reference_recipe

study = {}
for entry in STUDY_ZOOS:
    t0 = time.perf_counter()
    study[entry.name] = load_or_build(get_recipe(entry.name), device="cpu", progress=False)
    print(f"{entry.name:22s} ready after {time.perf_counter() - t0:.0f} s "
          f"(its build took {study[entry.name].metadata.attrs.get('build_seconds', float('nan')):.0f} s)")

# %%
for row in study_zoo_table(study).to_dict("records"):
    ref_n = get_reference_recipe(row["zoo"]).num_networks
    print(f"{row['zoo']}: {row['networks']} networks here, {ref_n} at reference size\n"
          f"    architecture: {row['architecture']}\n"
          f"    checkpoints (epochs; INRs: Adam steps): {row['checkpoints']}\n"
          f"    what it is: {row['what it is']}\n    used in notebook: {row['used in notebook']}")
# the counts the text below names
plateau_r, inr_r, views_r = (get_recipe(n) for n in ("cnn1d-plateau-mnist1d", "inr-dws-digits", "inr-views-digits"))
assert plateau_r.epochs == 30 and not plateau_r.train_fractions and plateau_r.lr_schedule == "cosine"
assert inr_r.views == 2 and get_reference_recipe("inr-dws-digits").views == 3
assert views_r.views == 2 and views_r.epochs == 100 and views_r.inr_init == "siren" and inr_r.inr_init == "dwsnets"

# %% [markdown]
# What the three classifier recipes drew, one dot per network over each recipe's range: networks trained
# with Adam (red) draw their learning rate from a range of their own.

# %% tags=["nbval-ignore-output"]
cls_study = ["cnn1d-hp-mnist1d", "cnn1d-plateau-mnist1d", "mlp-plateau-mnist1d"]
fig = draw_recipe_samples({n: study[n].metadata for n in cls_study}, {n: get_recipe(n) for n in cls_study})
sns.move_legend(fig.axes[-1], "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
plt.show()

# %% [markdown]
# Three kinds:
#
# * a **headroom** zoo (`cnn1d-hp-mnist1d`): final networks of very different quality for systematic
#   reasons (too little data, a bad learning rate), which is what accuracy prediction ranks (notebook 06)
#   and what a one-shot operator can learn to fix (notebook 07);
# * **plateau** zoos (`cnn1d-plateau-mnist1d`, `mlp-plateau-mnist1d`): every network sees the whole
#   training set for 30 epochs, its learning rate decayed to 0 (cosine): the final networks have stopped
#   improving, like the published zoo's after 86 epochs (notebook 07 tests the one-shot paper's claims on
#   them);
# * an **INR zoo with views** (`inr-dws-digits`): two SIRENs per digit image, each from its own random
#   initialisation, fitted the way the published MNIST INRs were (notebook 06 classifies them, notebook 08
#   encodes and decodes them). A last section shows why *how* they are initialised matters.
#
# ### How widely the final accuracies spread
# Each dot below is one network's final test accuracy; the black bar spans the middle 80% of a zoo's
# networks (10% to 90% quantile) and the tick marks the median. Colours give the share of the training
# set a headroom network saw.

# %% tags=["nbval-ignore-output"]
draw_accuracy_strips({n: study[n].metadata for n in cls_study})
plt.title("final test accuracy of every network of the classifier zoos")
plt.show()
spreads = {n: accuracy_spread(study[n].metadata).set_index("activation") for n in cls_study}
for n, t in spreads.items():
    print(n)
    print(t.round(3).to_string())

# %% [markdown]
# The headroom CNNs spread over more than 30 points: a network's quality depends on its hyperparameters,
# and strongly on how much data it saw (the colours sort left to right). The plateau CNNs sit higher and
# tighter, because every network trained on all the data until it stopped improving; their spread comes
# from the optimizer, learning rate, init and weight decay alone. None of these zoos has a bulk of networks
# stuck at chance. The next cell checks these words against the numbers.

# %%
hp, pl = spreads["cnn1d-hp-mnist1d"], spreads["cnn1d-plateau-mnist1d"]
hp_md = study["cnn1d-hp-mnist1d"].metadata
by_frac = hp_md.groupby(["activation", "train_fraction"])["test_acc"].median()
checks = {
    "headroom CNNs: 10-90% spread over 30 points for both activations": bool((hp["spread 10-90%"] > 0.3).all()),
    "headroom CNNs: median accuracy rises with the training fraction": all(
        by_frac[a].is_monotonic_increasing for a in ("relu", "tanh")),
    "plateau CNNs: higher median and narrower spread than headroom CNNs": bool(
        (pl["median"] > hp["median"]).all() and (pl["spread 10-90%"] < hp["spread 10-90%"]).all()),
    "no zoo has its 10% quantile within 5 points of chance (0.1)": all(
        bool((spreads[n]["10%"] > 0.15).all()) for n in cls_study),
}
assert all(checks.values()), checks
for k, v in checks.items():
    print(f"{k}: {v}")

# %% [markdown]
# ### Accuracy spread at every checkpoint
# Notebook 06 predicts accuracy from the weights at *every* checkpoint of the headroom zoo's ReLU
# half, so its targets must cover the whole course of training. Each box is the test accuracy of the
# headroom CNNs at one checkpoint, split by optimizer: epoch 0 sits at chance, the spread opens within
# the first epochs, and the final networks still differ by tens of points.

# %% tags=["nbval-ignore-output"]
cz = study["cnn1d-hp-mnist1d"]
long = pd.concat([pd.DataFrame({"epoch": e, "test accuracy": cz.metadata[f"test_acc@{e}"],
                                "optimizer": cz.metadata["optimizer"]}) for e in cz.checkpoints])
fig, ax = plt.subplots(figsize=(11, 3.6))
sns.boxplot(data=long, x="epoch", y="test accuracy", hue="optimizer", ax=ax, fliersize=1,
            palette=OPTIMIZER_COLORS)  # the colours of the hyper-parameter figure above
ax.axhline(0.1, color="gray", ls=":", lw=1, label="chance")
sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title_fontsize=8, frameon=False)
ax.set_title("cnn1d-hp-mnist1d: test accuracy per checkpoint (dotted: chance)")
plt.tight_layout()
plt.show()

# %%
lo, hi = cz.metadata["test_acc"].quantile([0.1, 0.9])
print("10-90% spread of the final networks >= 20 points:", bool(hi - lo >= 0.2))
print("epoch-0 networks within 10 points of chance:", bool(abs(cz.metadata["test_acc@0"].median() - 0.1) < 0.1))

# %% [markdown]
# ### Headroom and plateau: what is left for an optimizer
# Notebook 07 asks whether a learned operator can improve trained networks in one step, and compares it
# with **SGD-150**, 150 more epochs of plain SGD on the training images (the baseline of *Symmetry-Aware
# Fully-Amortized Optimization with Scale Equivariant Graph Metanetworks*, arXiv 2510.08300). How much
# SGD-150 can gain depends on the zoo. Left: the median test accuracy while each zoo trains (the plateau
# zoos flatten at the end, where their learning rate has decayed to 0). Right: SGD-150's gain from the
# final networks, measured by the reference run (`reproduce --reference`; 150 epochs for dozens of
# networks per bar take too long for this notebook) with 95% intervals over networks. The reference run
# also measures the MLP twin of the headroom zoo (`mlp-hp-mnist1d`: the same recipe with MLPs), so both
# families have a headroom and a plateau bar.

# %% tags=["nbval-ignore-output"]
import numpy as np

from scalegmn_lite.course.reference import load_reference

zref = load_reference("zoo")
curves = pd.concat([pd.DataFrame({"zoo": n, "epoch": e, "test accuracy": study[n].metadata[f"test_acc@{e}"]})
                    for n in cls_study for e in study[n].checkpoints])
fig, ax = plt.subplots(1, 2, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1.2, 1]})
sns.lineplot(data=curves, x="epoch", y="test accuracy", hue="zoo", estimator="median", errorbar=("pi", 80), ax=ax[0],
             legend=False)
ax[0].xaxis.get_major_locator().set_params(integer=True)
ax[0].set_title("median test accuracy while the zoo trains (band: 10-90%)")
if zref is not None:
    sg = zref["sgd150_from_final"]
    gain_zoos = ["cnn1d-hp-mnist1d", "cnn1d-plateau-mnist1d", "mlp-hp-mnist1d", "mlp-plateau-mnist1d"]
    palette = dict(zip(cls_study, sns.color_palette()[:3])) | {"mlp-hp-mnist1d": sns.color_palette()[3]}
    for k, n in enumerate(gain_zoos):
        for j, act in enumerate(("relu", "tanh")):
            v = sg[n][act]
            x = j + (k - 1.5) * 0.2
            ax[1].bar(x, 100 * v["gain"], 0.18, color=palette[n], label=n if j == 0 else None)
            ax[1].errorbar(x, 100 * v["gain"], yerr=[[100 * (v["gain"] - v["gain_ci"][0])],
                                                       [100 * (v["gain_ci"][1] - v["gain"])]], color="k", capsize=2)
    ax[1].set_xticks([0, 1], ["ReLU", "tanh"])
    ax[1].set(ylabel="SGD-150 gain (accuracy points)",
              title=f"SGD-150 from the final networks ({zref['sgd150_networks_per_activation']} per bar, reference)")
    ax[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, title="zoo", title_fontsize=8)
last_step = {n: float(study[n].metadata[f"test_acc@{study[n].checkpoints[-1]}"].median()
                    - study[n].metadata[f"test_acc@{study[n].checkpoints[-2]}"].median()) for n in cls_study}
# "the plateau zoos flatten at the end": under a point over their last checkpoint interval, less than the headroom zoo
assert max(last_step["cnn1d-plateau-mnist1d"], last_step["mlp-plateau-mnist1d"]) < min(0.01,
                                                                                      last_step["cnn1d-hp-mnist1d"])
handles = [plt.Line2D([], [], color=c) for c in sns.color_palette()[:3]]
ax[0].legend(handles, cls_study, fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.2), ncol=3, frameon=False)
plt.tight_layout()
plt.show()

# %% tags=["nbval-ignore-output"]
from IPython.display import Markdown, display

if zref is not None:
    pub = zref["published_sgd150_gain"]
    st = {c["id"]: c["status"] for c in zref["claims"]}

    def gains(n):
        return " and ".join(f"{100 * sg[n][a]['gain']:+.1f} ({a})" for a in ("relu", "tanh"))

    prefix = "plateau-less-headroom-"
    less = {k.removeprefix(prefix): v for k, v in st.items() if k.startswith(prefix)}
    verdict = ("holds for every family and activation (95% intervals over networks)"
               if set(less.values()) == {"holds"} else
               "is decided per family and activation: " + ", ".join(f"{k} {v}" for k, v in less.items()))
    display(Markdown(
        f"In points of test accuracy, SGD-150 gains {gains('cnn1d-hp-mnist1d')} from the headroom CNNs and "
        f"{gains('cnn1d-plateau-mnist1d')} from the plateau CNNs; {gains('mlp-hp-mnist1d')} from the headroom "
        f"MLPs and {gains('mlp-plateau-mnist1d')} from the plateau MLPs. That plateau networks leave less "
        f"to gain {verdict}. The one-shot paper reports {100 * pub['cnn1d']:+.1f} points on its CNN zoo (the "
        f"Small CNN Zoo: 2-D CNNs on CIFAR-10) and {100 * pub['mlp']:+.1f} on its MLP zoo, a different data set "
        "from our MNIST-1D networks: compare the pattern (less left on a plateau), not the levels."))
    assert all(sg[n][a]["gain"] > sg[n.replace("hp", "plateau")][a]["gain"]
               for n in ("cnn1d-hp-mnist1d", "mlp-hp-mnist1d") for a in ("relu", "tanh"))

# %% [markdown]
# ### The INR zoo: two independent fits of every image
# Each digit image of `inr-dws-digits` gets two SIRENs (three at reference size), each from its own seed.
# The two renderings look alike, the weights do not: each fit starts from its own random weights. A
# classifier must therefore be split by **image**: with a split by network, one view of a test image
# would sit in the training set.

# %% tags=["nbval-ignore-output"]
vz = study["inr-dws-digits"]
vrec_size = get_recipe("inr-dws-digits").image_size
vimgs, _ = digit_images(vrec_size)
vrec = render(vz.weights()[:8], vrec_size)
fig, axes = plt.subplots(3, 4, figsize=(7, 5.4))
for j in range(4):
    axes[0, j].imshow(vimgs[j], cmap="gray")
    axes[0, j].set_title(f"image {j}")
    for v in range(2):
        axes[1 + v, j].imshow(vrec[2 * j + v].clamp(0, 1), cmap="gray")
        axes[1 + v, j].set_title(f"view {v}: {vz.metadata['psnr'][2 * j + v]:.1f} dB", fontsize=9)
for a in axes.flat:
    a.axis("off")
plt.tight_layout()
plt.show()
print("PSNR of all INRs (dB), 10% / median / 90%:",
      " / ".join(f"{q:.1f}" for q in vz.metadata["psnr"].quantile([0.1, 0.5, 0.9])))

# %%
w0 = vz.weights(checkpoint=0).flatten()
print("two views of image 0 start from different weights:", not torch.equal(w0[0], w0[1]))
vparts = vz.split((0.6, 0.2, 0.2), seed=SEED, by="image_index")
img_sets = [set(p.metadata["image_index"]) for p in vparts]
print("INRs per part:", [len(p) for p in vparts], "| no image in two parts:",
      sum(map(len, img_sets)) == len(set().union(*img_sets)))
print("median PSNR above 30 dB:", bool(vz.metadata["psnr"].median() > 30))

# %% [markdown]
# ### Why the init of an INR decides whether a metanetwork can read it
# The recipe library has a twin of `inr-dws-digits`: `inr-views-digits`, the same images, two views each,
# fitted from **Sitzmann's SIREN init** (the init of the SIREN paper) for 100 Adam steps. Its INRs fit
# their images more exactly, yet notebook 06, which fits the same images from Sitzmann's init as a
# control, finds that ScaleGMN cannot tell their digits apart. We do not build that zoo here (no later
# notebook trains on it); we fit its first 64 INRs again, and the first 64 of `inr-dws-digits` (same
# images, same seeds), recording the PSNR along the way, and look at what fitting does to the first
# layer. A refit with the same seeds, images and steps gives the zoo's own INRs (the cell after the
# figure checks this on `inr-dws-digits`, which we have built).
#
# A SIREN's first layer is a set of 32 sine waves over the image, $\sin(w_0 (W_1 x + b_1))$: row $j$ of
# $w_0 W_1$ is the $j$-th wave's frequency. The two inits differ in where these waves start:
#
# * **Sitzmann's init** draws the first layer's weights up to $1/\text{fan-in}$, so with $w_0 = 30$ the
#   waves start at up to about 5 cycles across the image: a random set of fine patterns per INR;
# * **the DWSNets init** (how the published MNIST INRs were fitted) draws every layer like the hidden
#   ones, $\sqrt{6/\text{fan-in}}/w_0$, with zero biases: every wave starts below one cycle across the image.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.course.zoo_story import (
    PSNR_CEILING,
    draw_init_contrast,
    first_layer_frequencies,
    layer_change,
    psnr_by_step,
    refit_inrs,
)

sitz_recipe, dws_recipe = get_recipe("inr-views-digits"), get_recipe("inr-dws-digits")
steps = sorted({0, 10, 25, 50, sitz_recipe.epochs, 150, 200, dws_recipe.epochs})
refit = {"Sitzmann init": refit_inrs(sitz_recipe, 64, steps), "DWSNets init": refit_inrs(dws_recipe, 64, steps)}
freqs = {k: (first_layer_frequencies(z, 0)[:2], first_layer_frequencies(z, steps[-1])[:2]) for k, z in refit.items()}
draw_init_contrast({k: psnr_by_step(z) for k, z in refit.items()}, freqs,
                   stops={sitz_recipe.epochs: "inr-views-digits stops", dws_recipe.epochs: "inr-dws-digits"})
plt.suptitle("same images, same seeds, two inits: the fit (left) and the first layer of the two INRs of image 0")
plt.tight_layout()
plt.show()

# %% tags=["nbval-ignore-output"]
inv = load_reference("invariant")
S, D = (refit[k].metadata for k in ("Sitzmann init", "DWSNets init"))
ch = {k: layer_change(z) for k, z in refit.items()}
fmax = {k: [float(np.abs(first_layer_frequencies(z, c)).max()) for c in (0, steps[-1])] for k, z in refit.items()}
n_s, n_d = sitz_recipe.epochs, dws_recipe.epochs
n_twin = get_reference_recipe("inr-dws-digits").num_networks // get_reference_recipe("inr-dws-digits").views
at_ceiling = float((S[f"psnr@{n_d}"] >= PSNR_CEILING - 1e-6).mean())
text = [
    f"**Fit.** With Sitzmann's init the INRs reach a median of {S[f'psnr@{n_s}'].median():.1f} dB after "
    f"{n_s} steps, where `inr-views-digits` stops (10-90%: {S[f'psnr@{n_s}'].quantile(0.1):.1f} to "
    f"{S[f'psnr@{n_s}'].quantile(0.9):.1f} dB), and after {n_d} steps, where `inr-dws-digits` and notebook 06's "
    f"Sitzmann-init control stop, {at_ceiling:.0%} of them sit at {PSNR_CEILING:.0f} dB, the ceiling of the PSNR "
    "computation (it floors the squared error at $10^{-12}$): they reproduce their image to the last bits of "
    "float32. That is why notebook 06 reports "
    + (f"{inv['inr_evidence']['psnr']['siren']:.1f} dB (the mean over its {n_twin} Sitzmann-init INRs, one per "
       "digit image) " if inv is not None else "a PSNR near the ceiling ")
    + f"for the init whose `inr-views-digits` INRs sit near {S[f'psnr@{n_s}'].median():.0f} dB: {n_d} fitting "
    f"steps instead of {n_s}, not a different init. "
    f"From the DWSNets init the same images and seeds reach {D[f'psnr@{n_d}'].median():.1f} dB after {n_d} steps, "
    f"a typical error of {10 ** (-D[f'psnr@{n_d}'].median() / 20):.1%} of the pixel range: invisible at a glance, "
    "far from exact.",
    f"**First layer.** Fitting moves Sitzmann's first layer by {ch['Sitzmann init'][0]:.0%} of its initial size "
    f"(median over INRs) and the DWSNets one by {ch['DWSNets init'][0]:.0%}; the second and third layers change "
    f"by {ch['Sitzmann init'][1]:.1f} and {ch['Sitzmann init'][2]:.1f} times their initial size from Sitzmann's "
    f"init, {ch['DWSNets init'][1]:.1f} and {ch['DWSNets init'][2]:.1f} times from the DWSNets one. The fastest "
    f"wave of Sitzmann's first layer runs through {fmax['Sitzmann init'][0]:.1f} cycles across the image before "
    f"fitting and {fmax['Sitzmann init'][1]:.1f} after; "
    f"the DWSNets one through {fmax['DWSNets init'][0]:.2f} before and {fmax['DWSNets init'][1]:.2f} after.",
]
display(Markdown("\n\n".join(text)))
assert S[f"psnr@{n_s}"].median() < S[f"psnr@{n_d}"].median() and at_ceiling > 0.5  # 06's level: more steps
assert D[f"psnr@{n_d}"].median() < S[f"psnr@{n_s}"].median()  # DWSNets fits worse, at either length
assert ch["Sitzmann init"][0] < 0.15 < 0.3 < ch["DWSNets init"][0]  # "barely moves" vs "is learned"
assert fmax["DWSNets init"][0] < 1 < 4 < fmax["Sitzmann init"][0] < 5  # "below one cycle" vs "about 5 cycles"
assert first_layer_frequencies(refit["DWSNets init"]).shape[1] == 32  # "32 sine waves"
# the refits are the zoo's own INRs: at the zoo's last step they match its stored PSNR
assert np.allclose(D[f"psnr@{n_d}"], vz.metadata["psnr"][:64], atol=0.05)

# %% [markdown]
# **Why Sitzmann's INRs are hard to read.** Each of them keeps the random fine waves it started with and
# writes its image as a weighted sum of *those* waves. Two INRs of the same digit, or two views of the
# same image, start from different waves (the right-hand panels, each on its own scale: hollow dots
# before fitting, filled after), so the same digit is spelled in a different random vocabulary every
# time; a metanetwork would first have to work out each INR's vocabulary before it could read the digit.
# With the DWSNets init every INR starts from slow waves (all below one cycle across the image), and
# fitting has to *shape* the first layer to the strokes of its digit, so the digit leaves its mark in
# the weights themselves. The price is a less exact fit.
# Notebook 06 trains ScaleGMN on both kinds (the same images, one INR per image):

# %%
if inv is not None:
    pt = {p["label"]: p["accuracy"]["mean"] for p in inv["inr_evidence"]["points"]}
    print(f"held-out digits named by ScaleGMN (reference run, chance 0.1): {pt['1 view']:.2f} from DWSNets-init INRs, "
          f"{pt['1 view, Sitzmann init']:.3f} from Sitzmann-init INRs")
    assert pt["1 view, Sitzmann init"] < 0.15 < 0.8 < pt["1 view"]

# %% [markdown]
# ## Splits by network
# Train/val/test splits are by network, so no network is seen in two splits. The figure: one column
# per network of the headroom CNN zoo, one row per checkpoint, coloured by the part it landed in; every
# column has one colour, so all checkpoints of a network go to the same part (notebook 06 splits the
# ReLU half the same way).

# %% tags=["nbval-ignore-output"]
train, val, test = cz.split((0.7, 0.15, 0.15), seed=SEED)
draw_split_membership([train, val, test], ("train", "val", "test"))
plt.show()

# %%
member = split_membership([train, val, test])  # raises if a network sits in two parts
assert (member >= 0).all()
print(len(train), len(val), len(test), set(train.metadata["net"]).isdisjoint(test.metadata["net"]))
print(train.where(activation="relu").weights())

# %% [markdown]
# ## Summary
# * $N$ networks train in one batched computation and match a per-network `torch.optim` loop.
# * Recipes are deterministic and cached; zoos keep hyperparameters and per-checkpoint metrics.
# * The zoos of notebooks 06-08 are built here and reused there: a headroom CNN zoo whose final
#   accuracies spread widely (built like the Small CNN Zoo: fraction, optimizer, lr, init, weight decay;
#   checkpoints 0, 1, 2, 3, then evenly), plateau zoos whose networks have stopped improving, and an INR
#   zoo with two independent views per image, split by image.
# * How an INR is initialised decides whether its weights can be read: Sitzmann's init fits more exactly
#   but keeps each INR's own random first layer; the DWSNets init makes fitting shape the first layer.
#
# **Quick check.** Why split by *network* and not by (network, checkpoint) pair?
#
# <details><summary>Answer</summary>
#
# The checkpoints of one network are strongly correlated (same init, same data order). With a split
# by pair, a test example's sibling checkpoints would sit in the training set and a metanetwork
# could interpolate between them instead of generalising to unseen networks.
# </details>
#
# ## Exercises
#
# **1.** Write the batched forward pass of $B$ one-hidden-layer ReLU MLPs from scratch:
# `forward(W1, b1, W2, b2, x)` with `W1 [B, h, n]`, `b1 [B, h]`, `W2 [B, o, h]`, `b2 [B, o]` and inputs
# `x [N, n]` shared by all networks, returning logits `[B, N, o]`.
#
# *Hint:* `torch.baddbmm(bias, a, b)` computes `bias + a @ b` for a batch of matrices; expand `x` to
# `[B, N, n]` first.
#
# <details><summary>Solution</summary>
#
# ```python
# def forward(W1, b1, W2, b2, x):
#     h = torch.relu(torch.baddbmm(b1[:, None], x.expand(W1.shape[0], -1, -1), W1.transpose(1, 2)))
#     return torch.baddbmm(b2[:, None], h, W2.transpose(1, 2))
# ```
# </details>

# %%
from scalegmn_lite.course.zoos import check_accuracy_spread, check_batched_mlp, check_psnr


def forward(W1, b1, W2, b2, x):
    raise NotImplementedError


check_batched_mlp(forward)

# %% [markdown]
# **2.** Add a recipe with `sigmoid` networks and compare its accuracy spread. How does the spread of
# test accuracy change if you drop checkpoint 1? First write `spread(metadata, checkpoints)`: the
# 10-90% spread (as in the accuracy section above) of the test accuracies of every network at every
# checkpoint in `checkpoints`, pooled into one sample (the columns `test_acc@{e}`).
#
# *Hint:* `pd.concat([metadata[f"test_acc@{e}"] for e in checkpoints])` pools the columns; then
# `quantile(0.9) - quantile(0.1)`. For the recipe, `dataclasses.replace(get_recipe("mlp-mnist1d"),
# name="mlp-sigmoid-mnist1d", activations=("sigmoid",))` keeps everything but the activation (and the
# new name keeps its cache apart); building it takes about half a minute in quick mode.
#
# <details><summary>Solution</summary>
#
# ```python
# def spread(metadata, checkpoints):
#     pooled = pd.concat([metadata[f"test_acc@{e}"] for e in checkpoints])
#     return float(pooled.quantile(0.9) - pooled.quantile(0.1))
#
# from dataclasses import replace
# sig = load_or_build(replace(get_recipe("mlp-mnist1d"), name="mlp-sigmoid-mnist1d", activations=("sigmoid",)),
#                     device="cpu", progress=False)
# for name, z in [("relu/tanh", zoos["mlp-mnist1d"]), ("sigmoid", sig)]:
#     cps = list(z.checkpoints)
#     print(name, spread(z.metadata, cps), spread(z.metadata, [e for e in cps if e != 1]))
# ```
# At the quick budget the sigmoid networks learn slowly: their median test accuracy stays near chance
# (0.1) through checkpoint 2, so the pooled spread is much smaller than the relu/tanh zoo's (most
# points sit at chance). Dropping checkpoint 1 does not shrink the 10-90% range, it even widens it a
# little: checkpoint 0 pins the low end at chance, and without the early points a larger share of the
# pool is final accuracies, which lifts the 90% quantile. What early checkpoints add (for networks that
# learn early) is accuracies between chance and the final ones, which a regressor needs, not a wider
# range.
# </details>

# %%
def spread(metadata, checkpoints):
    raise NotImplementedError


check_accuracy_spread(spread)

# %% [markdown]
# **3.** PSNR from scratch: `psnr(images, targets)` for `[B, H, W]` images in $[0, 1]$, one value per
# image. Then fit the INRs at 28x28 (`image_size=28`): how does the PSNR change?
#
# *Hint:* average the squared error over the pixels of each image, not over the whole batch.
#
# <details><summary>Solution</summary>
#
# ```python
# def psnr(images, targets):
#     return 10 * torch.log10(1 / (images - targets).pow(2).flatten(1).mean(1))
# ```
# </details>

# %%
def psnr(images, targets):
    raise NotImplementedError


check_psnr(psnr)
