"""Made-up merging results shared by the merging tests: dicts shaped like a stored ``results/*/merging.json``
before ``recompute_result`` (zoos, runs_by_seed, kinds, screen, fairness, controls, clusters), without claims."""

from __future__ import annotations

import numpy as np


def fake_merging_result(zoos: dict[str, str] | None = None, n_pairs: int = 40, seeds: int = 2, noise: float = 0.05,
                        shuffled_loss: float = 2.5, seed: int = 0) -> dict:
    """A result of the ``zoos`` (name -> kind, ``"inr"`` or ``"classifier"``; one CNN zoo ``"cnn"`` by
    default) with ``n_pairs`` disjoint pairs and ``seeds`` autoencoder seeds, every figure drawn around a
    fixed mean with Gaussian ``noise``. The decoder's path (barrier 0.1, max loss 0.8) beats naive
    interpolation (1.0, 2.0), weight matching (0.5, 1.5), the constant decoder (flat, 2.3), the mean network
    (flat, 3.0) and, with the default ``shuffled_loss`` of 2.5, the shuffled codes by a clear margin; a
    ``shuffled_loss`` below 0.8 makes it lose to the shuffled codes on the max path loss."""
    zoos = {"cnn": "classifier"} if zoos is None else zoos
    rng = np.random.default_rng(seed)

    def noisy(v, n):
        return (v + noise * rng.standard_normal(n)).tolist()

    def losses(mx, mean, end):
        return {"max_loss": noisy(mx, n_pairs), "mean_loss": noisy(mean, n_pairs), "endpoint_loss": noisy(end, n_pairs)}

    def path(bar, mx):
        return {"barrier": noisy(bar, n_pairs), **losses(mx, mx - 0.1, mx - 0.2)}

    def flat(mx, mean, end):  # a control that outputs one network for every input: barrier exactly 0
        return {"barrier": [0.0] * n_pairs, **losses(mx, mean, end)}

    n_net = 2 * n_pairs
    pairs = [(2 * i, 2 * i + 1) for i in range(n_pairs)]
    res = {"zoos": {}, "runs_by_seed": {}, "kinds": {}, "screen": {}, "fairness": {}, "controls": {}, "clusters": {}}
    for zoo, kind in zoos.items():
        q = "decoded_psnr" if kind == "inr" else "decoded_agreement"
        orbit = {g: {"barrier": {"naive": 1.0, "weight_matching_P": 0.8, "weight_matching": 0.001, "decoded": 0.0},
                     "per_network_barrier": {"naive": noisy(1.0, 20), "weight_matching_P": noisy(0.8, 20),
                                             "weight_matching": [0.001] * 20, "decoded": [0.0] * 20},
                     "networks": 20, "runs": 1} for g in ("P", "D", "PD")}
        runs = [{"seed": s, "pair_path": {"naive": path(1.0, 2.0), "weight_matching": path(0.5, 1.5),
                                          "decoded": path(0.1, 0.8)},
                 "reconstruction_per_network": {q: noisy(0.9, n_net)}, "orbit": orbit,
                 "invariance_f64": {"max_relative": 1e-13}} for s in range(seeds)]
        res["zoos"][zoo] = {**runs[0], "pairs": pairs}
        res["runs_by_seed"][zoo] = runs
        res["kinds"][zoo] = kind
        res["screen"][zoo] = {"pairs": pairs, "pair_clusters": list(range(n_pairs)),
                              "per_pair": {"naive": runs[0]["pair_path"]["naive"]["barrier"]}}
        floor = {"mean_image_psnr": 0.5, "original_psnr_vs_digit": 2.0} if kind == "inr" else \
            {"one_network_accuracy": 0.7, "one_network_agreement": 0.5}
        res["fairness"][zoo] = {"floor": floor}
        sh = shuffled_loss
        res["controls"][zoo] = {
            "constant-decoder": {"per_pair": flat(2.3, 2.2, 2.3), "per_network": noisy(0.5, n_net)},
            "mean-network": {"per_pair": flat(3.0, 3.0, 3.0), "per_network": noisy(0.1, n_net)},
            "shuffled-codes": {"per_pair": {k: [noisy(v, n_pairs) for _ in range(seeds)] for k, v in
                                            {"barrier": 0.2, "max_loss": sh, "mean_loss": sh - 0.1,
                                             "endpoint_loss": sh - 0.2}.items()},
                               "per_network": [noisy(0.4, n_net) for _ in range(seeds)]}}
        res["clusters"][zoo] = {"pairs": list(range(n_pairs)), "networks": list(range(n_net)),
                                "orbit": list(range(20))}
    return res
