"""Notebook 08's vocabulary, figures and reference-run narration (issue 34).

Two different paths go through the autoencoder, and the notebook names them apart:

* the **latent path** ``D((1 - alpha) z_A + alpha z_B)``: interpolate the *codes*, decode every point
  (the library's method ``"latent"``);
* the **canonical path** ``(1 - alpha) D(z_A) + alpha D(z_B)``: decode both networks into the canonical
  gauge, then interpolate their *weights* (the library's and the results files' method ``"decoded"``;
  every merging claim is about this path).

A **latent code** (or code) ``z = E(theta)`` is the encoder's output: one vector per network, the same
for every member of the network's gauge orbit.

:func:`claims_markdown` and :func:`comparisons_markdown` render ``merging.json``'s claims as full
Markdown tables (no truncation; every column named), :func:`reference_story` writes the reference
run's paragraph from the file and returns the facts it states, for the notebook's asserts. Verdicts
use the course's one vocabulary (:data:`~scalegmn_lite.course.reference.VERDICT_WORDS`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..common.stats import decide
from .reference import VERDICT_WORDS
from .widgets import MERGE_STYLE

__all__ = ["PATH_STYLE", "PATH_NAMES", "plot_paths", "legend_below",
           "CONTROL_WORDS", "COMBINED_WORDS", "verdicts_markdown", "claims_markdown", "claim_comparisons",
           "claim_parts", "comparisons_markdown", "reference_story", "heldout_images_of_split", "SHIPPED_SPLIT",
           "orbit_thresholds", "reconstruction_summary", "classifier_floor_story", "orbit_level_story"]

#: the notebook's name for each merging method (library key -> words); "decoded" is the canonical path
PATH_NAMES = {"naive": "naive path", "weight_matching_P": "weight matching, P only (Git Re-Basin)",
              "weight_matching_D": "weight matching, D only", "weight_matching": "weight matching, P and D",
              "decoded": "canonical path (autoencoder)", "latent": "latent path (autoencoder)"}
#: line styles of :data:`~scalegmn_lite.course.widgets.MERGE_STYLE` with the names of :data:`PATH_NAMES`
PATH_STYLE = {m: {**st, "label": PATH_NAMES.get(m, st["label"])} for m, st in MERGE_STYLE.items()}

#: the controls of the merging claims, in words (``scalegmn_lite.tasks.merging.controls``)
CONTROL_WORDS = {
    "constant-decoder": "constant decoder (the floor network for every input)",
    "mean-network": "mean network (the training networks' weight mean for every input)",
    "shuffled-codes": "shuffled codes (the autoencoder decoding another input's code)",
}
_CONTROL_SHORT = {"constant-decoder": "constant decoder", "mean-network": "mean network",
                  "shuffled-codes": "shuffled-codes control"}
ZOO_WORDS = {"inr": "INRs", "cnn-relu": "CNNs", "inr-shared-init": "shared-init INRs", "cnn-tanh": "tanh CNNs"}
#: units of a path's loss and of a reconstruction, per zoo kind
PATH_UNIT = {"inr": "MSE", "classifier": "nats"}
RECON_UNIT = {"inr": "dB PSNR", "classifier": "agreement"}


def plot_paths(ax, curves: Mapping[str, Sequence[float]], ylabel: str = "loss", title: str | None = None,
               markevery: int = 4):
    """Mean loss along each method's path on ``ax`` (method -> values at evenly spaced alphas), styled
    and named by :data:`PATH_STYLE`; no legend (see :func:`legend_below`). Labels are >= 8 pt."""
    for m, v in curves.items():
        v = [float(x) for x in v]
        a = np.linspace(0, 1, len(v))
        ax.plot(a, v, lw=1.6, ms=4, markevery=markevery, **PATH_STYLE.get(m, dict(label=m)))
    ax.set_xlabel(r"$\alpha$", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def legend_below(fig, axes=None, ncol: int = 3, fontsize: float = 8):
    """One legend for the whole figure, outside the data: below the axes (the figure must use
    ``layout="constrained"``). Entries are gathered from ``axes`` (default: all), each label once."""
    axes = fig.axes if axes is None else list(np.atleast_1d(axes).ravel())
    seen: dict = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    order = [st["label"] for st in PATH_STYLE.values()]  # merging methods in their usual order, others after
    labels = sorted(seen, key=lambda lab: order.index(lab) if lab in order else len(order))
    return fig.legend([seen[lab] for lab in labels], labels, loc="outside lower center",
                      ncol=min(ncol, len(labels)), fontsize=fontsize, frameon=False)


# ----------------------------------------------------------------------------------- the held-out images
#: how the reference run split its INR zoo (``experiments.merging.prepare``: ``Zoo.split((0.8, 0.2),
#: seed=0, by="image_index")`` over every digit image): the shipped autoencoder never saw the images of
#: the 20% part
SHIPPED_SPLIT = {"n_images": 1797, "fractions": (0.8, 0.2), "seed": 0}


def heldout_images_of_split(n_images: int = SHIPPED_SPLIT["n_images"],
                            fractions: Sequence[float] = SHIPPED_SPLIT["fractions"],
                            seed: int = SHIPPED_SPLIT["seed"]) -> np.ndarray:
    """The image indices of the last part of :meth:`~scalegmn_lite.zoo.zoo.Zoo.split` ``(fractions,
    seed, by="image_index")`` of a zoo whose networks fit the images ``0 .. n_images - 1`` (the rule
    of ``Zoo.split``: a seeded ``torch.randperm`` of the sorted unique images, cut at the rounded
    cumulative fractions), sorted. With the defaults: the images the shipped INR autoencoder never saw."""
    perm = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed)).numpy()
    start = int(np.round(np.cumsum(np.asarray(fractions, dtype=float))[-2] * n_images))
    return np.sort(perm[start:])


# ----------------------------------------------------------------------------------- claims, in words
def verdicts_markdown() -> str:
    """The course's three verdict words, defined once."""
    return "\n".join(f"* **{w}**: {VERDICT_WORDS[w]}." for w in ("holds", "refuted", "inconclusive"))


