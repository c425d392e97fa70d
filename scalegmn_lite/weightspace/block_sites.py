r"""Where the gauge of a block network acts: its *sites* (sets of neurons that share a gauge) and, for every parameter
tensor, which site indexes its rows and columns.

A site of width ``n`` carries a permutation ``p`` and a scaling ``q`` and acts on its neurons' values as
``h'[i] = q[i] h[p[i]]`` (the convention of :mod:`.gauge`). A parameter whose rows belong to site ``r`` and columns
to site ``c`` transforms as

    ``T'[i, j] = q_r[i]^power * T[p_r[i], p_c[j]] / q_c[j]``   (``* sign(q_s[i])`` for a BatchNorm/LayerNorm ``gamma``)

(kernel axes untouched). The sites of a network, derived once from its elements (:func:`gauge_plan`):

=====================  =========================================================  ==================================
site (``role``)        neurons                                                    scaling (:class:`ScaleKind`)
=====================  =========================================================  ==================================
``input``/``output``   the network's inputs and outputs                           fixed (identity)
``hidden``             outputs of a layer or of a norm (post-norm neurons)        from the activation applied to them
``stream``             a residual stream: the site a block reads through its      the *meet* of every activation
                       identity shortcut and writes into (one site for all        applied to it (stem, branch ends,
                       depths); a projection shortcut starts a new one            post-addition activations)
``batchnorm``          a BatchNorm's input ``z = W x + b`` (``mu``, ``var``)      ``q_i != 0`` per channel, free
``layernorm``          a LayerNorm's input                                        one common ``q != 0``
=====================  =========================================================  ==================================

A norm's input site shares the permutation of its output site (``perm_site``): ``gamma, beta, mu, var`` are
permuted with the channels. Rows of ``W, b, mu`` of the layer before a norm are scaled by the pre-norm ``q``,
``var`` by ``q^2``, ``gamma, beta`` by the post-norm ``q`` (and ``gamma`` by the sign of the pre-norm ``q``).
``split_streams=True`` gives the *plain twin's* sites: every identity-shortcut block writes a new stream site, so
unshared stream elements (not symmetries of the residual network) can be represented.

Continuous dimension (:attr:`GaugePlan.scale_dim`): ``sum`` of the widths of ``positive`` hidden and stream sites,
plus every BatchNorm's width, plus 1 per LayerNorm.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Sequence

from .block_parts import Element, Norm, ResidualBlock, meet
from .layer import LayerSpec, Symmetry

__all__ = ["ScaleKind", "Site", "ParamRole", "ShortcutEdge", "GaugePlan", "gauge_plan"]


class ScaleKind(str, enum.Enum):
    """Which scalings ``q`` a site admits."""

    POSITIVE = "positive"  # q_i > 0 per neuron (ReLU, LeakyReLU, identity)
    SIGN = "sign"  # q_i = +-1 (tanh, sine)
    NONE = "none"  # q_i = 1: permutations only (sigmoid, GELU, SiLU, or a stream read by ReLU and tanh)
    PRENORM = "prenorm"  # BatchNorm input: q_i != 0 per channel (q_i < 0 flips gamma_i)
    COMMON = "common"  # LayerNorm input: one q != 0 for every feature (q < 0 flips gamma)
    FIXED = "fixed"  # input and output neurons: identity

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value


_FROM_SYMMETRY = {Symmetry.POSITIVE_SCALE: ScaleKind.POSITIVE, Symmetry.SIGN: ScaleKind.SIGN,
                  Symmetry.PERMUTATION: ScaleKind.NONE}


@dataclass(frozen=True)
class Site:
    """A set of ``width`` neurons (channels) sharing one permutation and one scaling.

    ``label``: the path of the element that produces them (``"input"`` for the inputs); ``role``: ``input``,
    ``output``, ``hidden``, ``stream``, ``batchnorm`` or ``layernorm`` (a norm's input); ``perm_site``: the site
    whose permutation these neurons follow (itself, or a norm's output site)."""

    label: str
    width: int
    role: str
    scaling: ScaleKind
    perm_site: int

    @property
    def scale_dim(self) -> int:
        """Continuous dimensions of this site's scaling."""
        if self.scaling in (ScaleKind.POSITIVE, ScaleKind.PRENORM):
            return self.width
        return 1 if self.scaling is ScaleKind.COMMON else 0


@dataclass(frozen=True)
class ParamRole:
    """One parameter tensor of one network: ``name`` (``"{path}.{weight|bias|gamma|beta|running_mean|running_var}"``),
    ``shape``, the site of its rows (scaled by ``q ** power``), of its columns (``None``: a vector) and, for a norm's
    ``gamma``, the pre-norm site whose sign it takes."""

    name: str
    shape: tuple[int, ...]
    rows: int
    power: int = 1
    cols: int | None = None
    sign_of: int | None = None


@dataclass(frozen=True)
class ShortcutEdge:
    """The identity shortcut of block ``label``: constant edges of weight 1 from site ``source`` to site ``target``
    (the same site unless ``split_streams``)."""

    label: str
    source: int
    target: int


@dataclass(frozen=True)
class GaugePlan:
    """Sites, parameter roles and identity shortcuts of a block network (see the module docstring)."""

    sites: tuple[Site, ...]
    params: tuple[ParamRole, ...]
    shortcuts: tuple[ShortcutEdge, ...]
    split_streams: bool

    @property
    def dim_terms(self) -> dict[str, int]:
        """``dim G_scale`` by kind of site: ``hidden``, ``stream``, ``batchnorm``, ``layernorm``."""
        terms = {"hidden": 0, "stream": 0, "batchnorm": 0, "layernorm": 0}
        for site in self.sites:
            if site.role in terms:
                terms[site.role] += site.scale_dim
        return terms

    @property
    def scale_dim(self) -> int:
        """``dim G_scale``: hidden and stream widths with positive scalings, BatchNorm widths, 1 per LayerNorm."""
        return sum(self.dim_terms.values())


class _Builder:
    def __init__(self, in_dim: int, split_streams: bool) -> None:
        self.split = split_streams
        self.sites: list[dict] = []
        self.acts: list[list[str | None]] = []
        self.params: list[ParamRole] = []
        self.shortcuts: list[ShortcutEdge] = []
        self.input = self.new("input", in_dim, "input")

    def new(self, label: str, width: int, role: str) -> int:
        self.sites.append(dict(label=label, width=width, role=role, perm_site=len(self.sites)))
        self.acts.append([])
        return len(self.sites) - 1

    def param(self, name: str, shape: tuple[int, ...], rows: int, **kw) -> None:
        self.params.append(ParamRole(name, tuple(shape), rows, **kw))

    def sequence(self, elements: Sequence[Element], prefix: str, cur: int, final: int | None = None) -> int:
        """Walk ``elements`` from site ``cur``; the last one writes into ``final`` if given. Returns the output site."""
        n = len(elements)
        for j, el in enumerate(elements):
            path = f"{prefix}{j}"
            if isinstance(el, LayerSpec):
                norm = elements[j + 1] if j + 1 < n and isinstance(elements[j + 1], Norm) else None
                ends = j + (norm is not None) == n - 1
                out = final if ends and final is not None else self.new(path if norm is None else f"{prefix}{j + 1}",
                                                                        el.out_dim, "hidden")
                rows = out if norm is None else self.new(path, el.out_dim, norm.kind)
                self.param(f"{path}.weight", el.weight_shape, rows, cols=cur)
                self.param(f"{path}.bias", (el.out_dim,), rows)
                if norm is not None:
                    self.sites[rows]["perm_site"] = out
                    npath = f"{prefix}{j + 1}"
                    self.param(f"{npath}.gamma", (norm.width,), out, sign_of=rows)
                    self.param(f"{npath}.beta", (norm.width,), out)
                    if norm.kind == "batchnorm":
                        self.param(f"{npath}.running_mean", (norm.width,), rows)
                        self.param(f"{npath}.running_var", (norm.width,), rows, power=2)
                self.acts[out].append(el.activation if norm is None else norm.activation)
                cur = out
            elif isinstance(el, ResidualBlock):
                if el.is_identity and not self.split:
                    out = cur
                else:
                    out = self.new(path, el.out_dim, "stream")
                if el.is_identity:
                    self.shortcuts.append(ShortcutEdge(path, cur, out))
                    if self.sites[cur]["role"] == "hidden":
                        self.sites[cur]["role"] = "stream"
                self.sequence(el.branch, f"{path}.branch.", cur, final=out)
                if not el.is_identity:
                    self.sequence(el.shortcut, f"{path}.shortcut.", cur, final=out)
                self.acts[out].append(el.activation)
                cur = out
        return cur

    def plan(self, elements: Sequence[Element]) -> GaugePlan:
        out = self.sequence(elements, "", self.input)
        if out != self.input:
            self.sites[out]["role"] = "output"
        sites = []
        for site, acts in zip(self.sites, self.acts):
            role = site["role"]
            if role in ("input", "output"):
                scaling = ScaleKind.FIXED
            elif role in ("batchnorm", "layernorm"):
                scaling = ScaleKind.PRENORM if role == "batchnorm" else ScaleKind.COMMON
            else:
                scaling = _FROM_SYMMETRY[meet(acts)]
            sites.append(Site(site["label"], site["width"], role, scaling, site["perm_site"]))
        return GaugePlan(tuple(sites), tuple(self.params), tuple(self.shortcuts), self.split)


@functools.lru_cache(maxsize=512)
def gauge_plan(elements: tuple[Element, ...], in_dim: int, split_streams: bool = False) -> GaugePlan:
    """The :class:`GaugePlan` of the (already validated) elements of a block network with ``in_dim`` inputs (cached:
    the elements are frozen)."""
    return _Builder(in_dim, split_streams).plan(elements)
