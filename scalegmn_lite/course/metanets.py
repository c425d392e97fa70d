"""Exercise checks for notebooks 06 (invariant metanetworks), 07 (amortized optimization) and 08
(autoencoders and merging). Invariance and equivariance are measured with the library's own checkers
(:mod:`scalegmn_lite.nn.checks`), in float64, with random gauge elements and non-symmetries."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from ..nn.checks import check_equivariance, check_invariance, check_sensitivity, default_tolerance
from ..tasks.losses import distillation_kl, logits
from ..tasks.merging.paths import loss_barrier
from ..weightspace.gauge import GaugeElement
from ..weightspace.layer import Symmetry
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace
from .feedback import Feedback, require, run_check

__all__ = ["check_tanh_cnn_symmetry", "check_invariant_features", "check_gauge_shift", "check_sum_readout",
           "check_operator_equivariance", "check_two_round_operator", "check_collapsed_loss",
           "check_equivariance_verdicts", "check_loss_barrier", "check_weight_loss_floor", "check_distillation",
           "check_noise_power", "check_best_scale", "check_gmn_encoder", "TANH_CNN", "EXERCISE_07_4_NETWORKS"]

TANH_CNN = "conv2d 1-8-8/10 k3 tanh 1x8x8"
#: notebook 07, exercise 4: small CNNs of the study's family (conv1d, stride 2), tanh and ReLU
EXERCISE_07_4_NETWORKS = ("conv1d 1-4-4/3 k5 s2 tanh 1x16", "conv1d 1-4-4/3 k5 s2 relu 1x16")


def check_tanh_cnn_symmetry(answer: Symmetry | str) -> Feedback:
    """Notebook 06, exercise 1. The scaling group ScaleGMN (``mode="auto"``) uses for the hidden
    layers of :data:`TANH_CNN`."""

    def body():
        require(answer)
        want = set(NetworkSpec.from_text(TANH_CNN).symmetries)
        got = Symmetry(answer) if not isinstance(answer, Symmetry) else answer
        if {got} != want:
            return False, f"{got.value} is not it: which q satisfy tanh(q x) = q tanh(x)?"
        return True, f"{got.value}: the views become rho(x) + rho(-x) instead of x / |x|"

    return run_check("06.1", body)


def check_invariant_features(features: Callable[[WeightSpace], torch.Tensor],
                             spec: str = "mlp 6-5-5-3 relu") -> Feedback:
    """Notebook 06, exercise 2. ``features(ws)`` maps ``B`` networks to ``[B, F]`` features that are
    invariant to the gauge group (permutations and positive scalings of hidden ReLU neurons) but change
    under non-symmetries (uncoupled permutations, mismatched or wrong scalings)."""

    def body():
        s = NetworkSpec.from_text(spec)
        gen = torch.Generator().manual_seed(0)
        ws = WeightSpace.randn(s, 3, generator=gen, dtype=torch.float64)

        def model(items):
            return torch.cat([torch.as_tensor(features(w)).reshape(w.batch_size, -1) for w in items])

        inv = check_invariance(model, ws, n_samples=3, generator=gen)
        if not inv.ok(1e-6):
            return False, f"moved by a gauge element: relative change {inv.max_relative:.2e}"
        sens = check_sensitivity(model, ws, generator=gen)
        blind = [k for k, v in sens.items() if v < 1e-6]
        if blind:
            return False, f"invariant, but blind to non-symmetries {blind}: the features lose information"
        return True, "invariant to the gauge group and sensitive to every non-symmetry"

    return run_check("06.2", body)


def check_gauge_shift(shift: Callable[[nn.Module, WeightSpace, GaugeElement], float]) -> Feedback:
    """Notebook 06, exercise 3. ``shift(model, ws, g)`` returns the largest change of ``model``'s
    predictions when every network of ``ws`` is replaced by ``g.apply(ws)``, divided by the largest
    prediction for ``ws``; compared with :func:`~scalegmn_lite.tasks.invariant.study.gauge_shift` on
    an untrained StatNN (moved) and an untrained ScaleGMN (not moved), in float64."""
    from ..nn.baselines import StatNN
    from ..nn.scalegmn import ScaleGMN, ScaleGMNConfig
    from ..tasks.invariant.study import gauge_shift

    def body():
        s = NetworkSpec.from_text("mlp 6-5-5-3 relu")
        ws = WeightSpace.randn(s, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            models = {"StatNN": StatNN(s, 1).double().eval(),
                      "ScaleGMN": ScaleGMN(ScaleGMNConfig(hidden_dim=8, num_layers=2)).double().eval()}
        for name, model in models.items():
            want = gauge_shift(model, ws, seed=3)
            g = GaugeElement.sample(s, ws.batch_size, generator=torch.Generator().manual_seed(3), max_log_scale=1.0,
                                    dtype=torch.float64)
            with torch.no_grad():
                got = float(shift(model, ws, g))
            if abs(got - want) > 1e-9 + 1e-6 * want:
                return False, (f"{name}: got {got:.3g}, want {want:.3g}: the largest |f(g . theta) - f(theta)| over "
                               f"all networks, divided by the largest |f(theta)|")
        return True, "StatNN moves under the gauge, ScaleGMN does not (shift ~1e-16 in float64)"

    return run_check("06.3", body)


def check_sum_readout(model: nn.Module, invariant: bool) -> Feedback:
    """Notebook 06, exercise 4. ``model``: a ScaleGMN with the sum readout; ``invariant``: the
    learner's verdict, compared with :func:`~scalegmn_lite.nn.checks.check_invariance` of ``model``
    (float64, random ReLU MLPs and gauge elements)."""
    from ..nn.scalegmn import ScaleGMN

    def body():
        require(model, invariant)
        if not isinstance(model, ScaleGMN):
            return False, f"pass the ScaleGMN you built, got {type(model).__name__}"
        if model.config.readout != "sum":
            return False, (f"the model's readout is {model.config.readout!r}: build it with "
                           "ScaleGMNConfig(readout='sum')")
        gen = torch.Generator().manual_seed(0)
        ws = WeightSpace.randn(NetworkSpec.from_text("mlp 6-5-5-3 relu"), 3, generator=gen, dtype=torch.float64)
        res = check_invariance(model, ws, n_samples=3, generator=gen)
        if bool(invariant) != res.ok():
            return False, f"check_invariance says {res.ok()} (relative change {res.max_relative:.1e}): run it"
        return True, (f"still invariant (relative change {res.max_relative:.0e}): a sum over vertices is as "
                      "permutation invariant as a mean, and the summed features are scale invariant")

    return run_check("06.4", body)


def _operator_equivariance(operator, spec: str) -> tuple[bool, str]:
    """``(ok, message)``: ``operator`` (a float64 copy if a module) changes random networks of ``spec``
    and satisfies ``h(g . theta) = g . h(theta)`` for random gauge elements."""
    s = NetworkSpec.from_text(spec)
    gen = torch.Generator().manual_seed(0)
    ws = WeightSpace.randn(s, 3, generator=gen, dtype=torch.float64)
    op = copy.deepcopy(operator).double().eval() if isinstance(operator, nn.Module) else operator
    with torch.no_grad():
        moved = op(ws).max_abs_diff(ws)
    if moved < 1e-9:
        return False, "the operator returns its input unchanged: equivariant, but it does nothing"
    res = check_equivariance(lambda items: [op(w) for w in items], ws, n_samples=3, generator=gen)
    if not res.ok():
        return False, f"h(g . theta) != g . h(theta): relative error {res.max_relative:.2e} for {spec}"
    return True, f"equivariant on {spec} (relative error {res.max_relative:.0e} < "\
                 f"{default_tolerance(torch.float64):.0e})"


def check_operator_equivariance(operator: Callable[[WeightSpace], WeightSpace],
                                spec: str = "mlp 6-5-5-3 tanh") -> Feedback:
    """Notebook 07, exercise 1. ``operator(ws)`` returns updated weights; checked: ``h(g . theta) =
    g . h(theta)`` for random gauge elements of ``spec`` (float64 copy of a module), and the update is
    not zero."""

    def body():
        require(operator)
        return _operator_equivariance(operator, spec)

    return run_check("07.1", body)


def check_two_round_operator(operator: nn.Module, spec: str = "mlp 6-5-5-3 tanh") -> Feedback:
    """Notebook 07, exercise 2. ``operator``: the minimal operator with two message rounds. Checked:
    equivariant on ``spec`` (as in exercise 1), and information travels two hops: the bias update
    proposed for the *second* hidden layer changes when only the *first* layer's weights change
    (with one round of forward messages it cannot: a vertex only hears its incoming edges and the
    initial features of their senders)."""

    def body():
        require(operator)
        ok, message = _operator_equivariance(operator, spec)
        if not ok:
            return False, message
        op = copy.deepcopy(operator).double().eval() if isinstance(operator, nn.Module) else operator
        ws = WeightSpace.randn(NetworkSpec.from_text(spec), 3, generator=torch.Generator().manual_seed(1),
                               dtype=torch.float64)
        noise = torch.randn(ws.weights[0].shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        other = ws.replace_params(weights=[ws.weights[0] + 0.5 * noise, *ws.weights[1:]])
        with torch.no_grad():
            moved = float((op(other).biases[1] - op(ws).biases[1]).abs().max())
        if moved < 1e-12:
            return False, ("equivariant, but the second hidden layer's bias update ignores the first layer's "
                           "weights: information travels one hop only (run the message round twice)")
        return True, message + "; the second hidden layer now hears the first layer's weights (two hops)"

    return run_check("07.2", body)


def check_collapsed_loss(loss: float) -> Feedback:
    """Notebook 07, exercise 3. ``loss``: the test cross-entropy of a network of the study whose
    weights and biases have all collapsed to zero (10 classes), computed here on such a network."""
    from ..tasks.losses import classification_loss

    def body():
        require(loss)
        ws = WeightSpace.zeros(NetworkSpec.from_text("mlp 40-16-10 tanh"), 1, dtype=torch.float64)
        x = torch.randn(32, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        y = torch.randint(0, 10, (32,), generator=torch.Generator().manual_seed(1))
        want = float(classification_loss(ws, x, y))
        if abs(float(loss) - want) > 1e-3:
            return False, f"{float(loss):.4g} is not it: a zero network outputs equal logits for every class"
        return True, f"ln 10 = {math.log(10):.4f}: equal logits give probability 1/10 to the true class"

    return run_check("07.3", body)


def check_equivariance_verdicts(equivariant: Callable[[nn.Module, WeightSpace], bool]) -> Feedback:
    """Notebook 07, exercise 4. ``equivariant(op, ws)`` returns whether an operator is gauge
    equivariant on the networks ``ws``; compared with the truth for untrained operators (ScaleGMN-B
    in ``mode="auto"`` and GMN in ``mode="permutation"``, visible updates) on the tanh and ReLU
    CNNs of :data:`EXERCISE_07_4_NETWORKS`."""
    from ..tasks.amortized.operator import AmortizedOperator

    def body():
        gen = torch.Generator().manual_seed(0)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            ops = {m: AmortizedOperator(hidden_dim=8, num_layers=1, bidirectional=True, mode=m)
                   for m in ("auto", "permutation")}
        for op in ops.values():
            with torch.no_grad():
                op.gmn.update_scales.fill_(0.5)
        for text in EXERCISE_07_4_NETWORKS:
            ws = WeightSpace.randn(NetworkSpec.from_text(text), 3, generator=gen)
            for mode, op in ops.items():
                want = mode == "auto"
                got = equivariant(op, ws)
                if bool(got) != want:
                    name = "ScaleGMN-B (auto)" if want else "GMN (permutation)"
                    return False, f"{name} on {text}: you say {bool(got)}, check_equivariance says {want}"
        return True, "ScaleGMN-B equivariant on tanh and ReLU CNNs, GMN on neither"

    return run_check("07.4", body)


def check_loss_barrier(barrier: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Notebook 08, exercise 1. ``barrier(alphas, losses)`` with ``alphas [A]`` (from 0 to 1) and
    ``losses [B, A]`` returns ``[B]``: the largest gap between the loss and the straight line joining
    its endpoints; compared with :func:`~scalegmn_lite.tasks.merging.paths.loss_barrier`."""

    def body():
        gen = torch.Generator().manual_seed(0)
        a = torch.linspace(0, 1, 11, dtype=torch.float64)
        ends = torch.rand(6, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 3.0], dtype=torch.float64)
        line = ends[:, :1] * (1 - a) + ends[:, 1:] * a
        bump = torch.randn(6, 1, generator=gen, dtype=torch.float64) * torch.sin(torch.pi * a)
        losses = line + bump  # some curves dip below the line, some rise above it
        want = loss_barrier((a, losses))
        got = torch.as_tensor(barrier(a, losses), dtype=torch.float64)
        if got.shape != want.shape:
            return False, f"return one barrier per curve, shape {tuple(want.shape)}; got {tuple(got.shape)}"
        err = float((got - want).abs().max())
        if err > 1e-9:
            return False, f"off by up to {err:.3g}: the reference is the line between the endpoints, not their max"
        return True, "barrier = max over alpha of the loss minus the straight line between the endpoints"

    return run_check("08.1", body)