#: per claim id: (what it says in the notebook's words, the paper's threshold is ours). For a claim that must
#: also beat the controls (:func:`claim_parts`), the words state its own comparison only; the control check
#: is a part of its own in the tables and the paragraph
CLAIM_WORDS = {
    "naive-barrier-exists": ("both zoos can test merging: naive interpolation between two different held-out "
                             "networks has a barrier", False),
    "orbit-no-barrier-after-canonicalization": ("orbit test: the canonical path between a network and a member of "
                                                "its own orbit (P, D or PD) has no barrier (canonical/naive <= 1%)",
                                                True),
    "orbit-permutation-matching-misses-diagonal": (
        "orbit test: matching permutations alone (Git Re-Basin) does not align networks that differ by sign flips "
        "or scalings; as we state it: P-only matching keeps at least half the naive barrier on D and PD orbits, "
        "P-and-D matching at most 1%", True),
    "ae-barrier-below-naive": ("two different networks: the canonical path has a smaller barrier than the naive "
                               "path", False),
    "ae-barrier-below-weight-matching": ("two different networks: the canonical path has a smaller barrier than "
                                         "P-and-D weight matching", False),
    "ae-path-loss-below-weight-matching": ("two different networks: the worst loss along the canonical path is "
                                           "lower than along the P-and-D weight-matched path", False),
    "ae-reconstruction-above-floor": ("decoded networks reproduce their originals better than the floor", False),
    "latent-invariant": ("the trained encoder's latent code is invariant to random gauge elements (float64)",
                         False),
}
#: the combined verdict of a claim with a control check, in words (the paper's claim / the course's own)
COMBINED_WORDS = {True: "the paper's claim as the course judges it (it must also beat the controls)",
                  False: "the course's claim (its comparison and the control check must both hold)"}


def _words_for_learner(text: str) -> str:
    """A stored target or statement in the notebook's words: the results files' method key ``decoded`` is
    the canonical path."""
    return text.replace("decoded/naive", "canonical/naive")


def _kind(ref: dict, zoo: str) -> str:
    if zoo in ref.get("kinds", {}):
        return ref["kinds"][zoo]
    return "inr" if zoo.startswith("inr") else "classifier"


def _num(v: float, digits: int = 3) -> str:
    """``v`` with a sign and ``digits`` significant digits, never in e-notation."""
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) >= 1e-3:
        return f"{v:+.{digits}g}"
    return ("+" if v > 0 else "") + np.format_float_positional(v, precision=2, fractional=False, trim="-")


def _interval_text(iv: Mapping | None) -> str:
    """``mean [lo, hi]`` of an interval dict, or why there is none."""
    if not iv or "ci" not in iv or iv["ci"] is None:
        return "no interval"
    lo, hi = (float(x) for x in iv["ci"])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "not measured in this file"
    return f"{_num(iv['mean'])} [{_num(lo)}, {_num(hi)}]"


