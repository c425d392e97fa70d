"""WeightAutoencoder: invariant encoder (and not invariant under non-symmetries), decoder shapes per
architecture, function-space losses, training, save/load round trip and corruption errors."""

from __future__ import annotations

import pytest
import torch

from scalegmn_lite.common.io import CorruptFileError
from scalegmn_lite.nn.checks import check_invariance, check_sensitivity, default_tolerance
from scalegmn_lite.tasks.losses import coordinate_grid
from scalegmn_lite.tasks.merging.autoencoder import (
    AutoencoderConfig,
    DistillationLoss,
    INRLoss,
    WeightAutoencoder,
    canonical_targets,
    load_autoencoder,
    save_autoencoder,
    train_autoencoder,
    weight_space_loss,
)
from scalegmn_lite.weightspace.gauge import GaugeElement
from scalegmn_lite.weightspace.spec import NetworkSpec, SpecError
from scalegmn_lite.weightspace.weights import WeightSpace

SPECS = {
    "mlp-relu": "mlp 4-5-6-3 relu",
    "mlp-tanh": "mlp 4-5-3 tanh",
    "siren": "siren 2-6-6-1",
    "conv1d": "conv1d 1-3-4/3 k3 relu 1x10",
}
CFG = AutoencoderConfig(latent_dim=5, hidden_dim=6, num_layers=2, decoder_hidden=(16,))


def _ae(name, seed=0):
    spec = NetworkSpec.from_text(SPECS[name])
    torch.manual_seed(seed)
    ref = WeightSpace.randn(spec, 3, torch.Generator().manual_seed(seed))
    return WeightAutoencoder(spec, CFG, reference=ref), spec


@pytest.mark.parametrize("name", list(SPECS))
def test_encoder_is_invariant_and_sensitive(name):
    ae, spec = _ae(name)
    ws = WeightSpace.randn(spec, 3, torch.Generator().manual_seed(1), dtype=torch.float64)
    res = check_invariance(ae.encoder, ws, n_samples=3, generator=torch.Generator().manual_seed(2))
    assert res.max_relative < default_tolerance(torch.float64), res
    sens = check_sensitivity(ae.encoder, ws, generator=torch.Generator().manual_seed(3))
    assert min(sens.values()) > 1e-4, sens  # every kind of non-symmetry moves the latent code


@pytest.mark.parametrize("name", list(SPECS))
def test_decoder_outputs_the_architecture(name):
    ae, spec = _ae(name)
    ws = WeightSpace.randn(spec, 4, torch.Generator().manual_seed(1))
    z, dec = ae(ws)
    assert z.shape == (4, CFG.latent_dim)
    assert dec.spec == spec and dec.batch_size == 4
    assert [tuple(w.shape[1:]) for w in dec.weights] == list(spec.weight_shapes)
    assert [tuple(b.shape[1:]) for b in dec.biases] == list(spec.bias_shapes)
    # the last decoder layer starts at zero: every code decodes to the template network
    assert torch.allclose(dec.flatten(), ae.template.expand(4, -1))
    with pytest.raises(ValueError, match="latent codes"):
        ae.decode(torch.zeros(2, CFG.latent_dim + 1))


def test_wrong_spec_is_rejected():
    ae, _ = _ae("mlp-relu")
    other = WeightSpace.randn(NetworkSpec.from_text(SPECS["mlp-tanh"]), 2)
    with pytest.raises(SpecError, match="autoencoder is for"):
        ae.encode(other)


def test_function_space_losses_are_zero_on_the_input_and_gauge_invariant():
    from scalegmn_lite.weightspace.gauge import GaugeElement

    spec = NetworkSpec.from_text(SPECS["siren"])
    ws = WeightSpace.randn(spec, 3, torch.Generator().manual_seed(0), dtype=torch.float64)
    g = GaugeElement.sample(spec, 3, torch.Generator().manual_seed(1), dtype=torch.float64)
    inr = INRLoss(coordinate_grid(5, 5, dtype=torch.float64))
    assert float(inr(g.apply(ws), ws).max()) < 1e-20
    assert float(inr(ws[[1, 2, 0]], ws).min()) > 1e-6
    cspec = NetworkSpec.from_text(SPECS["mlp-tanh"])
    cw = WeightSpace.randn(cspec, 3, torch.Generator().manual_seed(0), dtype=torch.float64)
    cg = GaugeElement.sample(cspec, 3, torch.Generator().manual_seed(1), dtype=torch.float64)
    kd = DistillationLoss(torch.randn(30, 4, dtype=torch.float64), temperature=2.0, batch=None)
    assert float(kd(cg.apply(cw), cw).abs().max()) < 1e-12
    assert float(kd(cw[[1, 2, 0]], cw).min()) > 1e-6


