"""ch06.residual_stream_is_euler — is a pretrained transformer's residual stream explicit Euler across depth?

The claim: a residual network h_{l+1} = h_l + f_l(h_l) is explicit Euler with step 1 on h' = f(h, t), and
if the network discretises a flow, its steps are small, consecutive steps point the same way, and a finer
discretisation of the same weights barely changes what it computes. Measured on all-MiniLM-L6-v2 (a
post-LN BERT nobody here trained; :mod:`terrainlab.seq.pretrained`) over the first sentences of the
docstrings of a fixed list of standard-library modules:

* relative update ‖h_{l+1} − h_l‖/‖h_l‖ per layer, per token;
* smoothness: cosine between consecutive updates (h_{l+1} − h_l, h_l − h_{l−1});
* the half-step re-run: each post-LN sublayer x ↦ LN(x + g(x)) re-run as x ↦ LN(x + g(x)/2) twice
  (:func:`~terrainlab.seq.pretrained.bert_layer_substeps`); the change of the final hidden state relative
  to how far the network moves it, ‖h_L^{½} − h_L‖/‖h_L − h_0‖, and the cosine between the sentence
  embeddings (mean pool, normalised) of the two runs.

Control inside the experiment: the same architecture with BERT's random initialisation (N(0, 0.02²),
drawn from a seeded generator), measured the same way. Its updates are small, so the same measurement
must come out "Euler" there; the verdict on MiniLM is decided only when the two come out differently.
"""

from __future__ import annotations

import importlib

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.plotting import BLACK, BLUE, VERMILLION, figure
from terrainlab.seq.pretrained import (
    load_minilm,
    mean_pool,
    random_init_like,
    residual_stream,
    substep_run,
    tokenize_texts,
)

STEP_TOL = 0.25  # mean relative update per layer
HALF_TOL = 0.10  # change of h_L under the half-step re-run, relative to ‖h_L − h_0‖
COS_TOL = 0.99  # cosine between the sentence embeddings of the full- and half-step runs

# standard-library modules whose docstrings are the text (deterministic: fixed list, fixed order)
MODULES = ("json", "heapq", "bisect", "textwrap", "difflib", "fractions", "argparse", "csv", "shlex",
           "fnmatch", "glob", "string", "calendar", "statistics", "pprint", "base64", "colorsys", "copy",
           "decimal", "functools", "gettext", "locale", "random", "tempfile")


def stdlib_sentences(n: int, max_chars: int = 200) -> list[str]:
    """The first ``max_chars`` characters (whitespace collapsed) of the docstrings of the first ``n``
    modules of :data:`MODULES` that have one."""
    out = []
    for name in MODULES:
        doc = importlib.import_module(name).__doc__ or ""
        text = " ".join(doc.split())[:max_chars]
        if text:
            out.append(text)
        if len(out) == n:
            break
    return out


def measure(model, enc) -> dict:
    """Step sizes, smoothness and half-step re-run of one model on one tokenised batch."""
    mask = enc["attention_mask"].bool()
    H = residual_stream(model, enc)  # (L+1, B, S, D); a NaN/inf raises, naming the layer
    H2 = substep_run(model, enc, n=2)
    h, h2 = H[:, mask].double(), H2[:, mask].double()  # (L+1, tokens, D)
    dh = h[1:] - h[:-1]
    rel = (dh.norm(dim=-1) / h[:-1].norm(dim=-1)).mean(1)
    cos = torch.nn.functional.cosine_similarity(dh[1:], dh[:-1], dim=-1).mean(1)
    half = ((h2[-1] - h[-1]).norm(dim=-1) / (h[-1] - h[0]).norm(dim=-1)).mean()
    e1 = torch.nn.functional.normalize(mean_pool(H[-1].double(), enc["attention_mask"]), dim=-1)
    e2 = torch.nn.functional.normalize(mean_pool(H2[-1].double(), enc["attention_mask"]), dim=-1)
    ecos = (e1 * e2).sum(-1)
    return {
        "rel_step_per_layer": [float(x) for x in rel],
        "rel_step_mean": float(rel.mean()),
        "consecutive_update_cosine_per_layer": [float(x) for x in cos],
        "consecutive_update_cosine_mean": float(cos.mean()),
        "half_step_rel_change": float(half),
        "half_step_embedding_cosine_mean": float(ecos.mean()),
        "half_step_embedding_cosine_min": float(ecos.min()),
    }


def looks_euler(rel_step: float, half_change: float, emb_cos: float, step_tol: float = STEP_TOL,
                half_tol: float = HALF_TOL, cos_tol: float = COS_TOL) -> bool:
    """Small steps and a half-step re-run that leaves the state and the embedding in place."""
    return rel_step <= step_tol and half_change <= half_tol and emb_cos >= cos_tol


def decide_residual_euler(rel_step: float, half_change: float, emb_cos: float, control_rel_step: float,
                          control_half_change: float, control_emb_cos: float) -> str:
    """holds: MiniLM looks like Euler (:func:`looks_euler`) and the control does not; fails: the other way
    round; inconclusive: both come out the same (the measurement does not separate them here)."""
    model = looks_euler(rel_step, half_change, emb_cos)
    control = looks_euler(control_rel_step, control_half_change, control_emb_cos)
    if model == control:
        return "inconclusive"
    return "holds" if model else "fails"


