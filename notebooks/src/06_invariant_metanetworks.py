# %% [markdown]
# # 06 · Invariant metanetworks
#
# An *invariant* metanetwork $f$ maps a network's weights $\theta$ to a prediction that must not
# depend on which member of the gauge orbit we were handed:
# $$f(g \cdot \theta) = f(\theta) \qquad \text{for every } g \in G = \prod_l P_l \ltimes Q_l .$$
# Two tasks from the literature, on zoos we trained in notebook 03:
#
# * **accuracy prediction**: read a ReLU CNN's weights, predict its test accuracy (scored by
#   Kendall's $\tau$, the rank agreement between predictions and truth);
# * **INR classification**: read a SIREN fitted to a digit image, say which digit it draws.
#
# Models: ScaleGMN (forward and bidirectional), the symmetry-broken GMN (permutations only, with
# input normalisation), StatNN (per-layer weight statistics into an MLP) and an MLP on the
# flattened weights, the last two also with random gauge augmentation.

# %%
from scalegmn_lite.common.config import notebook_setup

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from scalegmn_lite import GaugeElement
from scalegmn_lite.experiments.invariant import FULL as FULL_SETTINGS
from scalegmn_lite.experiments.invariant import QUICK as QUICK_SETTINGS
from scalegmn_lite.experiments.invariant import cnn_relu_zoo, inr_zoo, summarize
from scalegmn_lite.nn.baselines import StatNN, layer_statistics
from scalegmn_lite.nn.checks import check_invariance
from scalegmn_lite.tasks.invariant.fit import FitConfig, predict
from scalegmn_lite.tasks.invariant.study import accuracy_task, compare, inr_task, make_model

torch.set_num_threads(2)
S = FULL_SETTINGS if FULL else QUICK_SETTINGS

# %% [markdown]
# ## The data: zoos as (weights, target) pairs
# Every ReLU CNN of the `cnn2d-digits` zoo contributes one example per checkpoint (its weights
# there and its test accuracy there), which spreads the targets from chance level to well trained.
# We split by *network*, so no network is seen both in training and in test.

# %% tags=["nbval-ignore-output"]
acc_data = accuracy_task(cnn_relu_zoo(DEVICE), seed=SEED)
inr_data = inr_task(inr_zoo(DEVICE), seed=SEED)

# %%
print(acc_data.spec.to_text(), acc_data.sizes())
print(inr_data.spec.to_text(), inr_data.sizes())

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(1, 2, figsize=(9, 3))
sns.histplot(acc_data.train[1].cpu().numpy(), bins=20, ax=ax[0])
ax[0].set(title="target: CNN test accuracy", xlabel="accuracy")
sns.countplot(x=inr_data.train[1].cpu().numpy(), ax=ax[1])
ax[1].set(title="target: digit drawn by the INR", xlabel="digit")
plt.tight_layout()

# %% [markdown]
# ## From scratch: why weight statistics are not enough
# StatNN feeds per-layer statistics (mean, variance, quantiles of weights and biases) to an MLP.
# Statistics ignore the order of neurons, so permutations cannot fool them. Scalings can: scaling a
# hidden ReLU neuron's incoming weights by $q$ and its outgoing weights by $1/q$ leaves the function
# alone but moves every statistic. Let us check both facts on one CNN by hand.

# %%
ws = acc_data.test[0][:4].to(dtype=torch.float64)
gen = torch.Generator().manual_seed(SEED)
perm_only = GaugeElement.sample(ws.spec, 4, generator=gen, scale=False, dtype=torch.float64)
full = GaugeElement.sample(ws.spec, 4, generator=gen, dtype=torch.float64)
stats = layer_statistics(ws)
print("statistics moved by a permutation:", bool((layer_statistics(perm_only.apply(ws)) - stats).abs().max() > 1e-9))
print("statistics moved by a scaling:    ", bool((layer_statistics(full.apply(ws)) - stats).abs().max() > 1e-3))
x = torch.randn(16, *ws.spec.input_shape, dtype=torch.float64)
print("same functions after the scaling: ", torch.allclose(full.apply(ws)(x), ws(x), atol=1e-9))

# %% [markdown]
# ScaleGMN is invariant by construction (its views of hidden vertices are $x/\lVert x\rVert$ for
# positive scalings). The library's checker samples random gauge elements and reports the largest
# output change in float64; a StatNN of the same task fails the same check.

# %%
torch.manual_seed(SEED)
scalegmn, _ = make_model("scalegmn", acc_data.spec, 1, S["hidden"], S["layers"])
statnn = StatNN(acc_data.spec, 1).fit_normalization(acc_data.train[0])
r_s = check_invariance(scalegmn, ws, n_samples=4)
r_b = check_invariance(statnn, ws, n_samples=4)
print(f"ScaleGMN invariant (float64): {r_s.ok()}   StatNN invariant: {r_b.ok()}")
assert r_s.ok() and not r_b.ok()

