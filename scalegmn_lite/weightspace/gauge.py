"""The gauge group of a network: permutations and scalings of hidden neurons (channels).

An element ``g`` holds, for every hidden layer ``l = 1..L-1`` and every network in a batch, a
permutation ``perm_l`` and a scaling ``scale_l`` and acts on a neuron's value as

    ``h'_l[i] = scale_l[i] * h_l[perm_l[i]]``        (``h' = S_l P_l h``, S in the new order)

so weights and biases transform as (``DESIGN.md`` section 1, ``P_l Q_l W_l Q_{l-1}^{-1} P_{l-1}^T``):

    ``W'_l[i, j] = scale_l[i] * W_l[perm_l[i], perm_{l-1}[j]] / scale_{l-1}[j]``
    ``b'_l[i]    = scale_l[i] * b_l[perm_l[i]]``

with identity permutation and unit scale at the input and output layers. For convolutions the
indices are channels and the kernel axes are untouched. A dense layer after ``Flatten`` stores its
weight as ``[out, C, P]`` (``P = H*W`` positions per channel), so channel ``j``'s permutation moves
its whole block ``W[:, j*P:(j+1)*P]`` of the ``torch.nn.Linear`` weight and its scaling divides it.
The scaling of layer ``l`` must belong to ``spec.symmetries[l-1]`` (positive, +-1 or 1) for ``g`` to
preserve the network's function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .spec import NetworkSpec, Symmetry
from .weights import WeightSpace

__all__ = ["GaugeElement", "NotASymmetryError", "apply_uncoupled", "sample_non_symmetry"]


class NotASymmetryError(ValueError):
    """A transformation that is not in the network's gauge group was applied as if it were."""


def _check_scale(sym: Symmetry, scale: torch.Tensor, layer: int, atol: float = 1e-6) -> None:
    if sym is Symmetry.POSITIVE_SCALE:
        ok = bool((scale > 0).all())
        need = "positive scalings (q > 0)"
    elif sym is Symmetry.SIGN:
        ok = bool(((scale.abs() - 1).abs() <= atol).all())
        need = "sign flips (q = +-1)"
    else:
        ok = bool(((scale - 1).abs() <= atol).all())
        need = "no scaling (q = 1, permutations only)"
    if not ok:
        raise NotASymmetryError(
            f"hidden layer {layer} admits only {need} for its activation, but the scaling has values "
            f"{scale.flatten()[:6].tolist()}...; use GaugeElement.sample(spec, ...) for a symmetry, or "
            "apply(..., strict=False) to apply a non-symmetry on purpose"
        )