@experiment(
    id="ch06.residual_stream_is_euler",
    chapter=6,
    title="A pretrained transformer's residual stream (MiniLM-L6) across depth: Euler steps of a flow?",
    claim="A residual network is explicit Euler across depth: small steps along a smooth trajectory, so a "
    "finer discretisation of the same weights barely changes the result.",
)
def residual_stream_is_euler(ctx: Context) -> Result:
    n_texts = 8 if ctx.quick else len(MODULES)
    texts = stdlib_sentences(n_texts)
    model, tok = load_minilm()
    enc = tokenize_texts(tok, texts, max_length=128)
    ctrl_model = random_init_like(model, torch.Generator().manual_seed(ctx.seed))
    with torch.no_grad():
        m = measure(model, enc)
        c = measure(ctrl_model, enc)
    verdict = decide_residual_euler(m["rel_step_mean"], m["half_step_rel_change"],
                                    m["half_step_embedding_cosine_mean"], c["rel_step_mean"],
                                    c["half_step_rel_change"], c["half_step_embedding_cosine_mean"])

    fig, (ax, ax2, ax3) = figure("double", height=3.0, ncols=3)
    L = len(m["rel_step_per_layer"])
    layers = np.arange(1, L + 1)
    for r, color, label in ((m, VERMILLION, "MiniLM-L6 (pretrained)"), (c, BLUE, "control: random init")):
        ax.plot(layers, r["rel_step_per_layer"], "o-", color=color, ms=3, label=label)
        ax2.plot(layers[1:], r["consecutive_update_cosine_per_layer"], "o-", color=color, ms=3, label=label)
    ax.axhline(STEP_TOL, color=BLACK, ls="--", lw=0.8, label=f"threshold {STEP_TOL}")
    ax.set_xlabel("layer l")
    ax.set_ylabel("‖h_l − h_{l−1}‖ / ‖h_{l−1}‖")
    ax.set_title("(a) relative update per layer")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=6)
    ax2.axhline(0, color=BLACK, lw=0.5)
    ax2.set_xlabel("layer l")
    ax2.set_ylabel("cos(Δh_l, Δh_{l−1})")
    ax2.set_title("(b) smoothness of the trajectory")
    ax2.set_ylim(-1, 1)
    names = ["MiniLM", "random init"]
    xs = np.arange(2)
    ax3.bar(xs - 0.18, [m["half_step_rel_change"], c["half_step_rel_change"]], 0.36, color=[VERMILLION, BLUE],
            label="‖h_L^½ − h_L‖ / ‖h_L − h_0‖")
    ax3.bar(xs + 0.18, [1 - m["half_step_embedding_cosine_mean"], 1 - c["half_step_embedding_cosine_mean"]], 0.36,
            color=[VERMILLION, BLUE], alpha=0.45, label="1 − cos(embeddings)")
    ax3.axhline(HALF_TOL, color=BLACK, ls="--", lw=0.8, label=f"thresholds {HALF_TOL}, 1 − {COS_TOL}")
    ax3.axhline(1 - COS_TOL, color=BLACK, ls=":", lw=0.8)
    ax3.set_ylim(0, 1.25)
    ax3.set_xticks(xs)
    ax3.set_xticklabels(names)
    ax3.set_title("(c) each sublayer as two half steps")
    ax3.legend(frameon=False, fontsize=6, loc="upper right")
    ctx.savefig(fig, "residual_stream_is_euler")

    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "empirical",
            "texts": len(texts),
            "tokens": int(enc["attention_mask"].sum()),
            "minilm": m,
            "control_random_init": c,
        },
        threshold=f"Euler-like: mean relative update ≤ {STEP_TOL}, half-step re-run changes h_L by ≤ {HALF_TOL} of "
        f"‖h_L − h_0‖ and keeps the sentence embedding at cosine ≥ {COS_TOL}; decided only when MiniLM and the "
        "random-init control (same architecture, N(0, 0.02²)) come out differently. Smoothness is reported, "
        "not decisive.",
        explanation=(
            f"On {len(texts)} standard-library docstrings ({int(enc['attention_mask'].sum())} tokens), MiniLM's "
            f"layers move the residual stream by {m['rel_step_mean']:.2f}‖h‖ on average (per layer "
            f"{min(m['rel_step_per_layer']):.2f}–{max(m['rel_step_per_layer']):.2f}); consecutive updates have "
            f"cosine {m['consecutive_update_cosine_mean']:+.2f}, so the trajectory turns at every layer. Re-running "
            f"every sublayer as two half steps moves the final state by {m['half_step_rel_change']:.2f} of the "
            f"network's whole displacement and the sentence embedding to cosine "
            f"{m['half_step_embedding_cosine_mean']:.3f} (min {m['half_step_embedding_cosine_min']:.3f}). The "
            f"random-init control takes steps of {c['rel_step_mean']:.2f}‖h‖ and the half-step re-run moves it by "
            f"{c['half_step_rel_change']:.3f} (embedding cosine {c['half_step_embedding_cosine_mean']:.4f}): the "
            "measurement does say 'Euler' when the steps are small."
        ),
        corrected=(
            "Each residual sublayer is algebraically one explicit Euler step of size 1, but the pretrained "
            "post-LN transformer does not use them as small steps of a flow: updates are a large fraction of "
            "the state, nearly orthogonal from layer to layer, and halving the step changes the output and the "
            "sentence embedding substantially. Depth-as-time describes the network at initialisation, not the "
            "trained one."
        ) if verdict == "fails" else None,
    )