def test_training_reduces_the_loss():
    spec = NetworkSpec.from_text(SPECS["mlp-tanh"])
    ws = WeightSpace.randn(spec, 16, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ae = WeightAutoencoder(spec, CFG, reference=ws)
    loss = DistillationLoss(torch.randn(64, 4, generator=torch.Generator().manual_seed(1)), batch=None)
    with torch.no_grad():
        before = float(loss(ae(ws)[1], ws).mean())
    hist = train_autoencoder(ae, ws, loss, steps=60, batch_size=8, lr=3e-3, warmup_steps=5, progress=False)
    with torch.no_grad():
        after = float(loss(ae(ws)[1], ws).mean())
    assert hist.num_steps == 60 and not hist.rollbacks
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("name", ["mlp-tanh", "siren", "mlp-relu", "conv1d"])
def test_canonical_targets_are_one_representative_per_orbit(name):
    from scalegmn_lite.weightspace.gauge import GaugeElement, sample_non_symmetry

    ae, spec = _ae(name)
    ae = ae.double()
    ws = WeightSpace.randn(spec, 4, torch.Generator().manual_seed(1), dtype=torch.float64)
    g = GaugeElement.sample(spec, 4, torch.Generator().manual_seed(2), dtype=torch.float64)
    t, tg = canonical_targets(ae, ws), canonical_targets(ae, g.apply(ws))
    x = torch.randn(7, *spec.input_shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(t(x), ws(x), atol=1e-10)  # the same functions
    assert torch.allclose(t.flatten(), tg.flatten(), atol=1e-10)  # the same representative for the whole orbit
    bad = sample_non_symmetry(ws, "uncoupled_permutation", generator=torch.Generator().manual_seed(4))
    assert (canonical_targets(ae, bad).flatten() - t.flatten()).abs().max() > 1e-3


def test_relu_targets_and_template_are_in_canonical_scale():
    ae, spec = _ae("mlp-relu")
    gen = torch.Generator().manual_seed(5)
    ws = WeightSpace.randn(spec, 4, gen)
    ws = GaugeElement.sample(spec, 4, gen).apply(ws)  # random positive scalings of the hidden neurons
    t = canonical_targets(ae, ws)
    template = WeightSpace.unflatten(spec, ae.template.unsqueeze(0))
    for net in (t, template):
        for l in range(spec.num_layers - 1):  # every hidden ReLU layer: unit-norm incoming rows
            rows = torch.cat([net.weights[l].flatten(2), net.biases[l].unsqueeze(-1)], -1).norm(dim=-1)
            assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5), rows
    x = torch.randn(5, spec.widths[0], generator=gen)
    assert torch.allclose(t(x), ws(x), atol=1e-4, rtol=1e-4)  # still the same functions


def test_weight_loss_pulls_the_decoder_to_the_targets():
    spec = NetworkSpec.from_text(SPECS["mlp-tanh"])
    ws = WeightSpace.randn(spec, 16, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ae = WeightAutoencoder(spec, CFG, reference=ws)
    loss = DistillationLoss(torch.randn(64, 4, generator=torch.Generator().manual_seed(1)), batch=None)
    targets = canonical_targets(ae, ws)
    with pytest.raises(ValueError, match="needs targets"):
        train_autoencoder(ae, ws, loss, steps=2, weight_loss=1.0, progress=False)
    with torch.no_grad():
        before = float(weight_space_loss(ae, ae(ws)[1], targets).mean())
    train_autoencoder(ae, ws, loss, steps=60, batch_size=8, lr=3e-3, warmup_steps=5, progress=False,
                      targets=targets, weight_loss=1.0)
    with torch.no_grad():
        after = float(weight_space_loss(ae, ae(ws)[1], targets).mean())
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("name", ["siren", "conv1d"])
def test_save_load_round_trip_and_corruption(tmp_path, name):
    ae, spec = _ae(name)
    with torch.no_grad():
        ae.decoder[-1].bias.normal_()
    path = tmp_path / "ae.pt"
    save_autoencoder(ae, path, extra={"note": "test"})
    back = load_autoencoder(path)
    assert back.spec == spec and back.config == ae.config
    ws = WeightSpace.randn(spec, 2, torch.Generator().manual_seed(5))
    z0, d0 = ae(ws)
    z1, d1 = back(ws)
    assert torch.equal(z0, z1) and torch.equal(d0.flatten(), d1.flatten())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="hash"):
        load_autoencoder(path)
    with pytest.raises(CorruptFileError, match="missing"):
        load_autoencoder(tmp_path / "nothing.pt")


def test_checkpoints_are_written(tmp_path):
    spec = NetworkSpec.from_text(SPECS["mlp-tanh"])
    ws = WeightSpace.randn(spec, 8, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ae = WeightAutoencoder(spec, CFG, reference=ws)
    loss = DistillationLoss(torch.randn(16, 4), batch=None)
    path = tmp_path / "ck.pt"
    train_autoencoder(ae, ws, loss, steps=6, batch_size=4, progress=False, checkpoint_path=path, checkpoint_every=3)
    import json

    meta = json.loads((tmp_path / "ck.pt.json").read_text())["meta"]
    assert meta["extra"]["steps"] == 6
    back = load_autoencoder(path)
    assert torch.equal(back.encode(ws), ae.encode(ws))