def _figure_words(ref: dict, cid: str, key: str) -> str:
    """What the number of comparison ``key`` of claim ``cid`` is, in words and units."""
    parts = key.split("/")
    zoo = parts[0]
    zw, kind = ZOO_WORDS.get(zoo, zoo), _kind(ref, zoo)
    if cid == "naive-barrier-exists":
        return f"{zw}: barrier of the naive path ({PATH_UNIT[kind]})"
    if cid.startswith("orbit-") and len(parts) == 3:
        what = {"P-only keeps": "share of the naive barrier that P-only matching keeps",
                "PD removes": "share of the naive barrier that P-and-D matching keeps"}.get(parts[2], parts[2])
        return f"{zw}, {parts[1]} orbits: {what}"
    if cid.startswith("orbit-") and len(parts) == 2:
        return f"{zw}, {parts[1]} orbits: barrier of the canonical path / naive barrier"
    other = parts[1][3:] if len(parts) > 1 and parts[1].startswith("vs ") else key
    if cid == "ae-reconstruction-above-floor":
        unit = RECON_UNIT[kind]
        against = "the floor's" if other == "floor" else f"the {_CONTROL_SHORT.get(other, other)}'s"
        return f"{zw}: reconstruction of the decoded networks minus {against} ({unit}; > 0: decoded better)"
    unit = PATH_UNIT[kind]
    if other in _CONTROL_SHORT:
        return (f"{zw}: worst loss along the canonical path minus along the {_CONTROL_SHORT[other]}'s path ({unit}; "
                "< 0: canonical better)")
    fig = "worst loss along" if cid == "ae-path-loss-below-weight-matching" else "barrier of"
    name = {"naive": "the naive path", "weight_matching": "the P-and-D weight-matched path"}.get(other, other)
    return f"{zw}: {fig} the canonical path minus {fig} {name} ({unit}; < 0: canonical better)"


def _measured_text(c: dict) -> str:
    m = c["measured"]
    if c.get("ci"):
        key = m.get("interval_of") if isinstance(m, dict) else None
        mean = m[key] if key is not None else m
        if isinstance(mean, str):
            return "not measured in this file"
        return _interval_text({"mean": mean, "ci": c["ci"]})
    if isinstance(m, dict):  # an exact check per zoo / group: its largest value
        vals = {k: float(v) for k, v in m.items() if isinstance(v, (int, float))}
        k = max(vals, key=vals.get)
        zoo, _, group = k.partition("/")
        return f"largest {_num(vals[k])} ({ZOO_WORDS.get(zoo, zoo)}, {group} orbits), exact"
    return f"{float(m):.1e}, exact"


def _whose(c: dict) -> tuple[bool, bool]:
    """(the paper's claim, its threshold is the course's) of a stored claim."""
    ours = CLAIM_WORDS.get(c["id"], ("", False))[1]
    return c.get("source", "course") != "course", ours


def _zoo_intervals(ref: dict, rows: Sequence[dict]) -> str:
    """``INRs -0.08 [-0.09, -0.07] MSE; CNNs ...``: each zoo's interval of comparison rows, in its units."""
    out = []
    for r in rows:
        kind = _kind(ref, r["zoo"])
        unit = RECON_UNIT[kind] if r["op"] == ">" else PATH_UNIT[kind]
        out.append(f"{ZOO_WORDS.get(r['zoo'], r['zoo'])} {_interval_text(r['interval'])} {unit}")
    return "; ".join(out)