@dataclass(frozen=True, eq=False)
class GaugeElement:
    """A batch of gauge group elements, one per network.

    Attributes:
        spec: the network structure (decides widths and which scalings are allowed).
        perms: per hidden layer, ``[B, n_l]`` long tensors (permutations of ``0..n_l-1``).
        scales: per hidden layer, ``[B, n_l]`` float tensors (indexed in the *new* order).
    """

    spec: NetworkSpec
    perms: tuple[torch.Tensor, ...]
    scales: tuple[torch.Tensor, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "perms", tuple(self.perms))
        object.__setattr__(self, "scales", tuple(self.scales))
        hidden = self.spec.hidden_widths
        if len(self.perms) != len(hidden) or len(self.scales) != len(hidden):
            raise ValueError(f"need one permutation and scaling per hidden layer ({len(hidden)})")
        for l, (p, s, n) in enumerate(zip(self.perms, self.scales, hidden)):
            if p.shape[-1] != n or s.shape[-1] != n or p.shape != s.shape:
                raise ValueError(f"hidden layer {l + 1}: expected [B, {n}] permutation and scaling")

    @property
    def batch_size(self) -> int:
        return self.perms[0].shape[0] if self.perms else 1

    # ------------------------------------------------------------------ constructors
    @classmethod
    def identity(cls, spec: NetworkSpec, batch_size: int = 1, device=None, dtype=torch.float32) -> "GaugeElement":
        perms = [torch.arange(n, device=device).expand(batch_size, n).clone() for n in spec.hidden_widths]
        scales = [torch.ones(batch_size, n, device=device, dtype=dtype) for n in spec.hidden_widths]
        return cls(spec, perms, scales)

    @classmethod
    def sample(
        cls,
        spec: NetworkSpec,
        batch_size: int = 1,
        generator: torch.Generator | None = None,
        *,
        permute: bool = True,
        scale: bool = True,
        max_log_scale: float = math.log(4.0),
        device=None,
        dtype=torch.float32,
    ) -> "GaugeElement":
        """Random elements: uniform permutations; scalings per layer according to its symmetry
        (positive: ``exp(U(-max_log_scale, max_log_scale))``; sign: uniform +-1; else 1)."""
        perms, scales = [], []
        for n, sym in zip(spec.hidden_widths, spec.symmetries):
            if permute:
                p = torch.argsort(torch.rand(batch_size, n, generator=generator), dim=1)
            else:
                p = torch.arange(n).expand(batch_size, n).clone()
            if not scale or sym is Symmetry.PERMUTATION:
                s = torch.ones(batch_size, n, dtype=torch.float64)
            elif sym is Symmetry.POSITIVE_SCALE:
                u = torch.rand(batch_size, n, generator=generator, dtype=torch.float64)
                s = torch.exp((2 * u - 1) * max_log_scale)
            else:
                s = torch.randint(0, 2, (batch_size, n), generator=generator).to(torch.float64) * 2 - 1
            perms.append(p.to(device))
            scales.append(s.to(device=device, dtype=dtype))
        return cls(spec, perms, scales)

    # ------------------------------------------------------------------ group laws
    def compose(self, first: "GaugeElement") -> "GaugeElement":
        """``self o first``: apply ``first``, then ``self``."""
        perms, scales = [], []
        for p2, s2, p1, s1 in zip(self.perms, self.scales, first.perms, first.scales):
            perms.append(torch.gather(p1, 1, p2))
            scales.append(s2 * torch.gather(s1, 1, p2))
        return GaugeElement(self.spec, perms, scales)

    __matmul__ = compose

    def inverse(self) -> "GaugeElement":
        perms, scales = [], []
        for p, s in zip(self.perms, self.scales):
            inv = torch.argsort(p, dim=1)
            perms.append(inv)
            scales.append(1.0 / torch.gather(s, 1, inv))
        return GaugeElement(self.spec, perms, scales)

    def equals(self, other: "GaugeElement", atol: float = 1e-6) -> bool:
        return all(torch.equal(a, b) for a, b in zip(self.perms, other.perms)) and all(
            torch.allclose(a, b, atol=atol, rtol=0) for a, b in zip(self.scales, other.scales)
        )

    def to(self, device=None, dtype=None) -> "GaugeElement":
        return GaugeElement(self.spec, [p.to(device) for p in self.perms],
                            [s.to(device=device, dtype=dtype) for s in self.scales])

    def is_symmetry(self) -> bool:
        """True if every scaling lies in its layer's allowed set."""
        try:
            self.validate()
        except NotASymmetryError:
            return False
        return True

    def validate(self) -> "GaugeElement":
        for l, (s, sym) in enumerate(zip(self.scales, self.spec.symmetries), start=1):
            _check_scale(sym, s, l)
        return self

    # ------------------------------------------------------------------ action
    def layer_transforms(self):
        """Per layer ``l = 0..L-1``: ``(out_perm, out_scale, in_perm, in_scale)``; ``None`` entries
        mean identity (input/output neurons are fixed)."""
        hidden = list(zip(self.perms, self.scales))
        L = self.spec.num_layers
        for l in range(L):
            out = hidden[l] if l < L - 1 else (None, None)
            inn = hidden[l - 1] if l > 0 else (None, None)
            yield (*out, *inn)

    def apply(self, ws: WeightSpace, strict: bool = True) -> WeightSpace:
        """Transform every network of ``ws`` (batch sizes must match, or the element has B = 1).

        With ``strict=True`` (default) the scalings are first checked to be symmetries of the
        spec; ``strict=False`` applies any scaling (to demonstrate non-symmetries).
        """
        if ws.spec.layers != self.spec.layers:
            raise ValueError(f"gauge element is for {self.spec.to_text()!r}, weights are {ws.spec.to_text()!r}")
        if strict:
            self.validate()
        return _transform(ws, list(self.layer_transforms()))

    def __call__(self, ws: WeightSpace, strict: bool = True) -> WeightSpace:
        return self.apply(ws, strict)

    def transform_hidden(self, l: int, h: torch.Tensor) -> torch.Tensor:
        """Apply the action of hidden layer ``l`` (1-based) to activations ``[B, N, n_l, ...]``."""
        p, s = self.perms[l - 1], self.scales[l - 1]
        idx = p.view(p.shape[0], 1, p.shape[1], *([1] * (h.dim() - 3))).expand(-1, h.shape[1], -1, *h.shape[3:])
        return torch.gather(h, 2, idx) * s.view(s.shape[0], 1, s.shape[1], *([1] * (h.dim() - 3))).to(h.dtype)


