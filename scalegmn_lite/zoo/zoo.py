"""The :class:`Zoo`: trained networks, their weights at every checkpoint and one metadata row each.

Design: a zoo may mix architectures or activations (e.g. ReLU and tanh CNNs). Networks with the
same :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` form a *group*; each group keeps its weights as one
flat tensor ``[n_checkpoints, n_group, P_group]`` (``WeightSpace.flatten`` layout). The metadata
``DataFrame`` has one row per network, in zoo order, with columns ``group`` (index into ``specs``)
and ``row`` (position inside the group), the hyperparameters and, per checkpoint epoch ``e``, the
metrics ``train_loss@e, train_acc@e, test_loss@e, test_acc@e`` (INRs: ``mse@e, psnr@e``), plus the
final values without ``@``. :meth:`Zoo.weights` returns one :class:`WeightSpace` and needs a
single-spec zoo: select one first with ``zoo.where(activation="tanh")`` or iterate ``zoo.by_spec()``.

A group may also hold block networks (residual blocks, BatchNorm, LayerNorm): its spec is a
:class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec`, its flat layout
:meth:`BlockWeights.flatten <scalegmn_lite.weightspace.block_weights.BlockWeights.flatten>` (BatchNorm running
statistics included), and :meth:`Zoo.weights` / :meth:`Zoo.network` return
:class:`~scalegmn_lite.weightspace.block_weights.BlockWeights` for it (:func:`unflatten_weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..weightspace.block_weights import BlockWeights
from ..weightspace.blocks import BlockNetworkSpec
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace

__all__ = ["Zoo", "ZooError", "unflatten_weights"]


def unflatten_weights(spec: NetworkSpec | BlockNetworkSpec, flat: torch.Tensor) -> WeightSpace | BlockWeights:
    """Networks ``[B, P]`` of one zoo group as weights: :class:`BlockWeights` for a block network's spec,
    :class:`WeightSpace` for a chain's.

    Args:
        spec: the group's spec.
        flat: ``[B, P]`` in the ``flatten`` layout of that weight type.
    Returns:
        ``BlockWeights.unflatten(spec, flat)`` or ``WeightSpace.unflatten(spec, flat)``.
    """
    if isinstance(spec, BlockNetworkSpec):
        return BlockWeights.unflatten(spec, flat)
    return WeightSpace.unflatten(spec, flat)


class ZooError(ValueError):
    """A zoo operation that cannot be done as asked (with a hint how to fix it)."""


@dataclass(eq=False)
class Zoo:
    """Networks grouped by spec. See the module docstring for the layout.

    Attributes:
        specs: one spec per group (``NetworkSpec``, or ``BlockNetworkSpec`` for block networks).
        flat: per group, ``[n_checkpoints, n_group, P]`` weights (``WeightSpace.flatten`` /
            ``BlockWeights.flatten`` layout).
        checkpoints: the recorded epochs (INR zoos: optimizer steps), ascending; the last is final.
        metadata: one row per network (see the module docstring).
        recipe: the recipe that built the zoo as a dict (``None`` for loaded public zoos).
    """

    specs: tuple[NetworkSpec | BlockNetworkSpec, ...]
    flat: tuple[torch.Tensor, ...]
    checkpoints: tuple[int, ...]
    metadata: pd.DataFrame
    recipe: dict | None = None

    def __post_init__(self) -> None:
        self.specs, self.flat, self.checkpoints = tuple(self.specs), tuple(self.flat), tuple(self.checkpoints)
        if len(self.specs) != len(self.flat):
            raise ZooError(f"{len(self.specs)} specs but {len(self.flat)} weight groups")
        for g, (spec, t) in enumerate(zip(self.specs, self.flat)):
            n_g = int((self.metadata["group"] == g).sum())
            want = (len(self.checkpoints), n_g, spec.num_params)
            if t.dim() != 3 or tuple(t.shape) != want:
                raise ZooError(
                    f"group {g} ({spec.to_text()}): weights have shape {tuple(t.shape)}, expected "
                    f"[{len(self.checkpoints)} checkpoints, {n_g} networks, {spec.num_params} parameters]"
                )

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.metadata)

    def __repr__(self) -> str:
        name = (self.recipe or {}).get("name", "zoo")
        counts = [int((self.metadata["group"] == g).sum()) for g in range(len(self.specs))]
        archs = ", ".join(f"{s.to_text()} x{c}" for s, c in zip(self.specs, counts))
        return f"Zoo({name!r}, {len(self)} networks, checkpoints={list(self.checkpoints)}: {archs})"

    @property
    def spec(self) -> NetworkSpec | BlockNetworkSpec:
        """The spec of a single-spec zoo."""
        if len(self.specs) != 1:
            raise ZooError(f"this zoo mixes {len(self.specs)} specs {[s.to_text() for s in self.specs]}; select one "
                           "with zoo.where(arch=...) / zoo.where(activation=...) or iterate zoo.by_spec()")
        return self.specs[0]

    def _ckpt_index(self, checkpoint: int | None) -> int:
        if checkpoint is None or checkpoint == -1:
            return len(self.checkpoints) - 1
        if checkpoint not in self.checkpoints:
            raise ZooError(f"no checkpoint at epoch {checkpoint}; recorded: {list(self.checkpoints)}")
        return self.checkpoints.index(checkpoint)

    def weights(self, checkpoint: int | None = None, device=None, dtype=None) -> WeightSpace | BlockWeights:
        """All networks at ``checkpoint`` (default: final) as one ``WeightSpace`` (single-spec zoos);
        ``BlockWeights`` for a zoo of block networks."""
        spec = self.spec
        ws = unflatten_weights(spec, self.flat[0][self._ckpt_index(checkpoint)])
        return ws.to(device=device, dtype=dtype) if (device is not None or dtype is not None) else ws

    def by_spec(self) -> dict[str, "Zoo"]:
        """One single-spec zoo per spec, keyed by the spec text."""
        return {s.to_text(): self.select(np.flatnonzero(self.metadata["group"].to_numpy() == g))
                for g, s in enumerate(self.specs)}

    def network(self, i: int, checkpoint: int | None = None) -> WeightSpace | BlockWeights:
        """Network ``i`` as a ``WeightSpace`` (block networks: ``BlockWeights``) with ``B = 1``."""
        row = self.metadata.iloc[i]
        g, r = int(row["group"]), int(row["row"])
        return unflatten_weights(self.specs[g], self.flat[g][self._ckpt_index(checkpoint), r:r + 1])

    # ------------------------------------------------------------------ selection
    def select(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> "Zoo":
        """The networks at ``indices`` (positions in zoo order), in that order."""
        idx = np.asarray(torch.as_tensor(np.asarray(indices)).tolist(), dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ZooError(f"index out of range for a zoo of {len(self)} networks")
        md = self.metadata.iloc[idx].reset_index(drop=True)
        specs, flats, groups, rows = [], [], np.zeros(len(md), np.int64), np.zeros(len(md), np.int64)
        old_g = md["group"].to_numpy()
        old_r = md["row"].to_numpy()
        for g in sorted(set(old_g.tolist())):
            mask = old_g == g
            groups[mask] = len(specs)
            rows[mask] = np.arange(int(mask.sum()))
            specs.append(self.specs[g])
            flats.append(self.flat[g][:, torch.as_tensor(old_r[mask])])
        md["group"], md["row"] = groups, rows
        return Zoo(tuple(specs), tuple(flats), self.checkpoints, md, self.recipe)

    def __getitem__(self, idx) -> "Zoo":
        """``zoo[i]``, ``zoo[a:b]``, ``zoo[[i, j]]``, ``zoo[bool_mask]``: a sub-zoo (kept as a Zoo)."""
        if isinstance(idx, (int, np.integer)):
            idx = [int(idx)]
        elif isinstance(idx, slice):
            idx = np.arange(len(self))[idx]
        else:
            arr = np.asarray(idx.tolist() if isinstance(idx, torch.Tensor) else idx)
            idx = np.flatnonzero(arr) if arr.dtype == bool else arr
        return self.select(idx)

    def filter(self, fn: Callable[[pd.DataFrame], "pd.Series | np.ndarray"]) -> "Zoo":
        """Networks whose metadata row passes ``fn(df) -> bool mask``, e.g.
        ``zoo.filter(lambda df: df["test_acc"] > 0.5)``."""
        mask = np.asarray(fn(self.metadata), dtype=bool)
        if mask.shape != (len(self),):
            raise ZooError(f"filter function must return {len(self)} booleans, got shape {mask.shape}")
        return self.select(np.flatnonzero(mask))

    def where(self, **conditions) -> "Zoo":
        """Networks whose metadata equals the given values (a list/tuple/set means "one of"),
        e.g. ``zoo.where(activation="tanh")``."""
        mask = np.ones(len(self), dtype=bool)
        for col, val in conditions.items():
            if col not in self.metadata:
                raise ZooError(f"no metadata column {col!r}; columns: {list(self.metadata.columns)}")
            s = self.metadata[col]
            mask &= (s.isin(list(val)) if isinstance(val, (list, tuple, set)) else (s == val)).to_numpy()
        return self.select(np.flatnonzero(mask))

    def split(self, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0, by: str | None = None
              ) -> tuple["Zoo", ...]:
        """Random split *by network* into ``len(fractions)`` disjoint zoos (fractions sum to 1).

        ``by``: a metadata column whose values are kept together, e.g. ``by="image_index"`` for an
        INR zoo with several views per image: the *images* are split, so no image has a view in
        two parts (fractions then count images)."""
        fr = np.asarray(fractions, dtype=float)
        if (fr < 0).any() or abs(fr.sum() - 1) > 1e-6:
            raise ZooError(f"split fractions must be >= 0 and sum to 1, got {list(fractions)}")
        if by is not None and by not in self.metadata:
            raise ZooError(f"cannot split by {by!r}: no such metadata column; columns: {list(self.metadata.columns)}")
        keys = np.arange(len(self)) if by is None else self.metadata[by].to_numpy()
        uniq, inverse = np.unique(keys, return_inverse=True)
        perm = torch.randperm(len(uniq), generator=torch.Generator().manual_seed(seed)).numpy()
        bounds = np.round(np.cumsum(fr) * len(uniq)).astype(int)
        bounds[-1] = len(uniq)
        starts = np.concatenate([[0], bounds[:-1]])
        parts = []
        for a, b in zip(starts, bounds):
            chosen = np.zeros(len(uniq), dtype=bool)
            chosen[perm[a:b]] = True
            parts.append(self.select(np.flatnonzero(chosen[inverse])))
        return tuple(parts)

    def to(self, device=None, dtype=None) -> "Zoo":
        return Zoo(self.specs, tuple(t.to(device=device, dtype=dtype) for t in self.flat), self.checkpoints,
                   self.metadata, self.recipe)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def from_weight_spaces(groups: Sequence[tuple[Sequence[WeightSpace | BlockWeights], pd.DataFrame]],
                           checkpoints: Sequence[int], recipe: dict | None = None, order: str | None = "net") -> "Zoo":
        """Build from ``(weights per checkpoint, metadata rows)`` per spec group (``WeightSpace`` or, for block
        networks, ``BlockWeights``); rows are sorted by the metadata column ``order`` (if present) so zoo order does
        not depend on grouping."""
        specs, flats, mds = [], [], []
        for ws_list, md in groups:
            ws_list = list(ws_list)
            if len(ws_list) != len(checkpoints):
                raise ZooError(f"got {len(ws_list)} weight spaces for {len(checkpoints)} checkpoints")
            spec = ws_list[0].spec
            if spec in specs:
                g = specs.index(spec)
                flats[g] = torch.cat([flats[g], torch.stack([w.flatten().cpu() for w in ws_list])], 1)
            else:
                g = len(specs)
                specs.append(spec)
                flats.append(torch.stack([w.flatten().cpu() for w in ws_list]))
            md = md.copy()
            md["group"] = g
            mds.append(md)
        md = pd.concat(mds, ignore_index=True)
        md["row"] = 0
        for g in range(len(specs)):
            m = md["group"] == g
            md.loc[m, "row"] = np.arange(int(m.sum()))
        zoo = Zoo(tuple(specs), tuple(flats), tuple(checkpoints), md, recipe)
        if order is not None and order in md:
            zoo = zoo.select(np.argsort(md[order].to_numpy(), kind="stable"))
        return zoo

    @staticmethod
    def concat(zoos: Sequence["Zoo"]) -> "Zoo":
        """Join zoos with the same checkpoints (their specs may differ)."""
        zoos = list(zoos)
        if not zoos:
            raise ZooError("concat needs at least one zoo")
        if any(z.checkpoints != zoos[0].checkpoints for z in zoos):
            raise ZooError("cannot concatenate zoos with different checkpoints")
        groups = []
        for z in zoos:
            for g, spec in enumerate(z.specs):
                md = z.metadata[z.metadata["group"] == g].drop(columns=["group", "row"])
                groups.append(([unflatten_weights(spec, t) for t in z.flat[g]], md))
        return Zoo.from_weight_spaces(groups, zoos[0].checkpoints, zoos[0].recipe, order=None)