def claims_markdown(ref: dict) -> str:
    """The claims of a ``merging.json`` as one Markdown table, every column named and nothing cut: claim
    (in the notebook's words), what is checked, whose, verdict, the number the verdict rests on, its value
    with the 95% interval, and what it needs. A claim that must also beat the controls (:func:`claim_parts`)
    takes three rows, each with its own verdict: its own comparison (every zoo's interval), the control
    check (the deciding comparison, named), and the combined verdict, the stored status (for a paper's
    claim: "the paper's claim as the course judges it"). A paper's claim whose threshold the course chose
    reads "the paper's, as we state it"."""
    rows = ["| claim | what is checked | whose | verdict | the number shown | mean [95% interval] | needed |",
            "|---|---|---|---|---|---|---|"]
    parts = claim_parts(ref)
    for c in ref["claims"]:
        words = CLAIM_WORDS.get(c["id"], (_words_for_learner(c.get("statement", c["id"])), False))[0]
        paper, ours = _whose(c)
        if c["id"] in parts:
            p = parts[c["id"]]
            own_whose = "the paper's" if paper else "the course's"
            d = p["deciding_control"]
            rows.append(f"| `{c['id']}`: {words} | its comparison: {p['own_what']} | {own_whose} | "
                        f"**{p['own_verdict']}** | {p['own_shown']} | {_zoo_intervals(ref, p['own'])} | "
                        f"{p['op']} 0 on every zoo |")
            rows.append(f"| `{c['id']}` | the control check: {p['control_what']} | the course's | "
                        f"**{p['control_verdict']}** | the deciding one of {len(p['controls'])}: {d['words']} | "
                        f"{_interval_text(d['interval'])} | {p['op']} 0 against every control on every zoo |")
            rows.append(f"| `{c['id']}` | {COMBINED_WORDS[paper]} | {'the paper' if paper else 'the course'}'s, "
                        f"judged by the course | **{c['status']}** | both parts above | see above | both parts hold |")
            continue
        whose = ("the paper's, as we state it" if ours else "the paper's") if paper else "the course's"
        m = c["measured"]
        key = m.get("interval_of") if isinstance(m, dict) else None
        if key is not None:
            shown = _figure_words(ref, c["id"], key)
        elif c.get("kind") == "check" and isinstance(m, dict):
            shown = "per zoo and group: " + _figure_words(ref, c["id"], next(iter(m)))
        else:
            shown = "largest relative change of the code, float64"
        target = _words_for_learner(str(c.get("target", "")).split(" (95% intervals")[0])
        kind = " (exact check)" if c.get("kind") == "check" else ""
        rows.append(f"| `{c['id']}`: {words} | the claim (no control check) | {whose} | **{c['status']}**{kind} | "
                    f"{shown} | {_measured_text(c)} | {target} |")
    return "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------------- each comparison
def claim_comparisons(ref: dict) -> dict[str, list[dict]]:
    """Per merging claim that needs several comparisons (the canonical path against the naive path,
    weight matching and every control; the reconstruction against the floor and every control), one
    row per zoo and comparison: ``{"zoo", "against", "interval", "op", "verdict", "words"}``, read
    from the stored intervals (``fairness`` and ``controls``; a control the file lacks is "not
    measured", so inconclusive). ``combine_status`` of a claim's verdicts is its stored status."""
    from ..experiments.merging import PATH_CLAIMS
    from ..tasks.merging.controls import CONTROLS

    fair_key = {("naive", "barrier"): "decoded_minus_naive_barrier",
                ("weight_matching", "barrier"): "decoded_minus_wm_barrier",
                ("weight_matching", "max_loss"): "decoded_minus_wm_max_path_loss"}
    missing = {"mean": float("nan"), "ci": [float("nan"), float("nan")]}
    out: dict[str, list[dict]] = {}
    zoos = list(ref["runs_by_seed"])
    ctl = ref.get("controls") or {}
    for cid, (method, fig) in PATH_CLAIMS.items():
        rows = []
        for z in zoos:
            rows.append({"zoo": z, "against": method, "interval": ref["fairness"][z][fair_key[(method, fig)]],
                         "op": "<"})
            for name in CONTROLS:
                row = ctl.get(z, {}).get(name)
                iv = row["decoded_minus_control"]["max_loss"] if row and "decoded_minus_control" in row else missing
                rows.append({"zoo": z, "against": name, "interval": iv, "op": "<"})
        out[cid] = rows
    rows = []
    for z in zoos:
        rows.append({"zoo": z, "against": "floor", "interval": ref["fairness"][z]["reconstruction_minus_floor"],
                     "op": ">"})
        for name in CONTROLS:
            row = ctl.get(z, {}).get(name)
            iv = row["decoded_minus_control"]["reconstruction"] if row and "decoded_minus_control" in row else missing
            rows.append({"zoo": z, "against": name, "interval": iv, "op": ">"})
    out["ae-reconstruction-above-floor"] = rows
    for cid, rows in out.items():
        for r in rows:
            r["verdict"] = decide(r["interval"]["ci"], r["op"], 0.0)
            r["words"] = _figure_words(ref, cid, f"{r['zoo']}/vs {r['against']}")
    return out


