"""ScaleGMN autoencoders of networks (issue 6, the autoencoder paper): an invariant encoder and a decoder that
outputs one representative of each gauge orbit.

For a fixed architecture ``spec`` with ``P`` parameters::

    z         = E(theta)                      E: invariant ScaleGMN, [B, latent_dim]
    theta_hat = D(z) = t + s * MLP(z)         D: decoder, [B, P] -> WeightSpace.unflatten(spec, .)

``t`` is a template network (one network of the training zoo, a buffer) and ``s`` a per-parameter
scale (the RMS of each weight/bias tensor over the training zoo, a buffer), so the decoder starts by
outputting a working network and only learns the offsets. The last decoder layer starts at zero;
``norm`` standardises each latent coordinate (``BatchNorm1d`` without affine parameters: batch
statistics in training, running statistics in ``eval()`` mode, the mode the model is built in).

Because ``E(g . theta) = E(theta)`` for every gauge element ``g`` (permutations, and scalings of the
kind each hidden layer admits), the decoder outputs *the same* network for a whole orbit: a
canonical representative learned from data, with no assignment problem to solve. The training
losses are in function space and gauge invariant as well (:class:`INRLoss`, :class:`DistillationLoss`):

* INRs: ``(1 / N) sum_n (f_{theta_hat}(x_n) - f_theta(x_n))^2`` on a coordinate grid;
* classifiers: ``T^2 KL(softmax(f_theta(x) / T) || softmax(f_{theta_hat}(x) / T))`` on data.

Saved with :func:`save_autoencoder` (state and config, atomic, SHA-256 verified by
:func:`~scalegmn_lite.common.io.load_tensors`) and restored with :func:`load_autoencoder`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ...common.distributed import current as current_dist
from ...common.distributed import sync_batchnorm
from ...common.io import CorruptFileError, load_tensors, save_tensors
from ...common.stable import StableTrainer, TrainingHistory, make_adamw
from ...nn.guards import check_weights
from ...nn.scalegmn import ScaleGMN, ScaleGMNConfig
from ...weightspace.spec import NetworkSpec, SpecError
from ...weightspace.weights import WeightSpace
from ..losses import distillation_kl, inr_mse, render_inr
from .matching import canonicalize_scale, weight_matching

__all__ = [
    "AutoencoderConfig",
    "WeightAutoencoder",
    "INRLoss",
    "DistillationLoss",
    "train_autoencoder",
    "canonical_targets",
    "weight_space_loss",
    "save_autoencoder",
    "load_autoencoder",
]

FORMAT = "scalegmn-lite/weight-autoencoder/1"


@dataclass(frozen=True)
class AutoencoderConfig:
    """Hyperparameters of :class:`WeightAutoencoder`.

    Attributes:
        latent_dim: size of the latent code ``z``.
        hidden_dim, num_layers: ScaleGMN encoder width and depth.
        bidirectional: backward messages in the encoder.
        decoder_hidden: widths of the decoder MLP's hidden layers.
    """

    latent_dim: int = 32
    hidden_dim: int = 32
    num_layers: int = 3
    bidirectional: bool = True
    decoder_hidden: tuple[int, ...] = (256, 256)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder_hidden", tuple(int(h) for h in self.decoder_hidden))
        if self.latent_dim < 1 or self.hidden_dim < 1 or self.num_layers < 0 or any(h < 1 for h in self.decoder_hidden):
            raise ValueError(f"latent_dim, hidden_dim, decoder widths must be >= 1 and num_layers >= 0: {self}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder_hidden"] = list(self.decoder_hidden)
        return d


def _layer_rms(ws: WeightSpace) -> torch.Tensor:
    """``[P]``: each parameter's tensor RMS over all networks (same layout as ``flatten``)."""
    parts = []
    for t in ws.params():
        rms = t.detach().pow(2).mean().sqrt().clamp_min(1e-4)
        parts.append(rms.expand(t[0].numel()))
    return torch.cat(parts)


