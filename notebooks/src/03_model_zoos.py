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

# %%
from scalegmn_lite.common.config import notebook_setup

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

# %%
import matplotlib.pyplot as plt
import seaborn as sns
import torch

from scalegmn_lite.course.zoo_figures import (
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
plt.tight_layout()
plt.show()

# %%
for family, diff in final_diff.items():
    print(f"{family:7s} max |batched - loop| <= 1e-5: {diff <= 1e-5}")

# %% [markdown]
# ## Zoos from recipes
# A recipe fixes the data set, architectures, activations and log-uniform ranges of learning rate, init
# scale and weight decay; network $i$ draws its hyperparameters from a generator seeded by (recipe seed, $i$),
# so the same recipe gives bit-identical weights. `load_or_build` caches zoos by recipe hash. The
# figure: what three recipes drew, one dot per network, over each recipe's range (`cnn2d-digits`
# mixes SGD and Adam, with a learning-rate range each; the INR recipe fixes all three values).

# %% tags=["nbval-ignore-output"]
zoos = {name: load_or_build(get_recipe(name), device="cpu", progress=False)
        for name in ["mlp-mnist1d", "cnn1d-mnist1d", "cnn2d-digits", "inr-digits"]}
cls_zoos = ["mlp-mnist1d", "cnn1d-mnist1d", "cnn2d-digits"]
draw_recipe_samples({n: zoos[n].metadata for n in cls_zoos}, {n: get_recipe(n) for n in cls_zoos})
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
sns.scatterplot(data=md, x="lr", y="test_acc", hue="activation", ax=axes[0]).set_xscale("log")
sns.scatterplot(data=md, x="init_scale", y="test_acc", hue="activation", ax=axes[1]).set_xscale("log")
# the init scale spans one decade: a few plain ticks instead of crowded log labels
lo, hi = md["init_scale"].min(), md["init_scale"].max()
axes[1].set_xticks([t for t in (0.3, 0.5, 1, 2, 3) if lo * 0.9 <= t <= hi * 1.1])
axes[1].xaxis.set_major_formatter(ScalarFormatter())
axes[1].xaxis.set_minor_formatter(NullFormatter())
sns.histplot(data=md, x="test_acc", hue="activation", ax=axes[2])
axes[0].set(xlabel="learning rate", ylabel="test accuracy")
axes[1].set(xlabel="init scale", ylabel="test accuracy")
axes[2].set(xlabel="test accuracy", ylabel="networks")
fig.suptitle("MLPs on MNIST-1D")
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
for name in ["mlp-mnist1d", "cnn1d-mnist1d", "cnn2d-digits"]:
    z = zoos[name]
    for e in z.checkpoints:
        rows.append(pd.DataFrame({"zoo": name, "epoch": e, "test_acc": z.metadata[f"test_acc@{e}"]}))
curves = pd.concat(rows)
sns.lineplot(data=curves, x="epoch", y="test_acc", hue="zoo", estimator="median", errorbar=("pi", 80))
plt.title("median test accuracy (band: 10-90%)")
plt.ylabel("test accuracy")
plt.show()

# %% [markdown]
# ## Zoos at the papers' scale, trained like the Small CNN Zoo
# The zoos above are small teaching zoos. The ones the trained studies of chapters 06-07 learn from are
# built like the Small CNN Zoo (Unterthiner et al. 2020), whose 30k runs vary the **training-set
# fraction**, the **optimizer** (SGD or Adam), the learning rate, the init scale and the weight decay,
# and record **checkpoints at epochs 0, 1, 2, 3, then evenly to the end** (published: 0, 1, 2, 3, 20,
# 40, 60, 80, 86). Ours hold 1024 networks per zoo in quick mode and 4096 at reference size
# (`reproduce --reference`). A metanetwork that has seen a few hundred networks memorises them; with
# thousands it starts to generalise (chapter 07 measures this).
#
# Three kinds, each for a study:
#
# * **headroom zoos** (`cnn1d-hp-mnist1d`, `mlp-hp-mnist1d`, `cnn2d-digits`, ...): final networks of
#   very different quality for systematic reasons (too little data, a bad learning rate), which is what
#   accuracy prediction ranks and a one-shot operator can learn to fix;
# * **plateau zoos** (`cnn1d-plateau-mnist1d`, `mlp-plateau-mnist1d`): every network sees the whole
#   training set, 30 epochs, with its learning rate decayed to 0 (cosine): the final networks have
#   stopped improving, like the published zoo's after 86 epochs;
# * **INR zoos with views** (`inr-views-digits`): several SIRENs per digit image, each from its own
#   random initialisation, as the published MNIST INRs (the shared-initialisation INR zoo of chapter 08
#   is for the autoencoder: weights that vary smoothly with the image are what a decoder can learn).

# %% tags=["nbval-ignore-output"]
big = {name: load_or_build(get_recipe(name), device="cpu", progress=False)
       for name in ["cnn2d-digits", "mlp-hp-mnist1d", "mlp-plateau-mnist1d", "inr-views-digits"]}
for name, z in big.items():
    secs = z.metadata.attrs.get("build_seconds")
    print(f"{name:20s} " + (f"built in {secs:.0f} s" if secs is not None else "loaded from the cache"))

# %%
for name, z in big.items():
    print(f"{name:20s} {len(z)} networks, checkpoints {list(z.checkpoints)}")

# %% [markdown]
# ### Accuracy spread at every checkpoint
# Accuracy prediction needs targets across the whole range of training. Each box is the test accuracy
# of the 1024 CNNs of `cnn2d-digits` at one checkpoint, split by optimizer: epoch 0 sits at chance, the
# spread opens within the first epochs, and the final networks still differ by tens of points (small
# training fractions and bad learning rates stay low).

# %% tags=["nbval-ignore-output"]
cz = big["cnn2d-digits"]
long = pd.concat([pd.DataFrame({"epoch": e, "test accuracy": cz.metadata[f"test_acc@{e}"],
                                "optimizer": cz.metadata["optimizer"],
                                "training fraction": cz.metadata["train_fraction"]}) for e in cz.checkpoints])
fig, ax = plt.subplots(1, 2, figsize=(13, 3.6))
sns.boxplot(data=long, x="epoch", y="test accuracy", hue="optimizer", ax=ax[0], fliersize=1)
ax[0].axhline(0.1, color="gray", ls=":", lw=1)
ax[0].set_title("cnn2d-digits: test accuracy per checkpoint (dotted: chance)")
final = cz.metadata.assign(fraction=cz.metadata["train_fraction"].map("{:g}".format))
sns.boxplot(data=final, x="fraction", y="test_acc", hue="activation", ax=ax[1], fliersize=1,
            order=[f"{v:g}" for v in sorted(cz.metadata["train_fraction"].unique())])
ax[1].set(xlabel="training fraction", ylabel="final test accuracy", title="final networks by training fraction")
plt.tight_layout()
plt.show()

# %%
lo, hi = cz.metadata["test_acc"].quantile([0.1, 0.9])
print("10-90% spread of the final networks >= 20 points:", bool(hi - lo >= 0.2))
print("epoch-0 networks within 10 points of chance:", bool(abs(cz.metadata["test_acc@0"].median() - 0.1) < 0.1))

# %% [markdown]
# ### Headroom and plateau: what is left for an optimizer
# The baseline of *Symmetry-Aware Fully-Amortized Optimization with Scale Equivariant Graph
# Metanetworks* (arXiv 2510.08300), **SGD-150** (150 more epochs of plain SGD on the training images),
# gains +6.6 points from the Small CNN Zoo's final networks and +2.2 on its MLP twin (its Table 1). We
# continue 8 tanh and 8 ReLU MLPs of each MLP zoo with SGD-150 here (seconds); the `zoo` experiment of
# `reproduce` does it for 8 (quick) or 64 (reference) networks per activation of both the MLP and the
# CNN zoos, with intervals.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.experiments.zoo import sgd150_gain

gains = {name: sgd150_gain(big[name], get_recipe(name), per_activation=8, seed=SEED, device="cpu")
         for name in ["mlp-hp-mnist1d", "mlp-plateau-mnist1d"]}
rows = [{"zoo": name, "activation": act, "start": v["start"], "after SGD-150": v["end"], "gain": v["gain"]}
        for name, g in gains.items() for act, v in g.items()]
table = pd.DataFrame(rows).round(3)
curves = pd.concat([pd.DataFrame({"zoo": name, "epoch": e, "test accuracy": big[name].metadata[f"test_acc@{e}"]})
                    for name in gains for e in big[name].checkpoints])
fig, ax = plt.subplots(1, 2, figsize=(12, 3.4))
sns.lineplot(data=curves, x="epoch", y="test accuracy", hue="zoo", estimator="median", errorbar=("pi", 80),
             ax=ax[0])
ax[0].set_title("median test accuracy while the zoo trains (band: 10-90%)")
sns.barplot(data=table, x="activation", y="gain", hue="zoo", ax=ax[1])
ax[1].axhline(0.022, color="gray", ls="--", lw=1, label="published MLP gain")
ax[1].set(ylabel="test-accuracy gain of SGD-150", title="SGD-150 from the final networks (8 per bar)",
          ylim=(0, 1.4 * table["gain"].max()))
ax[1].legend(fontsize=8, loc="upper left")
plt.tight_layout()
plt.show()
table

# %% [markdown]
# The plateau zoo's curve flattens at the end (its learning rate has decayed to 0): its networks have
# stopped improving *with their own optimizer*. SGD-150 still moves them, by retraining on the whole
# training set with another learning rate, but the headroom zoo, where a quarter of the networks saw 10%
# of the data, leaves it much more to gain. The committed reference run's figures (64 networks per
# activation, CNNs too, with intervals) are in `results/reference/zoo.json` under `sgd150_from_final`.

# %% [markdown]
# ### INRs with views: several independent fits of one image
# Each digit image gets two SIRENs (quick; four at reference size), each from its own seed. The two
# renderings look alike, the weights do not: the same image is written in the basis of two different
# random initialisations. A classifier must therefore be split by **image**: with a split by network,
# one view of a test image would sit in the training set.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.zoo.inr import digit_images, render

vz = big["inr-views-digits"]
vsize = get_recipe("inr-views-digits").image_size
vimgs, _ = digit_images(vsize)
vrec = render(vz.weights()[:8], vsize)
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

# %%
w0 = vz.weights(checkpoint=0).flatten()
print("two views of image 0 start from different weights:", not torch.equal(w0[0], w0[1]))
vparts = vz.split((0.6, 0.2, 0.2), seed=SEED, by="image_index")
img_sets = [set(p.metadata["image_index"]) for p in vparts]
print("INRs per part:", [len(p) for p in vparts], "| no image in two parts:",
      sum(map(len, img_sets)) == len(set().union(*img_sets)))

# %% [markdown]
# ## MLP vs CNN on MNIST-1D
# The two families at the quick recipes' budgets. Both are far from their best: the full recipes
# train 30 epochs on all 4000 samples.

# %% tags=["nbval-ignore-output"]
gap = pd.concat([zoos["mlp-mnist1d"].metadata.assign(family="MLP"),
                 zoos["cnn1d-mnist1d"].metadata.assign(family="CNN")])
ax = sns.boxplot(data=gap, x="family", y="test_acc", hue="activation")
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
# quality is $\mathrm{PSNR} = 10 \log_{10}(1/\mathrm{MSE})$.

# %% tags=["nbval-ignore-output"]
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
# ## Splits by network
# Train/val/test splits are by network, so no network is seen in two splits. The figure: one column
# per network of `cnn2d-digits`, one row per checkpoint, coloured by the part it landed in; every
# column has one colour, so all checkpoints of a network go to the same part.

# %% tags=["nbval-ignore-output"]
train, val, test = zoos["cnn2d-digits"].split((0.7, 0.15, 0.15), seed=SEED)
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
# * INR zoos store one SIREN per digit with label and PSNR; the classification zoo has several
#   independent views per image and is split by image.
# * The studies' zoos are built like the Small CNN Zoo (fraction, optimizer, lr, init, weight decay;
#   checkpoints 0, 1, 2, 3, then evenly), 1024 networks in quick mode and 4096 at reference size; the
#   plateau zoos' final networks have stopped improving.
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