def check_weight_loss_floor(floor: Callable[[WeightSpace, WeightSpace], torch.Tensor]) -> Feedback:
    """Notebook 08, exercise 2. ``floor(theta, g_theta)`` returns ``[B]``: the smallest value of
    ``||y - theta||^2 + ||y - g.theta||^2`` (summed over all parameters) over a single output ``y``,
    which is what a weight-space loss costs an autoencoder whose encoder cannot tell the two apart."""

    def body():
        spec = NetworkSpec.from_text("siren 2-8-8-1")
        gen = torch.Generator().manual_seed(0)
        theta = WeightSpace.randn(spec, 4, generator=gen, dtype=torch.float64)
        g_theta = GaugeElement.sample(spec, 4, gen, dtype=torch.float64).apply(theta)
        want = 0.5 * (theta.flatten() - g_theta.flatten()).pow(2).sum(1)
        got = torch.as_tensor(floor(theta, g_theta), dtype=torch.float64)
        if got.shape != want.shape:
            return False, f"return one value per network, shape {tuple(want.shape)}; got {tuple(got.shape)}"
        err = float(((got - want).abs() / want).max())
        if err > 1e-9:
            return False, (f"off by a factor {float((got / want).mean()):.3g}: which y minimises the sum, "
                           "and how far is it from each target?")
        return True, "the best single output is the midpoint: half the squared distance, > 0 whenever g moves theta"

    return run_check("08.2", body)