class WeightAutoencoder(nn.Module):
    """Encoder: invariant :class:`~scalegmn_lite.nn.scalegmn.ScaleGMN` (``mode="auto"``: each hidden layer's
    own symmetry); decoder: MLP from the latent to all ``P`` parameters of ``spec``.

    Args:
        spec: the architecture every input and output network has.
        config: :class:`AutoencoderConfig`.
        reference: networks of ``spec`` (e.g. the training zoo) that set the decoder's template
            (``reference[0]``) and per-tensor scales; default: :meth:`WeightSpace.randn`.
        device, dtype: where the parameters live.
    """

    def __init__(self, spec: NetworkSpec, config: AutoencoderConfig | None = None,
                 reference: WeightSpace | None = None, device=None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.spec = spec
        self.config = c = config or AutoencoderConfig()
        self.encoder = ScaleGMN(ScaleGMNConfig(
            hidden_dim=c.hidden_dim, num_layers=c.num_layers, mode="auto", bidirectional=c.bidirectional,
            head="invariant", out_dim=c.latent_dim, max_kernel=max(1, spec.max_kernel_numel),
            max_layers=max(16, spec.num_layers), max_io=max(64, *spec.widths[:1], spec.widths[-1])))
        # standardised codes (batch statistics while training, running ones after): without it the
        # decoder can ignore codes that vary little between networks and collapse to one output
        self.latent_norm = nn.BatchNorm1d(c.latent_dim, affine=False)
        dims = [c.latent_dim, *c.decoder_hidden, spec.num_params]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.decoder = nn.Sequential(*layers[:-1])
        last = self.decoder[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if reference is None:
            reference = WeightSpace.randn(spec, 2, torch.Generator().manual_seed(0))
        if reference.spec != spec:
            raise SpecError(f"reference networks are {reference.spec.to_text()!r}, the autoencoder is for "
                            f"{spec.to_text()!r}")
        ref = reference.detach().to(device="cpu", dtype=torch.float32)
        # positive-scale (ReLU) layers in their canonical scale (unit-norm incoming rows, the factor
        # pushed into the next layer): a gauge transform, so the template computes the same function,
        # but template, per-tensor scales and canonical targets all live in one well-conditioned gauge
        ref = canonicalize_scale(ref).apply(ref)
        self.register_buffer("template", ref.flatten()[0].clone())
        self.register_buffer("param_scale", _layer_rms(ref))
        self.to(device=device, dtype=dtype)
        self.eval()  # train_autoencoder switches to training mode and back

    # ------------------------------------------------------------------ parts
    @property
    def device(self) -> torch.device:
        return self.template.device

    def _inputs(self, ws: WeightSpace) -> WeightSpace:
        if ws.spec != self.spec:
            raise SpecError(f"the autoencoder is for {self.spec.to_text()!r}, got networks {ws.spec.to_text()!r}; "
                            "select a single-spec zoo (zoo.where(activation=...)) or build one per spec")
        return ws.to(device=self.device, dtype=self.template.dtype)

    def encode(self, ws: WeightSpace) -> torch.Tensor:
        """``[B, latent_dim]``, invariant under the gauge group of ``spec``. NaN/inf (or ``meta``)
        weights raise :class:`~scalegmn_lite.weightspace.weights.NonFiniteWeightsError` naming the networks."""
        check_weights(ws, "WeightAutoencoder.encode")
        return self.encoder(self._inputs(ws))

    def decode(self, z: torch.Tensor) -> WeightSpace:
        """``z [B, latent_dim]`` -> ``B`` networks of ``spec`` (the canonical representatives)."""
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"latent codes must be [B, {self.config.latent_dim}], got {tuple(z.shape)}")
        flat = self.template + self.param_scale * self.decoder(self.latent_norm(z.to(self.template)))
        return WeightSpace.unflatten(self.spec, flat)

    def forward(self, ws: WeightSpace) -> tuple[torch.Tensor, WeightSpace]:
        """``(z, theta_hat)`` for ``B`` input networks."""
        z = self.encode(ws)
        return z, self.decode(z)

    def reconstruct(self, ws: WeightSpace, batch_size: int = 256) -> WeightSpace:
        """``D(E(ws))`` without gradients, in chunks of ``batch_size`` networks."""
        with torch.no_grad():
            return WeightSpace.stack([self(ws[i:i + batch_size])[1] for i in range(0, ws.batch_size, batch_size)])

    def encode_all(self, ws: WeightSpace, batch_size: int = 256) -> torch.Tensor:
        """``E(ws)`` without gradients, in chunks: ``[B, latent_dim]``."""
        with torch.no_grad():
            return torch.cat([self.encode(ws[i:i + batch_size]) for i in range(0, ws.batch_size, batch_size)])


# ---------------------------------------------------------------------- function-space losses
@dataclass
class INRLoss:
    """``[B]``: MSE between the decoded INRs' and the input INRs' renderings on ``coords [N, d]``."""

    coords: torch.Tensor

    def __call__(self, decoded: WeightSpace, original: WeightSpace) -> torch.Tensor:
        c = self.coords.to(device=decoded.device, dtype=decoded.dtype)
        with torch.no_grad():
            target = render_inr(original.to(device=decoded.device, dtype=decoded.dtype), c)
        return inr_mse(decoded, target, c)


@dataclass
class DistillationLoss:
    """``[B]``: distillation KL at ``temperature`` of the decoded (student) against the input
    (teacher) classifiers on inputs ``x [N, *input_shape]`` (``batch``: random ``batch`` rows per call)."""

    x: torch.Tensor
    temperature: float = 2.0
    batch: int | None = 256
    generator: torch.Generator | None = None

    def __call__(self, decoded: WeightSpace, original: WeightSpace) -> torch.Tensor:
        x = self.x
        if self.batch is not None and self.batch < x.shape[0]:
            idx = torch.randperm(x.shape[0], generator=self.generator)[: self.batch]
            x = x[idx.to(x.device)]
        x = x.to(device=decoded.device, dtype=decoded.dtype)
        return distillation_kl(decoded, original.to(device=decoded.device, dtype=decoded.dtype), x, self.temperature)


LossFn = Callable[[WeightSpace, WeightSpace], torch.Tensor]


def canonical_targets(model: WeightAutoencoder, ws: WeightSpace, max_sweeps: int = 100, seed: int = 0,
                      batch_size: int = 64, progress: bool = False) -> WeightSpace:
    """``[B]`` networks ``g_b . ws_b`` aligned to the decoder's template ``t`` by
    :func:`~scalegmn_lite.tasks.merging.matching.weight_matching` (signed permutations, scale normalisation), with
    positive-scale (ReLU) layers then put in their canonical scale (unit-norm incoming rows,
    :func:`~scalegmn_lite.tasks.merging.matching.canonicalize_scale`) rather than the template's: matching to the
    template's scales pushes a network's whole scale into its last layer (up to ~20x the template's
    weights in a quick ReLU zoo), which swamped the weight-space loss.

    Each ``g_b`` is a symmetry, so the targets compute the same functions as ``ws``; they are one
    fixed representative per orbit (the one closest to ``t`` found by weight matching), which makes
    the weight-space loss ``||D(E(theta)) - g . theta||^2`` well defined for an invariant encoder.
    Computed once before training (CPU, pair by pair), in ``model``'s dtype and device.
    """
    ws = model._inputs(ws).detach()
    out = []
    rng = range(0, ws.batch_size, batch_size)
    if progress:
        from ...common.progress import progress_bar
        rng = progress_bar(rng, desc="canonical targets")
    for i in rng:
        chunk = ws[i:i + batch_size]
        ref = WeightSpace.unflatten(model.spec, model.template.unsqueeze(0).expand(chunk.batch_size, -1))
        g = weight_matching(ref, chunk, max_sweeps=max_sweeps, seed=seed)
        aligned = g.apply(chunk)
        out.append(canonicalize_scale(aligned).apply(aligned))
    return WeightSpace.stack(out)


def weight_space_loss(model: WeightAutoencoder, decoded: WeightSpace, target: WeightSpace) -> torch.Tensor:
    """``[B]``: ``mean_p ((theta_hat_p - target_p) / s_p)^2``, the squared error per parameter in units
    of its tensor's RMS ``s`` (the decoder's ``param_scale``)."""
    d = (decoded.flatten() - target.flatten().to(decoded.flatten())) / model.param_scale
    return d.pow(2).mean(1)


def train_autoencoder(
    model: WeightAutoencoder,
    train: WeightSpace,
    loss_fn: LossFn,
    steps: int = 500,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    warmup_steps: int = 20,
    clip_norm: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    targets: WeightSpace | None = None,
    weight_loss: float = 0.0,
    dist=None,
) -> TrainingHistory:
    """Train ``model`` on the networks ``train`` (``B`` networks of ``model.spec``) with AdamW,
    cosine decay, warm-up, clipping and rollback (:class:`~scalegmn_lite.common.stable.StableTrainer`).

    Step ``t`` draws ``batch_size`` networks (seeded) and minimises ``mean_b loss_fn(D(E(theta_b)), theta_b)``.
    With ``targets`` (``B`` networks aligned with ``train``, e.g. :func:`canonical_targets`) and
    ``weight_loss > 0`` it adds ``weight_loss * mean_b weight_space_loss(D(E(theta_b)), targets_b)``:
    an auxiliary pull towards a fixed representative of each orbit that keeps the decoder from
    collapsing to one network. With ``checkpoint_path``, the model is saved there every
    ``checkpoint_every`` steps (if > 0) and at the end (by rank 0 only in a distributed run).
    ``dist`` (default: the initialised process group, if any): data-parallel over the networks of each
    step's global batch, BatchNorm on global-batch statistics, the same result for any number of processes.
    Returns the :class:`~scalegmn_lite.common.stable.TrainingHistory`.
    """
    if train.spec != model.spec:
        raise SpecError(f"training networks are {train.spec.to_text()!r}, the model is for {model.spec.to_text()!r}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    train = train.detach().to(device=model.device, dtype=model.template.dtype)
    if weight_loss < 0:
        raise ValueError(f"weight_loss must be >= 0, got {weight_loss}")
    if weight_loss > 0:
        if targets is None or targets.spec != model.spec or targets.batch_size != train.batch_size:
            raise ValueError("weight_loss > 0 needs targets: one network of the model's spec per training network "
                             "(canonical_targets(model, train))")
        targets = targets.detach().to(device=model.device, dtype=model.template.dtype)
    gen = torch.Generator().manual_seed(seed)
    opt = make_adamw(model.parameters(), lr=lr, weight_decay=weight_decay)
    def cosine(t: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))

    dist = dist if dist is not None else current_dist()
    dist.require_batch(min(batch_size, train.batch_size), "train_autoencoder")
    dist.broadcast_module(model)
    trainer = StableTrainer(model, opt, warmup_steps=warmup_steps, clip_norm=clip_norm, spike_factor=20.0,
                            snapshot_every=25, lr_schedule=cosine, progress=progress,
                            dist=dist if dist.enabled else None)
    B = train.batch_size
    model.train()

    def step_fn(t: int):
        idx = torch.randperm(B, generator=gen)[: min(batch_size, B)].to(model.device)
        n, idx = len(idx), dist.local(idx)  # this rank's networks of the global batch
        batch = train[idx]
        _, dec = model(batch)
        loss = loss_fn(dec, batch).mean()
        if weight_loss > 0:
            loss = loss + weight_loss * weight_space_loss(model, dec, targets[idx]).mean()
        return loss * dist.share(n)

    done = 0
    chunk = checkpoint_every if checkpoint_every and checkpoint_path else steps
    while done < steps:
        n = min(chunk, steps - done)
        with sync_batchnorm(model, dist):
            history = trainer.run(step_fn, n)
        done += n
        if checkpoint_path is not None:
            dist.on_main(save_autoencoder, model, checkpoint_path, extra={"steps": done})
    model.eval()
    return history


# ---------------------------------------------------------------------- storage
def save_autoencoder(model: WeightAutoencoder, path: str | Path, extra: dict | None = None) -> str:
    """Save state and config to ``path`` (+ ``path.json``), atomically and hashed; returns the hash."""
    meta = {"format": FORMAT, "spec": model.spec.to_text(), "input_shape": list(model.spec.input_shape or []),
            "config": model.config.to_dict(), "dtype": str(model.template.dtype).replace("torch.", ""),
            "extra": extra or {}}
    return save_tensors(path, model.state_dict(), meta)


def load_autoencoder(path: str | Path, device=None) -> WeightAutoencoder:
    """Restore a :class:`WeightAutoencoder` saved by :func:`save_autoencoder`; raises
    :class:`~scalegmn_lite.common.io.CorruptFileError` for a missing, truncated or altered file."""
    if Path(path).is_file() and not Path(f"{path}.json").exists():
        raise CorruptFileError(
            f"{path}: no {Path(path).name}.json next to it, so not written by save_autoencoder (a plain torch.save "
            "file?). Save with save_autoencoder(model, path) (atomic, hashed, with spec and config); to use a plain "
            "state dict, build WeightAutoencoder(spec, config) and call model.load_state_dict(torch.load(path))")
    state, meta = load_tensors(path)
    if meta.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not a weight autoencoder (format {meta.get('format')!r}, expected {FORMAT!r})")
    spec = NetworkSpec.from_text(meta["spec"])
    if meta.get("input_shape") and tuple(spec.input_shape or ()) != tuple(meta["input_shape"]):
        spec = NetworkSpec(spec.layers, tuple(meta["input_shape"]))
    cfg = AutoencoderConfig(**meta["config"])
    dtype = getattr(torch, meta.get("dtype", "float32"))
    model = WeightAutoencoder(spec, cfg, device="cpu", dtype=dtype)
    model.load_state_dict(state)
    return model.to(device=device).eval()
