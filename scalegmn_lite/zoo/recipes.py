"""Zoo recipes: frozen descriptions from which a zoo is built deterministically.

A recipe names a data set, one or more architectures (``NetworkSpec`` text) and activations, the
number of networks and the *ranges* of the per-network hyperparameters. Network ``i`` of a recipe
draws its architecture, activation, learning rate, init scale and weight decay from a generator
seeded with ``(recipe.seed, i)`` only, so the same recipe always gives bit-identical hyperparameters
and (on the same device and dtype) bit-identical weights, however the networks are chunked.

Learning rate, init scale and weight decay are drawn log-uniformly from ``[lo, hi]``
(``lo == hi`` fixes the value; a weight-decay range of ``(0, 0)`` disables it).

Checkpoints follow the Small CNN Zoo's schedule (:func:`checkpoint_schedule`): epochs 0, 1, 2, 3, then
evenly to the end, so accuracy prediction sees the whole range of training.

INR zoos with *views* (``views=k``): ``k`` SIRENs per digit image, each from its own seed (independent
initialisation and nothing shared), as the published MNIST INRs; network ``i`` fits image ``i // k``.
Split them by image (``zoo.split(..., by="image_index")``), never by view.

*Plateau* zoos train every network on the whole training set for longer with a cosine learning-rate
decay to 0 (``lr_schedule="cosine"``), so their final networks have stopped improving: a starting
point like the published zoo's final networks, where an iterative optimizer has little left to gain.

Zoos "with headroom" (built like the Small CNN Zoo of Unterthiner et al.) also vary, per network,
the optimizer (``optimizers=("sgd", "adam")``; Adam draws its learning rate from ``adam_lr``) and
the fraction of the training set it sees (``train_fractions=(0.1, 0.25, 0.5, 1.0)``: network ``i``
trains on the first ``fraction * train_size`` samples). Their *final* networks differ in quality for
systematic reasons (too little data, a bad learning rate, strong decay), which is what a one-shot
operator can learn to fix.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace

import torch

from ..common.config import is_full
from ..weightspace.block_parts import ResidualBlock
from ..weightspace.blocks import BlockNetworkSpec, parse_network
from ..weightspace.spec import ACTIVATIONS, NetworkSpec

__all__ = ["ZooRecipe", "RecipeError", "RECIPES", "REFERENCE_RECIPES", "get_recipe", "get_reference_recipe",
           "list_recipes", "network_seed", "FORMAT_VERSION", "checkpoint_schedule", "TRAINED_RECIPES", "USED_BY",
           "build_work", "RESIDUAL_RECIPES", "block_with_activation", "hidden_activation"]

#: bump when the training procedure changes so cached zoos are rebuilt
FORMAT_VERSION = 1


class RecipeError(ValueError):
    """A zoo recipe that cannot be built (with a hint how to fix it)."""


def checkpoint_schedule(epochs: int, even: int = 5) -> tuple[int, ...]:
    """The Small CNN Zoo's checkpoint schedule: epochs 0, 1, 2, 3, then ``even`` evenly spaced epochs
    ending at ``epochs`` (e.g. 20 -> 0, 1, 2, 3, 4, 8, 12, 16, 20: nine checkpoints, as published)."""
    if epochs < 1 or even < 1:
        raise RecipeError(f"checkpoint_schedule needs epochs >= 1 and even >= 1, got {epochs}, {even}")
    tail = {int(round(epochs * j / even)) for j in range(1, even + 1)}
    return tuple(sorted({e for e in (0, 1, 2, 3) if e <= epochs} | tail))


def _pair(v) -> tuple[float, float]:
    if isinstance(v, (int, float)):
        return (float(v), float(v))
    lo, hi = v
    return (float(lo), float(hi))


@dataclass(frozen=True)
class ZooRecipe:
    """How to build a zoo.

    Attributes:
        name: recipe name (also the cache key prefix).
        dataset: ``"digits"`` or ``"mnist1d"`` (for INR recipes: the images to fit, ``"digits"``).
        arch: ``NetworkSpec`` text (e.g. ``"mlp 40-32-32-10 relu"``) or a tuple of them to mix; block text
            (residual blocks, norms: ``"mlp 40-32bn-[32bn-32bn]x2-10 relu"``, see
            :mod:`scalegmn_lite.weightspace.block_text`) gives block networks, trained with
            :func:`~scalegmn_lite.zoo.block_train.train_block_batched` (classifiers only).
        activations: hidden activations to mix (each network draws one); ``()`` keeps ``arch``'s own. A block
            network gets the activation wherever its text has one (layers, norms, after additions; the last layer of
            a branch and the output keep none, see :func:`block_with_activation`).
        num_networks: N.
        lr, init_scale, weight_decay: ``(lo, hi)`` log-uniform ranges.
        epochs: training epochs (INR recipes: full-batch optimizer steps).
        checkpoint_epochs: epochs (INR: steps) after which weights and metrics are recorded; must
            include ``epochs`` (the final weights). ``0`` records the initialization.
        batch_size: minibatch size (ignored by INR recipes, which are full batch).
        optimizer: ``"sgd"`` (momentum 0.9) or ``"adam"``.
        task: ``"classify"`` or ``"inr"`` (one SIREN per digit image, see :mod:`scalegmn_lite.zoo.inr`).
        image_size: INR recipes: side of the upsampled digit images (8 = original).
        train_size: train on the first ``train_size`` training samples only (``None``: all); INR
            recipes: fit the first ``num_networks`` images of the whole digits set regardless.
        chunk_size: networks trained together (cost per network grows past ~256 on CPU).
        seed: the recipe seed.
        optimizers: per-network optimizer choices (``()``: every network uses ``optimizer``).
        adam_lr: ``(lo, hi)`` log-uniform learning-rate range of the networks that draw Adam.
        train_fractions: per-network training-set fractions (``()``: the whole training set).
        shared_init: every network starts from the *same* initial draw (one init seed for the whole
            recipe, scaled by each network's ``init_scale``; data order and hyperparameters still
            vary per network; the metadata gains an ``init_seed`` column). Independent
            inits (the default) put networks in different basins; a shared init makes a zoo whose
            weights vary smoothly with the data, which is what a weight-space decoder can learn
            (an INR zoo of 2-16-16-1 SIRENs with w0 = 10: the best 32-dimensional linear code of
            the weights renders at 20.7 dB with a shared init, 9.6 dB with independent ones).
        views: INR recipes: SIRENs per image (network ``i`` fits image ``i // views``; each from its
            own seed); ``num_networks`` must be a multiple of ``views``.
        lr_schedule: ``"constant"`` or ``"cosine"`` (decay to 0 over the whole training).
        inr_init: INR recipes: ``"siren"`` (Sitzmann et al.'s init: high-frequency first layer) or
            ``"dwsnets"`` (how the published MNIST INRs were fitted: every layer initialised like the
            hidden ones, zero biases); see :func:`scalegmn_lite.zoo.inr.init_siren`.
    """

    name: str
    dataset: str
    arch: str | tuple[str, ...]
    num_networks: int
    lr: tuple[float, float] = (1e-3, 1e-1)
    init_scale: tuple[float, float] = (0.5, 2.0)
    weight_decay: tuple[float, float] = (1e-6, 1e-2)
    epochs: int = 10
    checkpoint_epochs: tuple[int, ...] = (0, 1, 3, 10)
    batch_size: int = 64
    optimizer: str = "sgd"
    activations: tuple[str, ...] = ()
    task: str = "classify"
    image_size: int = 16
    train_size: int | None = None
    chunk_size: int = 256
    seed: int = 0
    shared_init: bool = False
    optimizers: tuple[str, ...] = ()
    adam_lr: tuple[float, float] = (1e-3, 1e-2)
    train_fractions: tuple[float, ...] = ()
    views: int = 1
    lr_schedule: str = "constant"
    inr_init: str = "siren"
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        arch = (self.arch,) if isinstance(self.arch, str) else tuple(self.arch)
        object.__setattr__(self, "arch", arch)
        for f in ("lr", "init_scale", "weight_decay", "adam_lr"):
            object.__setattr__(self, f, _pair(getattr(self, f)))
        object.__setattr__(self, "optimizers", tuple(self.optimizers))
        object.__setattr__(self, "train_fractions", tuple(float(v) for v in self.train_fractions))
        object.__setattr__(self, "checkpoint_epochs", tuple(sorted({int(e) for e in self.checkpoint_epochs})))
        object.__setattr__(self, "activations", tuple(self.activations))
        self.validate()

    def validate(self) -> None:
        from .data import DATASETS

        if self.dataset not in DATASETS:
            raise RecipeError(f"recipe {self.name!r}: unknown dataset {self.dataset!r}; choose one of {DATASETS}")
        if self.task not in ("classify", "inr"):
            raise RecipeError(f"recipe {self.name!r}: task must be 'classify' or 'inr', got {self.task!r}")
        if self.train_size is not None and self.train_size < 1:
            raise RecipeError(f"recipe {self.name!r}: train_size must be >= 1 or None")
        from .train import LR_SCHEDULES

        if self.inr_init not in ("siren", "dwsnets"):
            raise RecipeError(f"recipe {self.name!r}: inr_init must be 'siren' or 'dwsnets', got {self.inr_init!r}")
        if self.inr_init != "siren" and self.task != "inr":
            raise RecipeError(f"recipe {self.name!r}: inr_init={self.inr_init!r} only applies to INR recipes "
                              "(task='inr')")
        if self.lr_schedule not in LR_SCHEDULES:
            raise RecipeError(f"recipe {self.name!r}: lr_schedule must be one of {LR_SCHEDULES}, got "
                              f"{self.lr_schedule!r}")
        if self.views < 1 or (self.views > 1 and self.task != "inr"):
            raise RecipeError(f"recipe {self.name!r}: views={self.views}; views >= 2 only apply to INR recipes "
                              "(k SIRENs per image)")
        if self.num_networks % self.views:
            raise RecipeError(f"recipe {self.name!r}: num_networks={self.num_networks} is not a multiple of "
                              f"views={self.views} (every image gets all its views); use "
                              f"{self.num_networks // self.views * self.views}")
        if self.num_networks < 1 or self.epochs < 1 or self.batch_size < 1 or self.chunk_size < 1:
            raise RecipeError(f"recipe {self.name!r}: num_networks, epochs, batch_size and chunk_size must be >= 1")
        for opt in (self.optimizer, *self.optimizers):
            if opt not in ("sgd", "adam"):
                raise RecipeError(f"recipe {self.name!r}: optimizer must be 'sgd' or 'adam', got {opt!r}")
        if any(not 0 < f <= 1 for f in self.train_fractions):
            raise RecipeError(f"recipe {self.name!r}: train_fractions {self.train_fractions} must lie in (0, 1]")
        if self.train_fractions and self.task != "classify":
            raise RecipeError(f"recipe {self.name!r}: train_fractions only apply to classifier zoos")
        if not 0 < self.adam_lr[0] <= self.adam_lr[1]:
            raise RecipeError(f"recipe {self.name!r}: adam_lr range {self.adam_lr} must satisfy 0 < lo <= hi")
        for f in ("lr", "init_scale", "weight_decay"):
            lo, hi = getattr(self, f)
            if lo > hi or lo < 0 or (f != "weight_decay" and lo <= 0) or (f == "weight_decay" and lo == 0 < hi):
                raise RecipeError(
                    f"recipe {self.name!r}: {f} range {(lo, hi)} must satisfy 0 < lo <= hi "
                    "(log-uniform; weight_decay may be (0, 0) to disable it)"
                )
        if not self.checkpoint_epochs or self.checkpoint_epochs[-1] != self.epochs or self.checkpoint_epochs[0] < 0:
            raise RecipeError(
                f"recipe {self.name!r}: checkpoint_epochs {self.checkpoint_epochs} must lie in [0, epochs] and end "
                f"with epochs={self.epochs} (the final weights)"
            )
        for a in self.activations:
            if a not in ACTIVATIONS:
                raise RecipeError(f"recipe {self.name!r}: unknown activation {a!r}; choose from {sorted(ACTIVATIONS)}")
        for spec in self.specs():
            if isinstance(spec, BlockNetworkSpec):
                self._validate_block(spec)
            want = (2,) if self.task == "inr" else None
            widths = (spec.in_dim, spec.out_dim) if isinstance(spec, BlockNetworkSpec) else spec.widths
            if want and widths[0] != 2:
                raise RecipeError(f"recipe {self.name!r}: an INR takes 2-d coordinates, got {spec.to_text()!r}")
            if self.task == "classify" and widths[-1] != 10:
                raise RecipeError(f"recipe {self.name!r}: {spec.to_text()!r} must end in 10 outputs (10 classes)")

    def _validate_block(self, spec: BlockNetworkSpec) -> None:
        """The options that do not apply to block networks (residual blocks, norms) are clear errors."""
        what = f"recipe {self.name!r}: {spec.to_text()!r} is a block network (residual blocks or norms)"
        if self.task != "classify":
            raise RecipeError(f"{what}; block networks are classifiers (task='classify'), INR zoos are SIRENs "
                              "(e.g. arch='siren 2-32-32-1')")
        if spec.family == "mlp" and any(n.kind == "batchnorm" for n in spec.norms) and self.batch_size < 2:
            raise RecipeError(f"{what} with BatchNorm, which trains on minibatch statistics: batch_size="
                              f"{self.batch_size} gives one value per channel; use batch_size >= 2")

    # ------------------------------------------------------------------ structure
    def specs(self) -> list[NetworkSpec | BlockNetworkSpec]:
        """Every distinct spec the recipe can draw (arch x activation), in a fixed order: a
        :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` for chain text, a
        :class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec` for block text."""
        out = []
        for text in self.arch:
            try:
                spec = parse_network(text)
            except ValueError as exc:
                raise RecipeError(f"recipe {self.name!r}: bad arch {text!r}: {exc}") from exc
            if isinstance(spec, BlockNetworkSpec) and spec.is_chain:  # e.g. a chain with 'eps=': train it as one
                spec = spec.to_chain()
            if self.activations:
                try:
                    out += [block_with_activation(spec, a) if isinstance(spec, BlockNetworkSpec)
                            else spec.with_activation(a) for a in self.activations]
                except ValueError as exc:
                    raise RecipeError(f"recipe {self.name!r}: arch {text!r} with activations {self.activations}: "
                                      f"{exc}") from exc
            else:
                out.append(spec)
        return out

    def sample(self, index: int) -> dict:
        """Hyperparameters of network ``index`` (deterministic in ``(seed, index)``)."""
        seed = network_seed(self.seed, index)
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(5, generator=g, dtype=torch.float64).tolist()
        specs = self.specs()
        spec = specs[min(int(u[0] * len(specs)), len(specs) - 1)]

        def logu(rng, v):
            lo, hi = rng
            return 0.0 if hi == 0 else float(math.exp(math.log(lo) + v * (math.log(hi) - math.log(lo))))

        if isinstance(spec, BlockNetworkSpec):
            act = hidden_activation(spec)
        else:
            act = spec.layers[0].activation if spec.num_layers > 1 else spec.layers[-1].activation
        row = {"net": index, "seed": seed, "arch": spec.to_text(), "activation": act or "identity",
               "lr": logu(self.lr, u[1]), "init_scale": logu(self.init_scale, u[2]),
               "weight_decay": logu(self.weight_decay, u[3])}
        if self.shared_init:
            row["init_seed"] = network_seed(self.seed, -1)
        if self.optimizers or self.train_fractions:  # extra draws after the first five: older recipes unchanged
            v = torch.rand(2, generator=g, dtype=torch.float64).tolist()
            if self.optimizers:
                opt = self.optimizers[min(int(v[0] * len(self.optimizers)), len(self.optimizers) - 1)]
                row["optimizer"] = opt
                if opt == "adam":
                    row["lr"] = logu(self.adam_lr, u[1])
            if self.train_fractions:
                k = len(self.train_fractions)
                row["train_fraction"] = self.train_fractions[min(int(v[1] * k), k - 1)]
        return row

    def optimizer_of(self, row: dict) -> str:
        """The optimizer of a network drawn by :meth:`sample`."""
        return str(row.get("optimizer", self.optimizer))

    def train_count(self, row: dict, n_train: int) -> int:
        """How many of the ``n_train`` training samples network ``row`` trains on (its fraction, >= 1)."""
        return max(1, int(round(float(row.get("train_fraction", 1.0)) * n_train)))

    @staticmethod
    def init_seed(row: dict) -> int:
        """The seed of the initial weights of a network drawn by :meth:`sample`."""
        return int(row.get("init_seed", row["seed"]))

    def with_size(self, num_networks: int) -> "ZooRecipe":
        return replace(self, num_networks=num_networks)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("description")
        if not d["shared_init"]:  # enters the hash only when set: existing recipes keep their cache keys
            d.pop("shared_init")
        if not d["optimizers"] and not d["train_fractions"]:  # likewise
            for k in ("optimizers", "adam_lr", "train_fractions"):
                d.pop(k)
        if d["views"] == 1:  # likewise
            d.pop("views")
        if d["lr_schedule"] == "constant":  # likewise
            d.pop("lr_schedule")
        if d["inr_init"] == "siren":  # likewise
            d.pop("inr_init")
        return d

    def image_of(self, index: int) -> int:
        """INR recipes: the digit image that network ``index`` fits."""
        return int(index) // self.views

    def hash(self) -> str:
        """Content hash of the recipe (and the training format version): the cache key."""
        blob = json.dumps({"recipe": self.to_dict(), "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> "ZooRecipe":
        d = dict(d)
        for f in ("arch", "checkpoint_epochs", "activations", "lr", "init_scale", "weight_decay", "optimizers",
                  "adam_lr", "train_fractions"):
            if f in d and isinstance(d[f], list):
                d[f] = tuple(d[f])
        return cls(**d)


def hidden_activation(spec: BlockNetworkSpec) -> str | None:
    """The first activation of a block network, in element order (a layer's, a norm's or a block's), or that of its
    output when nothing else has one: what the metadata column ``activation`` records."""
    for el in spec.blocks:
        parts = (*el.elements, el) if isinstance(el, ResidualBlock) else (el,)
        for part in parts:
            if part.activation is not None:
                return part.activation
    return None


def block_with_activation(spec: BlockNetworkSpec, activation: str | None) -> BlockNetworkSpec:
    """The block network with every activation it has replaced by ``activation`` (default parameter): those of
    layers, norms and residual additions. Where it has none (the last layer of a branch, a projection shortcut, a
    ``:identity`` stream) it keeps none, and the output layer keeps its own (as in chains): with ``"tanh"``,
    ``"mlp 40-32-[32-32]x2-10 relu"`` becomes ``"mlp 40-32-[32-32]x2-10 tanh"``. The twin of
    :meth:`NetworkSpec.with_activation` for block networks.

    Args:
        spec: a block network.
        activation: an activation name (``None`` or ``"identity"``: no activation).
    Returns:
        A new :class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec` (same input shape).
    """
    act = None if activation in (None, "identity") else activation

    def fix(el):
        if isinstance(el, ResidualBlock):
            el = replace(el, branch=tuple(map(fix, el.branch)), shortcut=tuple(map(fix, el.shortcut)))
        if el.activation is None:
            return el
        return replace(el, activation=act, activation_param=None)

    *body, last = spec.blocks
    last = fix(last) if isinstance(last, ResidualBlock) else last  # the output layer keeps its own, as in chains
    return BlockNetworkSpec((*map(fix, body), last), spec.input_shape)


def network_seed(recipe_seed: int, index: int) -> int:
    """Seed of network ``index`` (independent of chunking)."""
    return (int(recipe_seed) * 1_000_003 + int(index) * 7919 + 12345) % (2**62)


def _r(**kw) -> ZooRecipe:
    return ZooRecipe(**kw)


_CLS = dict(lr=(3e-3, 0.3), init_scale=(0.3, 3.0), weight_decay=(1e-6, 3e-2))

#: name -> (quick recipe, full recipe). Quick: <= ~2 min on one CPU core; full: for a GPU.
RECIPES: dict[str, tuple[ZooRecipe, ZooRecipe]] = {}


def _add(name: str, quick: dict, full: dict, **common) -> None:
    RECIPES[name] = (_r(name=name, **common, **quick), _r(name=name, **common, **full))


_add("mlp-mnist1d", dict(num_networks=256, epochs=8, checkpoint_epochs=(0, 1, 2, 8), train_size=1000),
     dict(num_networks=2048, epochs=30, checkpoint_epochs=(0, 1, 3, 10, 30)),
     dataset="mnist1d", arch="mlp 40-32-32-10 relu", activations=("relu", "tanh"), batch_size=100, **_CLS,
     description="MLPs on MNIST-1D, relu and tanh mixed")
_add("cnn1d-mnist1d", dict(num_networks=128, epochs=6, checkpoint_epochs=(0, 1, 2, 6), train_size=1000),
     dict(num_networks=2048, epochs=30, checkpoint_epochs=(0, 1, 3, 10, 30)),
     dataset="mnist1d", arch="conv1d 1-8-8/10 k3 s2 relu 1x40", activations=("relu", "tanh"), batch_size=100,
     **_CLS, description="Conv1d CNNs (global average pooling) on MNIST-1D")
_add("cnn2d-digits", dict(num_networks=1024, epochs=10, checkpoint_epochs=checkpoint_schedule(10)),
     dict(num_networks=4096, epochs=30, checkpoint_epochs=checkpoint_schedule(30)),
     dataset="digits", arch="conv2d 1-8-8/10 k3 relu 1x8x8", activations=("relu", "tanh"), batch_size=100,
     lr=(1e-2, 0.3), adam_lr=(1e-3, 3e-2), init_scale=(0.5, 2.0), weight_decay=(1e-6, 1e-2),
     optimizers=("sgd", "adam"), train_fractions=(0.1, 0.25, 0.5, 1.0), chunk_size=128,
     description="Conv2d CNNs (global average pooling) on digits, built like the Small CNN Zoo (training "
                 "fraction, optimizer, lr, init, weight decay vary; checkpoints 0, 1, 2, 3, then evenly): the "
                 "accuracy-prediction zoo")
_add("mlp-digits", dict(num_networks=256, epochs=8, checkpoint_epochs=(0, 1, 2, 8)),
     dict(num_networks=2048, epochs=30, checkpoint_epochs=(0, 1, 3, 10, 30)),
     dataset="digits", arch="mlp 64-32-10 relu", activations=("relu", "tanh"), batch_size=100, **_CLS,
     description="MLPs on digits")
_add("inr-digits", dict(num_networks=256, epochs=100, checkpoint_epochs=(0, 25, 100), image_size=16),
     dict(num_networks=1797, epochs=500, checkpoint_epochs=(0, 50, 100, 500), image_size=28),
     dataset="digits", arch="siren 2-32-32-1", task="inr", optimizer="adam", lr=(1e-3, 1e-3),
     init_scale=(1.0, 1.0), weight_decay=(0.0, 0.0), chunk_size=64,
     description="SIRENs (w0=30) fitting upsampled digit images, one per image")
#: the INR classification zoo (issue 20): k SIRENs per image from independent seeds, like the published
#: MNIST INRs; split by image. Quick: the first 1024 images x 2 views; full/reference: all 1797 x 4.
_add("inr-views-digits", dict(num_networks=2048, views=2, epochs=100, checkpoint_epochs=(0, 100), image_size=16),
     dict(num_networks=1797 * 8, views=8, epochs=500, checkpoint_epochs=(0, 100, 500), image_size=28),
     dataset="digits", arch="siren 2-32-32-1", task="inr", optimizer="adam", lr=(1e-3, 1e-3),
     init_scale=(1.0, 1.0), weight_decay=(0.0, 0.0), chunk_size=64,
     description="SIRENs (w0=30) fitting digit images, k views per image from independent seeds (INR classification)")

#: the INR classification zoo of issue 23: SIRENs fitted the way the published MNIST INRs were (DWSNets'
#: ``nn/inr.py``: every layer initialised U(+-sqrt(6/fan_in)/w0), zero biases, Adam), 2 views per image
#: (reference: 3).
#: Probe (one seed, 30 epochs) on all 1797 digits, 1 view, 300 steps at 16x16 (36 dB): StatNN classifies 46% of held-out
#: images from the weights, ScaleGMN 92%, against 15% / 11% with Sitzmann's init (inr-views-digits).
_add("inr-dws-digits", dict(num_networks=2048, views=2, epochs=300, checkpoint_epochs=(0, 300), image_size=16),
     dict(num_networks=1797 * 8, views=8, epochs=1000, checkpoint_epochs=(0, 300, 1000), image_size=28),
     dataset="digits", arch="siren 2-32-32-1", task="inr", optimizer="adam", lr=(1e-3, 1e-3),
     init_scale=(1.0, 1.0), weight_decay=(0.0, 0.0), chunk_size=512, inr_init="dwsnets",
     description="SIRENs (w0=30) fitted like the published MNIST INRs (every layer initialised like the hidden "
                 "ones, zero biases), k views per image from independent seeds (INR classification)")

#: zoos with headroom (issue 13), built like the Small CNN Zoo: the *final* networks vary widely in
#: quality for systematic reasons (training fraction, optimizer, learning rate, init, weight decay).
#: Quick (2 CPU cores, 20 epochs on 2000 MNIST-1D images, ~3 min each), measured with 128 networks:
#: Conv1d tanh mean 0.34 (10/50/90%: 0.19/0.31/0.60, max 0.73), ReLU mean 0.47 (0.22/0.47/0.72);
#: MLP tanh mean 0.29 (0.21/0.28/0.37), ReLU mean 0.32 (0.21/0.32/0.46); chance is 0.10.
_HP = dict(dataset="mnist1d", activations=("tanh", "relu"), batch_size=100, lr=(1e-2, 0.3), adam_lr=(1e-3, 3e-2),
           init_scale=(0.5, 2.0), weight_decay=(1e-6, 1e-2), optimizers=("sgd", "adam"),
           train_fractions=(0.1, 0.25, 0.5, 1.0))
_SCHED20 = checkpoint_schedule(20)
_add("cnn1d-hp-mnist1d", dict(num_networks=1024, epochs=20, checkpoint_epochs=_SCHED20, train_size=2000),
     dict(num_networks=4096, epochs=40, checkpoint_epochs=checkpoint_schedule(40)),
     arch="conv1d 1-16-16/10 k5 s2 relu 1x40", chunk_size=64, **_HP,
     description="Conv1d CNNs on MNIST-1D whose final networks vary widely (training fraction, optimizer, lr, "
                 "init, weight decay; tanh and ReLU), like the Small CNN Zoo")
_add("mlp-hp-mnist1d", dict(num_networks=1024, epochs=20, checkpoint_epochs=_SCHED20, train_size=2000),
     dict(num_networks=4096, epochs=40, checkpoint_epochs=checkpoint_schedule(40)),
     arch="mlp 40-32-10 relu", **_HP,
     description="MLPs on MNIST-1D whose final networks vary widely, the MLP twin of cnn1d-hp-mnist1d")

#: the dim G_scale sweep (issue 13, open question of the one-shot paper): ReLU-only headroom zoos of other
#: architectures, so the scaling gauge's dimension (one positive scale per hidden channel / neuron)
#: varies: a small CNN (4+4 channels, dim 8) and its *unrolled twin* (the MLP with the CNN's unrolled
#: hidden sizes 4x18 and 4x7, dim 100: the same function class at 12.5x the gauge dimension), and
#: MLPs of widths 8 and 64 (the 32-wide MLP and the 16+16 CNN are the ReLU halves of the zoos above).
_HP_RELU = dict(_HP, activations=("relu",))
for _name, _arch, _what in (
        ("cnn1d-s-hp-mnist1d", "conv1d 1-4-4/10 k5 s2 relu 1x40", "small Conv1d CNNs (4+4 channels)"),
        ("mlp-twin-s-hp-mnist1d", "mlp 40-72-28-10 relu", "MLPs with the unrolled sizes of cnn1d-s-hp-mnist1d"),
        ("mlp-w8-hp-mnist1d", "mlp 40-8-10 relu", "MLPs with 8 hidden neurons"),
        ("mlp-w64-hp-mnist1d", "mlp 40-64-10 relu", "MLPs with 64 hidden neurons")):
    _add(_name, dict(num_networks=1024, epochs=20, checkpoint_epochs=_SCHED20, train_size=2000),
         dict(num_networks=4096, epochs=20, checkpoint_epochs=_SCHED20, train_size=2000), arch=_arch,
         chunk_size=64 if _arch.startswith("conv") else 256, **_HP_RELU,
         description=f"{_what} on MNIST-1D, ReLU, final networks varying widely (the dim G_scale sweep)")

#: residual and normalized zoos (issue 36; notebook 09): the ReLU headroom recipe on block networks
#: (:class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec`, trained by
#: :func:`~scalegmn_lite.zoo.block_train.train_block_batched`, BatchNorm on minibatch statistics): residual MLPs
#: without norms, with BatchNorm or LayerNorm after every hidden linear layer (before the addition in the blocks),
#: and residual Conv1d nets (a strided stem, one block of two "same" convolutions, global average pooling) without
#: and with BatchNorm. The Conv1d nets are shrunk for one CPU core: 8 channels (not 16) and a stride-3 stem (40 -> 12
#: positions), since their grouped convolutions cost most of the build. Quick builds measured on one thread (256
#: networks, next to another job on a 2-core machine, so +-30%), per 1024 networks: resmlp ~50 s, resmlp-bn and
#: resmlp-ln ~85 s, rescnn1d ~110 s, rescnn1d-bn ~155 s (mlp-hp-mnist1d in the same run: ~20 s).
_RES_ARCHS = (
    ("resmlp-hp-mnist1d", "mlp 40-16-[16-16]x2-10 relu", "residual MLPs (2 identity blocks of width 16)"),
    ("resmlp-bn-hp-mnist1d", "mlp 40-16bn-[16bn-16bn]x2-10 relu",
     "residual MLPs with BatchNorm after every hidden linear layer"),
    ("resmlp-ln-hp-mnist1d", "mlp 40-16ln-[16ln-16ln]x2-10 relu",
     "residual MLPs with LayerNorm after every hidden linear layer"),
    ("rescnn1d-hp-mnist1d", "conv1d 1-8k5s3p0-[8-8]/10 k3 p1 relu 1x40",
     "residual Conv1d nets (stem k5 s2, one block of two 8-channel k3 convolutions, global average pooling)"),
    ("rescnn1d-bn-hp-mnist1d", "conv1d 1-8k5s3p0bn-[8bn-8bn]/10 k3 p1 relu 1x40",
     "residual Conv1d nets with BatchNorm after every convolution"),
)
for _name, _arch, _what in _RES_ARCHS:
    _add(_name, dict(num_networks=1024, epochs=20, checkpoint_epochs=_SCHED20, train_size=2000),
         dict(num_networks=4096, epochs=20, checkpoint_epochs=_SCHED20, train_size=2000), arch=_arch,
         chunk_size=64 if _arch.startswith("conv") else 256, **_HP_RELU,
         description=f"{_what} on MNIST-1D, ReLU, final networks varying widely (headroom; residual study)")
#: the residual and normalized zoos (issue 36)
RESIDUAL_RECIPES = tuple(name for name, _, _ in _RES_ARCHS)

#: plateau zoos (issue 20): every network sees the whole training set for 30 epochs with a cosine decay
#: of its learning rate to 0, so the final networks have stopped improving (the published zoo's final
#: networks were trained 86 epochs); SGD-150 from them gains what is left (published: +6.6 points on
#: CNNs, +2.2 on MLPs). The ``zoo`` experiment measures that gain per zoo.
_PLATEAU = dict(_HP, train_fractions=(), lr_schedule="cosine", lr=(3e-2, 0.3), adam_lr=(3e-3, 3e-2),
                weight_decay=(1e-6, 1e-3))
_SCHED30 = checkpoint_schedule(30)
_add("cnn1d-plateau-mnist1d", dict(num_networks=128, epochs=30, checkpoint_epochs=_SCHED30, train_size=2000),
     dict(num_networks=4096, epochs=30, checkpoint_epochs=_SCHED30, train_size=2000),
     arch="conv1d 1-16-16/10 k5 s2 relu 1x40", chunk_size=64, **_PLATEAU,
     description="the plateau twin of cnn1d-hp-mnist1d: whole training set, 30 epochs, cosine decay to 0")
_add("mlp-plateau-mnist1d", dict(num_networks=256, epochs=30, checkpoint_epochs=_SCHED30, train_size=2000),
     dict(num_networks=4096, epochs=30, checkpoint_epochs=_SCHED30, train_size=2000),
     arch="mlp 40-32-10 relu", **_PLATEAU,
     description="the plateau twin of mlp-hp-mnist1d: whole training set, 30 epochs, cosine decay to 0")

#: the zoos a trained study learns from (amortized, dim G_scale sweep, accuracy prediction, INR
#: classification): >= 1024 networks at quick size and >= 4096 at reference size (issue 20). The residual zoos
#: (:data:`RESIDUAL_RECIPES`, same sizes) that the residual study learns from are in it too; the ``residual``
#: experiment, not ``zoo``, builds and reports every residual zoo.
TRAINED_RECIPES = ("cnn1d-hp-mnist1d", "mlp-hp-mnist1d", "cnn1d-s-hp-mnist1d", "mlp-twin-s-hp-mnist1d",
                   "mlp-w8-hp-mnist1d", "mlp-w64-hp-mnist1d", "cnn2d-digits", "inr-views-digits", "inr-dws-digits",
                   "rescnn1d-bn-hp-mnist1d", "resmlp-bn-hp-mnist1d", "resmlp-ln-hp-mnist1d")

#: what each named zoo is for (reported by the ``zoo`` experiment and the README's zoo table)
USED_BY = {
    "cnn1d-hp-mnist1d": "amortized study (headroom setting: transfer and diagnostics; notebook 07); accuracy "
                        "prediction (ReLU half, every checkpoint; notebook 06); dim G_scale sweep (ReLU, full size); "
                        "shown in notebook 03",
    "mlp-hp-mnist1d": "dim G_scale sweep (ReLU)",
    "cnn1d-s-hp-mnist1d": "dim G_scale sweep (small CNN)",
    "mlp-twin-s-hp-mnist1d": "dim G_scale sweep (the small CNN's unrolled twin)",
    "mlp-w8-hp-mnist1d": "dim G_scale sweep (8 hidden neurons)",
    "mlp-w64-hp-mnist1d": "dim G_scale sweep (64 hidden neurons, full size)",
    "cnn2d-digits": "2-D CNNs of scikit-learn's digits (zoo experiment: accuracy spread)",
    "inr-views-digits": "INR classification's init-convention control (Sitzmann's init; notebook 06)",
    "inr-dws-digits": "INR classification (split by image; notebook 06); merging (notebook 08); shown in notebook 03",
    "cnn1d-plateau-mnist1d": "amortized study (Table 1 CNN rows); SGD-150 from final networks that stopped "
                             "improving (zoo experiment); shown in notebook 03",
    "mlp-plateau-mnist1d": "amortized study (Table 1 MLP rows); SGD-150 from final networks that stopped improving "
                           "(zoo experiment); notebooks 03, 07",
    "inr-digits": "notebook 03 (one SIREN per image)",
    "mlp-mnist1d": "notebook 03 (teaching zoo)",
    "cnn1d-mnist1d": "notebook 03 (teaching zoo)",
    "mlp-digits": "teaching zoo; full-mode amortized study",
    "rescnn1d-bn-hp-mnist1d": "residual study (accuracy prediction and the gauge test; quick and reference, whole; "
                              "notebook 09)",
    "resmlp-bn-hp-mnist1d": "residual study (reference: 1024 of its networks; notebook 09)",
    "resmlp-ln-hp-mnist1d": "residual study (reference: 1024 of its networks; notebook 09)",
    "resmlp-hp-mnist1d": "residual study's norm-free twin (built and reported at reference size; studied at full size)",
    "rescnn1d-hp-mnist1d": "residual study's norm-free twin (built and reported at reference size; studied at full "
                           "size)",
}

#: reference size (``reproduce --reference``): the quick recipes (same per-network training) with
#: 4096 networks (the INR zoos: every digit image, 4 views each for classification)
REFERENCE_RECIPES: dict[str, ZooRecipe] = {
    **{name: replace(RECIPES[name][0], num_networks=4096)
       for name in ("cnn1d-hp-mnist1d", "mlp-hp-mnist1d", "cnn1d-s-hp-mnist1d", "mlp-twin-s-hp-mnist1d",
                    "mlp-w8-hp-mnist1d", "mlp-w64-hp-mnist1d", "cnn2d-digits", "cnn1d-plateau-mnist1d",
                    "mlp-plateau-mnist1d", *RESIDUAL_RECIPES)},
    "inr-digits": replace(RECIPES["inr-digits"][0], num_networks=1797),
    "inr-views-digits": replace(RECIPES["inr-views-digits"][0], num_networks=1797 * 4, views=4),
    "inr-dws-digits": replace(RECIPES["inr-dws-digits"][0], num_networks=1797 * 3, views=3),
}


def get_reference_recipe(name: str | ZooRecipe) -> ZooRecipe:
    """The reference-size recipe of ``name`` (the quick one for recipes without a reference size)."""
    if isinstance(name, ZooRecipe):
        return name
    return REFERENCE_RECIPES.get(name) or get_recipe(name, full=False)


def list_recipes() -> list[str]:
    return sorted(RECIPES)


def get_recipe(name: str | ZooRecipe, full: bool | None = None) -> ZooRecipe:
    """A named recipe in quick or full size (default: ``SCALEGMN_LITE_FULL``); recipes pass through."""
    if isinstance(name, ZooRecipe):
        return name
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe {name!r}; available: {list_recipes()}")
    quick, big = RECIPES[name]
    return big if (is_full() if full is None else full) else quick


#: training-set sizes of the bundled data sets (:mod:`scalegmn_lite.zoo.data`)
_TRAIN_SIZES = {"digits": 1437, "mnist1d": 4000}


def _layer_positions(spec) -> list[tuple]:
    """``(layer, weight shape, output positions)`` per layer of a chain or block spec (a block network's layers in
    data-flow order, its convolutions' lengths followed along that order: an estimate for a branch)."""
    spatial = list(spec.input_shape[1:]) if spec.input_shape is not None and spec.layers[0].is_conv else []
    out = []
    for layer in spec.layers:
        if layer.is_conv and spatial:
            spatial = [(n + 2 * layer.padding - k) // layer.stride + 1 for n, k in zip(spatial, layer.kernel_size)]
        positions = math.prod(spatial) if layer.is_conv and spatial else 1
        out.append((layer, (layer.out_dim, layer.in_dim, *layer.kernel_size), max(1, positions)))
        if layer.pool_after:
            spatial = []
    return out


def build_work(recipe: ZooRecipe | str) -> float:
    """A zoo's training cost in multiply-adds (networks x epochs x samples per epoch x multiply-adds per sample,
    the mean over the recipe's architectures): orders zoo builds longest first (``reproduce --jobs``), not a time.
    Measured on one core (quick builds, 2026-12-07): 0.4-0.9 s per 10^9 multiply-adds for conv, MLP and INR zoos
    alike (cnn1d-hp-mnist1d 160 s, inr-dws-digits 102 s, cnn2d-digits 70 s), 2 s for the smallest CNNs; block
    networks (norms, the grouped convolutions of the residual Conv1d nets) about 1.6 s (rescnn1d-bn-hp-mnist1d: 155 s
    for 98 * 10^9), so their estimate is doubled."""
    recipe = get_recipe(recipe)
    macs = []
    for spec in recipe.specs():
        macs.append(sum(math.prod(shape) * positions for _, shape, positions in _layer_positions(spec)))
    if recipe.task == "inr":
        samples = recipe.image_size ** 2
    else:
        n = recipe.train_size or _TRAIN_SIZES.get(recipe.dataset, 1000)
        samples = n * (sum(recipe.train_fractions) / len(recipe.train_fractions) if recipe.train_fractions else 1.0)
    block = any(isinstance(spec, BlockNetworkSpec) for spec in recipe.specs())
    return float(recipe.num_networks * recipe.epochs * samples * sum(macs) / len(macs)) * (2.0 if block else 1.0)