def check_distillation(distill: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> Feedback:
    """Notebook 08, exercise 3. ``distill(student, teacher, T)`` with logits ``[B, N, C]`` returns
    ``[B]``: the distillation loss of :func:`~scalegmn_lite.tasks.losses.distillation_kl`
    (``T^2`` times the mean over samples of ``KL(softmax(teacher / T) || softmax(student / T))``),
    checked for ``T = 1`` and ``T = 4``."""

    def body():
        gen = torch.Generator().manual_seed(0)
        spec = NetworkSpec.from_text("mlp 5-8-4 relu")
        student = WeightSpace.randn(spec, 3, generator=gen, dtype=torch.float64)
        x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
        zs = logits(student, x)
        zt = 2 * torch.randn(zs.shape, generator=gen, dtype=torch.float64)
        for T in (1.0, 4.0):
            want = distillation_kl(student, zt, x, temperature=T)
            got = torch.as_tensor(distill(zs, zt, T), dtype=torch.float64)
            if got.shape != want.shape:
                return False, f"return one loss per network, shape {tuple(want.shape)}; got {tuple(got.shape)}"
            err = float(((got - want).abs() / want.abs()).max())
            if err > 1e-9:
                return False, (f"off at T = {T:g} by up to {err:.2g} (relative): softmax of logits / T, KL from "
                               "the teacher's distribution, mean over samples, times T^2")
        return True, "matches distillation_kl at T = 1 and T = 4"

    return run_check("08.3", body)


def check_noise_power(power: float) -> Feedback:
    """Notebook 08, exercise 4. ``power``: the exponent ``p`` in "weight-matching barrier ~ noise^p"
    for an orbit partner with relative weight noise; measured here on random SIRENs (``w0 = 10``,
    float64) between noise ``1e-4`` and ``1e-3``: the straight path from ``theta`` to ``theta + delta``
    and the pixel blend agree to first order in ``delta``, their MSE is of order ``|delta|^4``."""
    from ..tasks.losses import coordinate_grid, render_inr

    def body():
        require(power)
        spec = NetworkSpec.from_text("siren 2-16-16-1 a=10")
        ws = WeightSpace.randn(spec, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        coords = coordinate_grid(12, 12).to(torch.float64)
        alphas = torch.linspace(0, 1, 11, dtype=torch.float64)
        barrier = {}
        for noise in (1e-4, 1e-3):
            gen = torch.Generator().manual_seed(1)  # the same direction of noise at both sizes

            def add(t, noise=noise, gen=gen):
                rms = t.pow(2).flatten(1).mean(1).sqrt().view(-1, *([1] * (t.dim() - 1)))
                return t + noise * rms * torch.randn(t.shape, generator=gen, dtype=t.dtype)

            partner = ws.map(add)
            r0, r1 = render_inr(ws, coords), render_inr(partner, coords)
            losses = torch.stack([(render_inr(ws.lerp(partner, float(a)), coords) - ((1 - a) * r0 + a * r1))
                                  .pow(2).flatten(1).mean(1) for a in alphas], 1)
            barrier[noise] = float(loss_barrier((alphas, losses)).mean())
        measured = math.log10(barrier[1e-3] / barrier[1e-4])
        if abs(float(power) - measured) > 0.5:
            return False, (f"p = {float(power):g} is not it: at which order in the noise do the path and the "
                           "blend first differ, and what does the squared error do to that?")
        return True, (f"barrier ~ noise^{measured:.1f}: path and blend differ at second order in the noise, "
                      "and the MSE squares it")

    return run_check("08.4", body)


def check_best_scale(best_scale: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
                     ) -> Feedback:
    """Notebook 08, exercise 5. ``best_scale(a0, a1, c0, c1)`` with ``a [n, F_in]`` (each neuron's
    incoming weights and bias) and ``c [n, F_out]`` (its outgoing weights) returns ``s [n] > 0``
    minimising ``||a0 - s a1||^2 + ||c0 - c1 / s||^2`` per neuron: the positive scaling that brings a
    ReLU neuron of network 1 closest to its match in network 0. Checked against a fine search and
    against the library's weight matching (``group="PD"``), whose last step solves the same problem."""
    from ..tasks.merging.matching import _refine_scales

    def body():
        g = torch.Generator().manual_seed(0)
        n = 12
        f64 = torch.float64
        a0, a1 = torch.randn(n, 6, generator=g, dtype=f64), torch.randn(n, 6, generator=g, dtype=f64)
        c0, c1 = torch.randn(n, 4, generator=g, dtype=f64), torch.randn(n, 4, generator=g, dtype=f64)
        a1 = a1 * torch.exp(torch.randn(n, 1, generator=g, dtype=f64))  # neurons at other scales
        out = best_scale(a0, a1, c0, c1)
        require(out)
        s = torch.as_tensor(out, dtype=torch.float64).reshape(-1)
        if s.numel() != n:
            return False, f"expected one scale per neuron ({n}), got {s.numel()}"
        if not bool((s > 0).all()):
            return False, "every scale must be positive (a ReLU neuron only admits q > 0)"

        def cost(q):
            return (a0 - q[:, None] * a1).pow(2).sum(1) + (c0 - c1 / q[:, None]).pow(2).sum(1)

        t = torch.linspace(-4, 4, 8001, dtype=torch.float64)
        grid = torch.stack([cost(torch.full((n,), float(v), dtype=torch.float64).exp()) for v in t], 1)
        best = grid.min(1).values
        if bool((cost(s) > best + 1e-6 * (1 + best)).any()):
            k = int((cost(s) - best).argmax())
            return False, (f"neuron {k}: your scale {float(s[k]):.4g} costs {float(cost(s)[k]):.4g}, but "
                           f"{float(t[grid[k].argmin()].exp()):.4g} costs {float(best[k]):.4g}. Write the cost as a "
                           "function of s, set its derivative to zero, or search log s on a fine grid")
        # the library's refinement on a one-hidden-layer ReLU network with these rows and columns
        spec = NetworkSpec.from_text(f"mlp 5-{n}-4 relu")
        def net(a, c):
            return WeightSpace(spec, [a[None, :, :5], c.T[None].contiguous()], [a[None, :, 5], torch.zeros(1, 4,
                               dtype=torch.float64)])
        lib = _refine_scales(net(a0, c0), net(a1, c1), sweeps=1).scales[0][0]
        gap = float((cost(lib) - cost(s)).abs().max())
        return True, (f"per-neuron scales found (cost within {gap:.1e} of the library's weight matching): "
                      "rescaling cannot reduce a ReLU neuron's distance further")

    return run_check("08.5", body)


def check_gmn_encoder(encoder: nn.Module, breaks: Symmetry | str) -> Feedback:
    """Notebook 08, exercise 6. ``encoder``: the autoencoder's encoder rebuilt with
    ``mode="permutation"`` (or a :class:`~scalegmn_lite.tasks.merging.autoencoder.WeightAutoencoder`
    holding it); ``breaks``: the part of the SIREN's gauge group it is no longer invariant to
    (``"permutation"`` or ``"sign"``). Both measured with :func:`check_invariance` in float64."""
    from ..tasks.merging.autoencoder import WeightAutoencoder

    def body():
        require(encoder, breaks)
        model, spec = encoder, NetworkSpec.from_text("siren 2-8-8-1")
        if isinstance(model, WeightAutoencoder):
            model, spec = model.encoder, model.spec
        gen = torch.Generator().manual_seed(0)
        ws = WeightSpace.randn(spec, 4, generator=gen, dtype=torch.float64)
        perm = check_invariance(model, ws, n_samples=3, generator=gen, scale=False)
        sign = check_invariance(model, ws, n_samples=3, generator=gen, permute=False)
        if not perm.ok():
            return False, f"the encoder moves under permutations (relative change {perm.max_relative:.1e})"
        if sign.ok():
            return False, "the encoder is still invariant to sign flips: did you build it with mode='permutation'?"
        got = Symmetry(breaks) if not isinstance(breaks, Symmetry) else breaks
        if got is not Symmetry.SIGN:
            return False, (f"{got.value} is not it: the encoder stays invariant to permutations (relative change "
                           f"{perm.max_relative:.0e}) but not to sign flips ({sign.max_relative:.1e})")
        return True, (f"sign flips move the code (relative change {sign.max_relative:.1e}), permutations do not: "
                      "g . theta and theta get different codes, so the decoded orbit path is no longer flat")

    return run_check("08.6", body)