#: per claim with a control check: (its own comparison, in words, the control check, in words)
_PART_WORDS = {
    "ae-barrier-below-naive": ("barrier below the naive path's", "worst loss below every control's path"),
    "ae-barrier-below-weight-matching": ("barrier below the P-and-D weight-matched path's",
                                         "worst loss below every control's path"),
    "ae-path-loss-below-weight-matching": ("worst loss below the P-and-D weight-matched path's",
                                           "worst loss below every control's path"),
    "ae-reconstruction-above-floor": ("reconstruction better than the floor's",
                                      "reconstruction better than every control's"),
}


def claim_parts(ref: dict) -> dict[str, dict]:
    """Per claim that must also beat the controls (:func:`claim_comparisons`), its two parts, each with
    its own verdict (:func:`~scalegmn_lite.common.claims.combine_status` of its rows): ``{"own": rows of
    its own comparison (the naive path, weight matching or the floor; one per zoo), "own_verdict",
    "own_what", "own_shown", "controls": rows against every control, "control_verdict", "control_what",
    "deciding_control": the control row that decides that part (refuting most clearly, else closest to
    failing; :func:`~scalegmn_lite.common.claims.deciding_comparison`), "op", "status": the combined
    verdict, the claim's stored status when the file has the claim}``. For ``ae-barrier-below-naive``
    the own comparison is the paper's, the control check the course's addition."""
    from ..common.claims import combine_status, deciding_comparison
    from ..tasks.merging.controls import CONTROLS

    stored = {c["id"]: c["status"] for c in ref.get("claims", [])}
    out = {}
    for cid, rows in claim_comparisons(ref).items():
        own = [r for r in rows if r["against"] not in CONTROLS]
        ctl = [r for r in rows if r["against"] in CONTROLS]
        by_key = {f"{r['zoo']}/{r['against']}": r for r in ctl}
        decider = deciding_comparison({k: (r["interval"], r["op"], 0.0) for k, r in by_key.items()})
        own_verdict, ctl_verdict = combine_status([r["verdict"] for r in own]), combine_status(
            [r["verdict"] for r in ctl])
        what = _PART_WORDS.get(cid, ("its comparison", "every control"))
        shown = own[0]["words"].split(": ", 1)[1] if own and ": " in own[0]["words"] else "its comparison"
        shown = shown.split(" (")[0] + (" (> 0: decoded better)" if own and own[0]["op"] == ">" else
                                        " (< 0: canonical better)")
        out[cid] = {"own": own, "own_verdict": own_verdict, "own_what": what[0], "own_shown": shown,
                    "controls": ctl, "control_verdict": ctl_verdict, "control_what": what[1],
                    "deciding_control": by_key[decider], "op": rows[0]["op"],
                    "status": stored.get(cid, combine_status([own_verdict, ctl_verdict]))}
    return out


def comparisons_markdown(ref: dict) -> str:
    """:func:`claim_comparisons` as one Markdown table, one row per comparison (a comparison several
    claims need, such as a control on the worst path loss, is one row naming them all): the
    difference in words and units, its mean and 95% interval, what the claims need, its verdict, and
    which part of which claims it counts for (a claim's own comparison, or its control check)."""
    from ..tasks.merging.controls import CONTROLS

    paper = {c["id"] for c in ref.get("claims", []) if c.get("source", "course") != "course"}
    rows: dict[tuple, dict] = {}
    for cid, rs in claim_comparisons(ref).items():
        for r in rs:
            row = rows.setdefault((r["zoo"], r["words"]), {**r, "claims": []})
            row["claims"].append(f"`{cid}`")
    lines = ["| the difference | mean [95% interval] | needed | verdict | counts for |", "|---|---|---|---|---|"]
    for r in sorted(rows.values(), key=lambda r: r["zoo"]):
        if r["against"] in CONTROLS:
            counts = "the control check of " + ", ".join(r["claims"])
        else:
            whose = "the paper's" if all(c.strip("`") in paper for c in r["claims"]) else "its own"
            counts = f"{whose} comparison of " + ", ".join(r["claims"])
        lines.append(f"| {r['words']} | {_interval_text(r['interval'])} | {r['op']} 0 | **{r['verdict']}** | "
                     f"{counts} |")
    return "\n".join(lines) + "\n"