# %% [markdown]
# ## Training every model
# Same optimiser for all (AdamW, warm-up then cosine decay, gradient clipping at 10), model selection
# on the validation networks, score on the held-out test networks. Quick mode trains small models
# for a few epochs on one seed; `SCALEGMN_LITE_FULL=1` trains bigger ones on three seeds.

# %% tags=["nbval-ignore-output"]
fit_cfg = FitConfig(epochs=S["epochs"], batch_size=32, lr=2e-3)
inr_cfg = FitConfig(epochs=S["inr_epochs"], batch_size=32, lr=2e-3)
acc_runs, acc_models = compare(acc_data, S["models"], S["seeds"], fit_cfg, S["hidden"], S["layers"], DEVICE,
                               return_models=True)
inr_runs = compare(inr_data, S["inr_models"], S["seeds"], inr_cfg, S["hidden"], S["layers"], DEVICE)
runs = pd.concat([acc_runs, inr_runs], ignore_index=True)
summary = summarize(runs)
summary

# %% [markdown]
# The invariance promise, checked on the trained models: the gauge shift is the largest relative
# change of a prediction when each test network is replaced by a random gauge transform of itself.

# %%
shift = runs.groupby("model")["gauge_shift"].max()
assert (shift[[m for m in shift.index if m.startswith("scalegmn")]] < 1e-4).all()
assert (shift[[m for m in shift.index if not m.startswith("scalegmn")]] > 1e-4).all()
print("models whose prediction moves under a gauge transform:", sorted(shift[shift > 1e-4].index))

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
for a, (task, label) in zip(ax, [("accuracy-prediction", "Kendall tau"), ("inr-classification", "accuracy")]):
    d = runs[runs.task == task]
    sns.barplot(data=d, x="model", y="test_score", ax=a, errorbar="sd")
    a.set(title=task, ylabel=label, xlabel="")
    a.tick_params(axis="x", rotation=30)
plt.tight_layout()

# %% [markdown]
# ## One network, two gauges
# Replace test networks by gauge-transformed copies: they compute exactly the same functions, so
# their accuracy is the same. A trained StatNN changes its answer; a trained ScaleGMN does not.

# %% tags=["nbval-ignore-output"]
models = {name: acc_models[(name, S["seeds"][0])] for name in ("scalegmn", "statnn")}  # trained above
test_ws, test_y = acc_data.test
g = GaugeElement.sample(test_ws.spec, test_ws.batch_size, generator=torch.Generator().manual_seed(1),
                        max_log_scale=1.0)
rows = []
for name, m in models.items():
    before, after = predict(m, test_ws).squeeze(-1), predict(m, g.apply(test_ws)).squeeze(-1)
    rows += [{"model": name, "original": float(b), "transformed": float(a)} for b, a in zip(before, after)]
pairs = pd.DataFrame(rows)
ax = sns.scatterplot(data=pairs, x="original", y="transformed", hue="model", alpha=0.7)
lo, hi = pairs[["original", "transformed"]].min().min(), pairs[["original", "transformed"]].max().max()
ax.plot([lo, hi], [lo, hi], "k--", lw=1)
ax.set(title="predicted accuracy: network vs its gauge-transformed copy")

# %%
dev = pairs.assign(d=(pairs.original - pairs.transformed).abs()).groupby("model")["d"].max()
assert dev["scalegmn"] < 1e-4 < dev["statnn"]
print("ScaleGMN unchanged:", bool(dev["scalegmn"] < 1e-4), "  StatNN changed:", bool(dev["statnn"] > 1e-4))

# %% [markdown]
# ## Your own zoo in a few lines
# ```python
# from scalegmn_lite.tasks.invariant.study import TaskData, make_model
# from scalegmn_lite.tasks.invariant.fit import FitConfig, fit, predict
# model, _ = make_model("scalegmn", my_weights.spec, out_dim=1)
# fit(model, train_ws, train_y, val_ws, val_y, "regression", FitConfig(epochs=30))
# predict(model, test_ws)
# ```
#
# ## Summary
# * A metanetwork that ignores the scaling symmetry (StatNN, a flat MLP) gives different answers for
#   networks that compute the same function; augmentation reduces but cannot remove the effect.
# * ScaleGMN is invariant to permutations *and* scalings by construction, checked to float precision.
# * In quick mode the zoos are small (a few hundred examples) and models train for a few epochs, so
#   the ranking of models is noisy and INR classification stays near chance level;
#   `reproduce --full` (GPU) trains on bigger zoos with three seeds.
#
# ## Exercises
# 1. Train on the tanh CNNs (`zoo.where(activation="tanh")`): which symmetry does ScaleGMN use now?
# 2. Evaluate a StatNN trained *with* augmentation on gauge-transformed test networks: how large is
#    its gauge shift compared to the one trained without?
# 3. Replace the mean readout by a sum readout (`ScaleGMNConfig(readout="sum")`). Does invariance still hold?