def _bcast(t: torch.Tensor, B: int) -> torch.Tensor:
    return t.expand(B, *t.shape[1:]) if t.shape[0] == 1 and B != 1 else t


def _transform(ws: WeightSpace, transforms) -> WeightSpace:
    B = ws.batch_size
    new_w, new_b = [], []
    for (po, so, pi, si), w, b in zip(transforms, ws.weights, ws.biases):
        extra = w.dim() - 3  # kernel axes
        if po is not None:
            po, so = _bcast(po.to(w.device), B), _bcast(so.to(device=w.device, dtype=w.dtype), B)
            idx = po.view(B, -1, *([1] * (w.dim() - 2))).expand(-1, -1, *w.shape[2:])
            w = torch.gather(w, 1, idx) * so.view(B, -1, *([1] * (w.dim() - 2)))
            b = torch.gather(b, 1, po) * so
        if pi is not None:
            pi, si = _bcast(pi.to(w.device), B), _bcast(si.to(device=w.device, dtype=w.dtype), B)
            idx = pi.view(B, 1, -1, *([1] * extra)).expand(-1, w.shape[1], -1, *w.shape[3:])
            w = torch.gather(w, 2, idx) / si.view(B, 1, -1, *([1] * extra))
        new_w.append(w)
        new_b.append(b)
    return WeightSpace(ws.spec, new_w, new_b)


def apply_uncoupled(ws: WeightSpace, g_out: GaugeElement, g_in: GaugeElement) -> WeightSpace:
    """A *non-symmetry*: transform the outputs of each hidden layer with ``g_out`` but the inputs of
    the next layer with ``g_in``. Unless ``g_out == g_in`` this changes the network's function."""
    outs = list(g_out.layer_transforms())
    ins = list(g_in.layer_transforms())
    return _transform(ws, [(o[0], o[1], i[2], i[3]) for o, i in zip(outs, ins)])


NON_SYMMETRY_KINDS = ("uncoupled_permutation", "mismatched_scaling", "wrong_scaling")


def sample_non_symmetry(ws: WeightSpace, kind: str, generator: torch.Generator | None = None) -> WeightSpace:
    """Transform ``ws`` by something that is *not* in its gauge group.

    Kinds:
        ``"uncoupled_permutation"``: permute a hidden layer's outputs, leave the next layer's
            inputs in place.
        ``"mismatched_scaling"``: scale a layer's outputs by ``q`` and undo it in the next layer
            with a different ``q'``.
        ``"wrong_scaling"``: a coupled scaling outside the allowed set: ``q = -1`` for positive
            scaling (ReLU), ``q = 2`` for sign flips (tanh/sine), ``q = -1`` for permutation-only.
    """
    spec = ws.spec
    if spec.num_layers < 2:
        raise ValueError("a network without hidden layers has no gauge group to break")
    B = ws.batch_size
    ident = GaugeElement.identity(spec, B, device=ws.device, dtype=ws.dtype)
    if kind == "uncoupled_permutation":
        if all(n < 2 for n in spec.hidden_widths):
            raise ValueError("every hidden layer has one neuron: no permutation to uncouple")
        perms = []
        for n in spec.hidden_widths:
            # a random cyclic shift by 1..n-1 moves every neuron (a derangement)
            k = int(torch.randint(1, n, (1,), generator=generator)) if n > 1 else 0
            perms.append(torch.roll(torch.arange(n, device=ws.device), k).expand(B, n).clone())
        g = GaugeElement(spec, perms, ident.scales)
        return apply_uncoupled(ws, g, ident)
    if kind == "mismatched_scaling":
        scales = [torch.full((B, n), 2.0, device=ws.device, dtype=ws.dtype) for n in spec.hidden_widths]
        g_out = GaugeElement(spec, ident.perms, scales)
        return apply_uncoupled(ws, g_out, ident)
    if kind == "wrong_scaling":
        scales = []
        for n, sym in zip(spec.hidden_widths, spec.symmetries):
            q = 2.0 if sym is Symmetry.SIGN else -1.0
            scales.append(torch.full((B, n), q, device=ws.device, dtype=ws.dtype))
        return GaugeElement(spec, ident.perms, scales).apply(ws, strict=False)
    raise ValueError(f"unknown non-symmetry kind {kind!r}; choose from {NON_SYMMETRY_KINDS}")