def _join(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def reference_story(ref: dict, changes: dict | None = None) -> tuple[str, dict]:
    """The reference run's paragraph (Markdown bullets) from ``merging.json`` (and the rows of
    ``results/verdict_changes.json`` for this experiment's reference run, if given), and the facts it
    states: ``{"status": id -> status, "beats": id -> {zoo: [controls beaten]}, "not_beaten": ...,
    "not_measured": ..., "earlier_holds": [ids], "parts": id -> {"own": verdict, "controls": verdict}}``
    (:func:`claim_parts`), for the notebook's asserts. A claim that must also beat the controls gets its
    own comparison and its control check, each with its verdict, before the combined one. Every verdict word is
    chosen from the stored statuses, every number read from the file."""
    from ..tasks.merging.controls import CONTROLS

    st = {c["id"]: c for c in ref["claims"]}
    status = {k: c["status"] for k, c in st.items()}
    zoos = list(ref["runs_by_seed"])
    scr = ref["screen"]
    text = []
    if "naive-barrier-exists" in st:
        figs = ", ".join(f"{ZOO_WORDS.get(z, z)} {scr[z]['barrier']['naive']['mean']:.3g} "
                         f"{PATH_UNIT[_kind(ref, z)]}" for z in zoos)
        extra = ""
        if "inr-shared-init" in scr:
            extra = f"; shared-init INRs {scr['inr-shared-init']['barrier']['naive']['mean']:.2g} MSE"
        text.append(f"* **Can the zoos test merging?** Mean naive barrier between two different held-out networks: "
                    f"{figs}{extra}. `naive-barrier-exists` **{status['naive-barrier-exists']}**.")
    if "orbit-no-barrier-after-canonicalization" in st:
        text.append("* **The published orbit test** (`orbit-no-barrier-after-canonicalization`, an exact check): "
                    f"**{status['orbit-no-barrier-after-canonicalization']}**. The encoder is invariant, so a network "
                    "and a member of its orbit have one code and decode to one network: the canonical path between "
                    "them is flat.")
    pm = st.get("orbit-permutation-matching-misses-diagonal")
    if pm is not None:
        keeps = {k: v for k, v in pm["measured"].items() if k.endswith("P-only keeps") and isinstance(v, float)}
        share = ", ".join(f"{ZOO_WORDS.get(k.split('/')[0], k.split('/')[0])} {k.split('/')[1]} {v:.0%}"
                          for k, v in keeps.items())
        verdict = pm["status"]
        by_pd = str(pm["measured"].get("interval_of", "")).endswith("PD removes")
        gist = {"holds": "P-only matching keeps at least half of it on every zoo and group, P-and-D matching "
                         "almost none",
                "refuted": ("on at least one zoo and group P-and-D matching keeps more than 1%" if by_pd else
                            "on at least one zoo and group P-only matching keeps clearly less than half") +
                           " (so our threshold, not necessarily the paper's qualitative point, fails)",
                "inconclusive": "the intervals do not decide it"}[verdict]
        pd_keeps = [v for k, v in pm["measured"].items() if k.endswith("PD removes") and isinstance(v, float)]
        pd_words = f"; P-and-D matching keeps at most {max(pd_keeps):.0%}" if pd_keeps else ""
        text.append("* **\"Permutations alone are not enough\"**, the paper's claim as we state it (P-only matching "
                    "keeps at least half the naive barrier on D and PD orbits; the half is our choice): "
                    f"**{verdict}**: {gist}. Share of the naive barrier P-only matching keeps: {share}{pd_words}.")
    cmp = claim_comparisons(ref)
    parts = claim_parts(ref)
    beats, not_beaten, unmeasured = {}, {}, {}
    for cid, rows in cmp.items():
        beats[cid], not_beaten[cid], unmeasured[cid] = {}, {}, {}
        for z in zoos:
            for r in rows:
                if r["zoo"] != z or r["against"] not in CONTROLS:
                    continue
                dest = {"holds": beats, "refuted": not_beaten}.get(r["verdict"])
                if not np.isfinite(float(r["interval"]["ci"][0])):
                    dest = unmeasured
                if dest is not None:
                    dest[cid].setdefault(z, []).append(r["against"])
        method = [r for r in rows if r["against"] not in CONTROLS]
        meth = "; ".join(f"{ZOO_WORDS.get(r['zoo'], r['zoo'])} {_interval_text(r['interval'])} ({r['verdict']})"
                         for r in method)
        ctl_words = []
        for z in zoos:
            b, nb, um = beats[cid].get(z, []), not_beaten[cid].get(z, []), unmeasured[cid].get(z, [])
            part = []
            if b:
                part.append("beats " + _join([_CONTROL_SHORT[n] for n in b]))
            if nb:
                part.append("loses to " + _join([_CONTROL_SHORT[n] for n in nb]))
            undecided = [n for n in CONTROLS if n not in b + nb + um]
            if undecided:
                part.append("is not told apart from " + _join([_CONTROL_SHORT[n] for n in undecided]))
            if um:
                part.append("has no measurement against " + _join([_CONTROL_SHORT[n] for n in um]))
            ctl_words.append(f"{ZOO_WORDS.get(z, z)}: " + ", ".join(part))
        first = ("reconstruction minus the floor's" if cid == "ae-reconstruction-above-floor"
                 else "against " + {"ae-barrier-below-naive": "the naive path (barrier)",
                                    "ae-barrier-below-weight-matching": "weight matching (barrier)",
                                    "ae-path-loss-below-weight-matching": "weight matching (worst loss)"}[cid])
        subject = "the decoded networks" if cid == "ae-reconstruction-above-floor" else "the canonical path"
        paper = cid in st and st[cid].get("source", "course") != "course"
        p = parts[cid]
        own = "The paper's comparison" if paper else "Its comparison"
        text.append(f"* `{cid}`, {COMBINED_WORDS[paper]}: **{status.get(cid, 'missing')}**. {own}, {first}: {meth}; "
                    f"verdict of this part: **{p['own_verdict']}**. The control check (the course's: "
                    f"{p['control_what']}): {subject}, on " + "; on ".join(ctl_words) +
                    f"; verdict of this part: **{p['control_verdict']}**.")
    earlier = []
    if changes:
        earlier = [r["id"] for r in changes.get("rows", []) if r.get("experiment") == "merging"
                   and r.get("run") == "reference" and r.get("old_status") == "holds" and r["id"].startswith("ae-")]
    if earlier:
        text.append(f"* **Earlier verdicts.** Before the controls existed (the earlier committed results), "
                    f"{_join([f'`{i}`' for i in earlier])} read **holds**: that verdict was judged against the naive "
                    "path, weight matching and the floor only, without the three controls, so it could not tell a "
                    "merge from a decoder that ignores its input.")
    facts = {"status": status, "beats": beats, "not_beaten": not_beaten, "not_measured": unmeasured,
             "earlier_holds": earlier, "comparisons": cmp,
             "parts": {cid: {"own": p["own_verdict"], "controls": p["control_verdict"]} for cid, p in parts.items()}}
    return "\n".join(text) + "\n", facts


# ----------------------------------------------------------------------------------- smaller facts, in words
def orbit_thresholds(ref: dict) -> dict[str, float]:
    """The thresholds of ``orbit-permutation-matching-misses-diagonal``, read from the stored claim's
    target (``"P-only >= 0.5 and PD <= 0.01 ..."``): ``{"P-only keeps": 0.5, "PD keeps": 0.01}``, the
    least share of the naive barrier P-only matching must keep on D and PD orbits, and the most P-and-D
    matching may keep."""
    import re

    c = {c["id"]: c for c in ref["claims"]}["orbit-permutation-matching-misses-diagonal"]
    target = str(c["target"])
    p_only, pd = re.search(r"P-only >= ([0-9.eE+-]+)", target), re.search(r"PD <= ([0-9.eE+-]+)", target)
    if p_only is None or pd is None:
        raise ValueError(f"orbit-permutation-matching-misses-diagonal: no thresholds in its target {target!r}")
    return {"P-only keeps": float(p_only.group(1)), "PD keeps": float(pd.group(1))}


def reconstruction_summary(ref: dict, zoo: str) -> dict[str, float]:
    """The held-out reconstruction figures of ``zoo`` (``decoded_psnr`` for INRs; ``decoded_accuracy``,
    ``decoded_agreement``, ``original_accuracy`` for classifiers), each the mean over the autoencoder
    seeds (``fairness[zoo]["reconstruction_test_by_seed"]``): the one source of these numbers in notebook
    08, so a figure is printed the same wherever it appears."""
    rows = ref["fairness"][zoo]["reconstruction_test_by_seed"]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def classifier_floor_story(ref: dict, zoo: str = "cnn-relu") -> tuple[str, dict]:
    """Why the floor of a classifier zoo can beat the canonical path on the worst loss, in words chosen
    from the file: the floor (the constant decoder's output for every input, one fixed training network)
    is ``one_network_accuracy`` accurate, compared with the originals and the decoded networks
    (:func:`reconstruction_summary`), and its flat path's test cross-entropy with the canonical path's
    worst loss (the paired difference ``controls[zoo]["constant-decoder"]["decoded_minus_control"]``).
    Returns the Markdown sentence and the facts it states (numbers as shown, rounded)."""
    from ..common.stats import decide

    fl = ref["fairness"][zoo]["floor"]
    rec = reconstruction_summary(ref, zoo)
    const = ref["controls"][zoo]["constant-decoder"]
    diff = const["decoded_minus_control"]["max_loss"]
    facts = {"floor_accuracy": round(fl["one_network_accuracy"], 3), "original_accuracy":
             round(rec["original_accuracy"], 3), "decoded_accuracy": round(rec["decoded_accuracy"], 3),
             "floor_agreement": round(fl["one_network_agreement"], 3),
             "decoded_agreement": round(rec["decoded_agreement"], 3),
             "floor_path_loss": float(f"{const['max_loss']['mean']:.3g}"),
             "verdict": decide(diff["ci"], "<", 0.0)}
    f, o, d = fl["one_network_accuracy"], rec["original_accuracy"], rec["decoded_accuracy"]
    strong = f > max(o, d)
    facts["strong"] = strong
    if strong or f < min(o, d):
        than = (f"{'more' if strong else 'less'} accurate than both the originals ({o:.1%}) and the decoded "
                f"networks ({d:.1%})")
    else:
        than = (f"{'more' if f > o else 'less'} accurate than the originals ({o:.1%}), "
                f"{'more' if f > d else 'less'} than the decoded networks ({d:.1%})")
    lead = "is a strong network" if strong else "is not a strong network"
    verdict = facts["verdict"]
    moral = ": a merge of two weaker networks does not beat one strong network that ignores both" if strong else ""
    then = {"refuted": f"so the canonical path's worst loss is higher, by {_interval_text(diff)} nats{moral}",
            "holds": f"and the canonical path's worst loss is still lower, by {_interval_text(diff)} nats",
            "inconclusive": f"and the canonical path's worst loss is not told apart from it ({_interval_text(diff)} "
                            "nats)"}[verdict]
    text = (f"On the {ZOO_WORDS.get(zoo, zoo)} the floor {lead}: the constant decoder outputs one fixed training "
            f"network, {f:.1%} accurate: {than}. Its flat path sits at {const['max_loss']['mean']:.3g} nats "
            f"of test cross-entropy, {then}. It is a good classifier, not a copy of its inputs: it agrees with each "
            f"original on {fl['one_network_agreement']:.1%} of test inputs, the decoded networks on "
            f"{rec['decoded_agreement']:.1%}, which is why the floor loses on reconstruction.")
    return text, facts


def orbit_level_story(ref: dict, zoo: str = "cnn-relu", group: str = "PD") -> tuple[str, dict]:
    """Where the canonical path of the orbit test sits against the originals (the naive path's endpoints),
    first autoencoder seed (the curves shown), and why, in words chosen from the file: the decoded
    networks' accuracy against the originals' (:func:`reconstruction_summary`). Returns the Markdown
    sentence and its facts (numbers as shown)."""
    curves = ref["zoos"][zoo]["orbit"][group]["mean_curves"]
    canon, orig = float(np.mean(curves["decoded"])), float(curves["naive"][0])
    rec = reconstruction_summary(ref, zoo)
    below = canon < orig
    better = rec["decoded_accuracy"] > rec["original_accuracy"]
    unit = PATH_UNIT[_kind(ref, zoo)]
    facts = {"canonical": float(f"{canon:.3g}"), "originals": float(f"{orig:.3g}"), "below": below,
             "more_accurate": better}
    why = (f"the decoded networks are {'more' if better else 'less'} accurate than their originals "
           f"({rec['decoded_accuracy']:.1%} against {rec['original_accuracy']:.1%} on the held-out "
           f"{ZOO_WORDS.get(zoo, zoo)}, mean over the autoencoder seeds)")
    if below and better:
        text = (f"In the orbit panels the canonical path is flat at {canon:.3g} {unit}, *below* the originals' "
                f"{orig:.3g} (where the other paths start and end): {why}. A canonicalized network need not be "
                "a copy of its original: here it is a better classifier.")
    elif below:
        text = (f"In the orbit panels the canonical path is flat at {canon:.3g} {unit}, *below* the originals' "
                f"{orig:.3g} (where the other paths start and end), although {why}: on these orbit networks the "
                "decoded ones are more confident where they are right.")
    else:
        text = (f"In the orbit panels the canonical path is flat at {canon:.3g} {unit}, above the originals' "
                f"{orig:.3g} (where the other paths start and end): {why}; the gap is the decoder's "
                "reconstruction error.")
    return text, facts
