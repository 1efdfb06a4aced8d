"""ch07.answer_belief_convergence — does the answer belief along a chain of thought contract (Theorem 2)?

Theorem 2 of chapter 7 says the belief p_t along a chain of thought converges to the answer p* with
KL(p*‖p_t) ≤ k^t KL(p*‖p_0), k < 1, so that T_min ≥ log(ε/D_0)/log k steps are needed. Its object,
softmax(W_lm h_t), is the next-token distribution, which moves from word to word; §7.3 makes the claim
testable with a probe (:func:`~terrainlab.seq.answer_belief`): at every prefix of the chain append
``answer`` and renormalise the logits of the answer set (the p digits), p_t = softmax(z_A).

Measured on the zoo's ``gpt_mix`` (:mod:`~terrainlab.atlas.chapters._seq_zoo`) over its own greedy chains
``; a + b = s1 ; so s1 + c = s2 ;`` (T = 14 tokens): D_t = KL(p_T‖p_t), the share of prompts whose D_t
never increases and of steps that do not increase it, the fitted rate k (log-linear least squares and
the median one-step ratio D_{t+1}/D_t; :func:`~terrainlab.seq.contraction_fit`), the token types whose
appending raises D, the steps needed to reach ε against the book's count log(ε/D_0)/log k (a sufficient
count, i.e. an upper bound, when D_t ≤ k^t D_0 holds — :func:`terrainlab.belief.steps_to_eps`), and the
book's literal object, the next-token distribution, beside it.

Control: a belief sequence that does contract — the linear map p ↦ p* + c(p − p*) on the simplex, run
through :func:`terrainlab.core.rollout` (Euler, η = 1, on the field c'(p* − p) with c' = 1 − c) and
scored by the same code. It must come out monotone, with the KL rate c² that a linear contraction gives
near an interior p* (KL is quadratic there).

Theorem check (§7.3 item 5): for a one-hot p*, KL(p*‖p) = −log p_y has a rank-one Hessian on the
simplex, so its strong-convexity constant is μ = 0 — the tangent Hessian at every final belief is
computed (:func:`~terrainlab.seq.answer_hessian`, simplex coordinates) and its rank and λ_min/λ_max
reported.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._seq_zoo import cot_task, trained
from terrainlab.core import Euler, Simplex, rollout
from terrainlab.plotting import BLACK, BLUE, GREEN, ORANGE, VERMILLION, figure
from terrainlab.seq import answer_belief, answer_hessian, contraction_fit, generate
from terrainlab.seq.lens import masked_kl

MONO_HOLD = 0.8  # share of prompts whose D_t never increases, for the theorem to hold
R2_HOLD = 0.8  # median R² of log D_t ≈ a + t log k
CTRL_MONO = 0.95  # the control must be monotone on at least this share ...
CTRL_RATE_TOL = 0.05  # ... with its median one-step ratio within this of c²
EPS = 1e-2  # nats: the ε of "steps to reach ε"
C_CTRL = 0.8  # the control's linear contraction factor
T_CTRL = 30


def decide_answer_belief(monotone_share: float, median_r2: float, ctrl_monotone_share: float,
                         ctrl_rate_err: float) -> str:
    """inconclusive unless the control (a true contraction, same code) comes out monotone on ≥ CTRL_MONO
    of its runs with its rate within CTRL_RATE_TOL; then holds when ≥ MONO_HOLD of the prompts have a
    monotone D_t and the log-linear fit has median R² ≥ R2_HOLD; holds-with-correction when D_t is
    monotone but not geometric; fails otherwise."""
    if not (ctrl_monotone_share >= CTRL_MONO and ctrl_rate_err <= CTRL_RATE_TOL):
        return "inconclusive"
    if monotone_share >= MONO_HOLD:
        return "holds" if median_r2 >= R2_HOLD else "holds-with-correction"
    return "fails"


def linear_contraction(p0: torch.Tensor, p_star: torch.Tensor, c: float, steps: int) -> torch.Tensor:
    """p_{t+1} = p* + c(p_t − p*), t = 0 … steps, for rows of p0 (B, K): Euler with η = 1 on the field
    (1 − c)(p* − p), landed on the simplex (a no-op here: the map keeps the simplex). (steps+1, B, K)."""
    def field(p, t):
        return (1 - c) * (p_star - p)

    return rollout(field, p0, eta=1.0, steps=steps, scheme=Euler(), geometry=Simplex("euclid")).states


def _med(xs):
    v = torch.tensor([x for x in xs if x is not None and math.isfinite(x)], dtype=torch.float64)
    return float(v.median()) if v.numel() else float("nan")


@experiment(
    id="ch07.answer_belief_convergence",
    chapter=7,
    title="The probed answer belief along a trained GPT's chain of thought: does KL(p_T‖p_t) contract?",
    claim="Along a chain of thought the belief converges to the answer: KL(p*‖p_t) ≤ k^t KL(p*‖p_0) with k < 1 "
    "(Theorem 2), so at least log(ε/D_0)/log k steps are needed to reach ε.",
)
def answer_belief_convergence(ctx: Context) -> Result:
    n = 64 if ctx.quick else 256
    task = cot_task()
    V = task.vocab
    model, meta = trained(ctx, "gpt_mix")
    b = task(n, ctx.generator(601))
    L, ap = int(b.prompt_len[0]), int(b.answer_pos[0, 0])
    with torch.no_grad():
        seq = generate(model, b.tokens[:, :L], ap + 1 - L)
        raw_logits = model(seq).double()
    cot = seq[:, L:ap - 1]  # the written chain, up to (not including) "answer"
    T = cot.shape[1]
    answers = V.digit_ids

    D, fits, finals, finals_logits = [], [], [], []
    for i in range(n):
        r = answer_belief(model, seq[i, :L], cot[i], answers, [V.answer], causal=True)
        D.append(r.kl_to_final.double())
        fits.append(contraction_fit(r.kl_to_final, eps=EPS))
        finals.append(r.final_answer)
        finals_logits.append(r.logits[-1].double())
    D = torch.stack(D)  # (n, T+1)
    correct = (torch.tensor(finals) + answers[0] == b.answers[:, 0]).double().mean()

    monotone_share = float(np.mean([f.monotone for f in fits]))
    step_mono = float(np.mean([f.monotone_fraction for f in fits]))
    k_fit, r2, k_med = _med([f.rate for f in fits]), _med([f.r2 for f in fits]), _med([f.median_ratio for f in fits])
    has_k = float(np.mean([f.envelope_rate < 1 for f in fits]))  # some k < 1 with D_t ≤ k^t D_0 throughout
    settle = [f.settle for f in fits]
    book = [f.book_steps for f in fits]
    first = [f.first_below for f in fits]
    pairs = [(s, max(0.0, bk)) for s, bk in zip(settle, book) if s is not None and math.isfinite(bk)]
    settle_le_book = float(np.mean([s <= math.ceil(bk) for s, bk in pairs])) if pairs else float("nan")
    d0_below = float((D[:, 0] <= EPS).double().mean())

    # where D jumps: the type of the token appended at step t (cot[t−1]) and the change of log D
    logD = torch.log(D[:, :T].clamp(min=1e-12))
    dlog = logD[:, 1:] - logD[:, :-1]  # steps t = 1 … T−1 (D_T = 0 is left out)
    app = cot[:, :T - 1]
    per_word = {}
    for wid in app.unique().tolist():
        w = V.words[wid]
        key = "digit" if w.isdigit() else w
        m = app == wid
        e = per_word.setdefault(key, [0, 0, 0.0])
        e[0] += int(m.sum())
        e[1] += int((dlog[m] > 0).sum())
        e[2] += float(dlog[m].sum())
    jumps = {k: {"n": v[0], "share_up": v[1] / v[0], "mean_dlogD": v[2] / v[0]} for k, v in per_word.items()}
    biggest = max(jumps, key=lambda k: jumps[k]["mean_dlogD"])

    # the probe only at step boundaries (prefixes ending in ";") and at t = 0
    bnd = [0] + [t for t in range(1, T + 1) if int(cot[0, t - 1]) == V.sep]
    bnd_mono = float(np.mean([contraction_fit(D[i, bnd], eps=EPS).monotone for i in range(n)]))

    # the book's literal object: next-token distributions at positions L−1 … ap−1 (the last predicts the answer)
    praw = torch.softmax(raw_logits[:, L - 1:ap], -1)
    Draw = masked_kl(praw[:, -1:].expand_as(praw), praw)
    raw_mono = float(np.mean([contraction_fit(Draw[i], eps=EPS).monotone for i in range(n)]))
    ans_tok = seq[:, ap]
    mass = praw[:, :-1].gather(2, ans_tok[:, None, None].expand(-1, praw.shape[1] - 1, 1))[..., 0]
    argmax_changes = float((praw[:, 1:].argmax(-1) != praw[:, :-1].argmax(-1)).double().mean())

    # theorem check: the tangent Hessian of −log p_y on the simplex at each final belief is rank one
    Z = torch.stack(finals_logits)
    ranks, ratios, cf_err = [], [], []
    for y in range(len(answers)):
        rows = torch.tensor(finals) == y
        if not bool(rows.any()):
            continue
        h = answer_hessian(Z[rows], y, coords="simplex")
        ev = h.eigenvalues
        top = ev[:, -1]
        ranks += (ev > 1e-8 * top[:, None]).sum(-1).tolist()
        ratios += (ev[:, 0].abs() / top).tolist()
        py = h.belief[:, y]
        cf_err += ((top - (1 - 1 / len(answers)) / py ** 2).abs() / top).tolist()
    rank_max, ratio_max, cf_max = max(ranks), max(ratios), max(cf_err)

    # control: a true linear contraction on the simplex, scored by the same code
    n_ctrl = 16 if ctx.quick else 64
    g = ctx.generator(602)
    K = len(answers)
    p_star = torch.softmax(torch.randn(n_ctrl, K, generator=g, dtype=torch.float64), -1)
    p0 = torch.softmax(3 * torch.randn(n_ctrl, K, generator=g, dtype=torch.float64), -1)
    P = linear_contraction(p0, p_star, C_CTRL, T_CTRL)  # (T+1, n, K)
    Dc = masked_kl(P[-1:].expand_as(P), P).T  # (n, T+1)
    cfits = [contraction_fit(Dc[i], eps=EPS) for i in range(n_ctrl)]
    ctrl_mono = float(np.mean([f.monotone for f in cfits]))
    ctrl_k = _med([f.median_ratio for f in cfits])
    ctrl_fit = _med([f.rate for f in cfits])
    ctrl_r2 = _med([f.r2 for f in cfits])
    ctrl_err = abs(ctrl_k - C_CTRL ** 2)
    cpairs = [(f.first_below, f.book_steps) for f in cfits if f.first_below is not None and math.isfinite(f.book_steps)]
    ctrl_le_book = float(np.mean([fb <= math.ceil(bk) for fb, bk in cpairs])) if cpairs else float("nan")
    ctrl_lt_book = float(np.mean([fb < bk - 1 for fb, bk in cpairs])) if cpairs else float("nan")
    ctrl_book = _med([bk for _, bk in cpairs])
    ctrl_first = _med([fb for fb, _ in cpairs])

    verdict = decide_answer_belief(monotone_share, r2, ctrl_mono, ctrl_err)

    # --- figure -------------------------------------------------------------------------------------
    fig, (ax1, ax2, ax3) = figure("double", height=3.0, ncols=3, gridspec_kw={"width_ratios": [1.6, 1, 1]})
    t = np.arange(T + 1)
    floor = 1e-6
    for i in range(min(n, 32)):
        ax1.plot(t[:-1], D[i, :-1].clamp(min=floor).numpy(), color=BLUE, lw=0.4, alpha=0.35)
    medD = D[:, :-1].median(0).values.clamp(min=floor).numpy()
    ax1.plot(t[:-1], medD, color=BLUE, lw=1.6, label="probe: KL(p_T‖p_t), median (thin: prompts)")
    medraw = Draw[:, :T].median(0).values.clamp(min=floor).numpy()
    ax1.plot(t[:-1], medraw, color=ORANGE, lw=1.2, ls="-", label="next-token softmax(W_lm h_t), median")
    if 0 < k_fit < 10:
        d0 = float(D[:, 0].median())
        ax1.plot(t[:-1], np.clip(d0 * k_fit ** t[:-1], floor, None), color=BLACK, ls="--", lw=1,
                 label=f"fitted k^t D_0, k = {k_fit:.2f}")
    ax1.axhline(EPS, color=GREEN, lw=0.8, ls=":", label=f"ε = {EPS}")
    ax1.set_yscale("log")
    labels = ["prompt"] + [("s" if V.words[int(w)].isdigit() else V.words[int(w)]) for w in cot[0, :T - 1]]
    ax1.set_xticks(t[:-1], labels, fontsize=6.5, rotation=90)
    ax1.set_xlabel("token appended last (t = 0 … T−1; s: a digit)")
    ax1.set_ylabel("KL to the final belief (nats)")
    ax1.set_title(f"(a) gpt_mix's probed belief: monotone in {monotone_share:.0%} of {n}")
    ax1.legend(frameon=False, fontsize=5.5, loc="lower left")
    keys = sorted(jumps, key=lambda k: -jumps[k]["mean_dlogD"])
    ax2.bar(range(len(keys)), [jumps[k]["mean_dlogD"] for k in keys],
            color=[VERMILLION if jumps[k]["mean_dlogD"] > 0 else BLUE for k in keys])
    ax2.axhline(0, color=BLACK, lw=0.5)
    ax2.set_xticks(range(len(keys)), keys, fontsize=7)
    ax2.set_xlabel("token appended")
    ax2.set_ylabel("mean change of log D on appending it")
    ax2.set_title("(b) what moves it away")
    tc = np.arange(T_CTRL + 1)
    for i in range(min(n_ctrl, 16)):
        ax3.plot(tc[:-1], Dc[i, :-1].clamp(min=1e-12).numpy(), color=GREEN, lw=0.5, alpha=0.5)
    ref = float(Dc[:, 0].median())
    ax3.plot(tc[:-1], ref * (C_CTRL ** 2) ** tc[:-1], color=BLACK, ls="--", lw=1, label=f"c^(2t), c = {C_CTRL}")
    ax3.set_yscale("log")
    ax3.set_xlabel("step t")
    ax3.set_ylabel("KL(p_T‖p_t)")
    ax3.set_title(f"(c) control p* + {C_CTRL}(p − p*): monotone {ctrl_mono:.0%}")
    ax3.legend(frameon=False, fontsize=6)
    ctx.savefig(fig, "answer_belief_convergence")

    def r4(v):
        return round(float(v), 4) if v is not None and math.isfinite(float(v)) else float("nan")

    numbers = {
        "claim_kind": "empirical",
        "n_prompts": n, "T": T, "final_belief_accuracy": r4(correct),
        "zoo_gpt_mix_accuracy": meta["generated_accuracy"],
        "monotone_share": r4(monotone_share), "monotone_step_share": r4(step_mono),
        "median_k_loglinear": r4(k_fit), "median_r2": r4(r2), "median_step_ratio": r4(k_med),
        "share_with_envelope_k_below_1": r4(has_k),
        "median_D0": r4(D[:, 0].median()), "median_max_D": r4(D.max(1).values.median()),
        "share_D0_below_eps": r4(d0_below), "eps": EPS,
        "median_settle_step": r4(_med(settle)), "median_first_below_step": r4(_med(first)),
        "median_book_steps": r4(_med(book)), "share_settle_within_book_count": r4(settle_le_book),
        "jumps_by_token": {k: {kk: r4(vv) if isinstance(vv, float) else vv for kk, vv in v.items()} for k, v in jumps.items()},
        "largest_mean_jump_token": biggest,
        "boundary_probe_monotone_share": r4(bnd_mono),
        "raw_next_token": {"monotone_share": r4(raw_mono), "median_KL": r4(Draw[:, :-1].median()),
                           "median_mass_on_answer_before_end": r4(mass.median()),
                           "argmax_change_share": r4(argmax_changes)},
        "theorem_mu0": {"claim_kind": "theorem-check", "max_rank": int(rank_max),
                        "max_lambda_min_over_max": float(ratio_max), "max_rel_err_closed_form": float(cf_max)},
        "control": {"c": C_CTRL, "expected_kl_rate": C_CTRL ** 2, "monotone_share": r4(ctrl_mono),
                    "median_step_ratio": r4(ctrl_k), "median_k_loglinear": r4(ctrl_fit), "median_r2": r4(ctrl_r2),
                    "rate_error": r4(ctrl_err), "share_steps_within_book_count": r4(ctrl_le_book),
                    "share_steps_below_book_count": r4(ctrl_lt_book), "median_first_below_step": r4(ctrl_first),
                    "median_book_steps": r4(ctrl_book), "n": n_ctrl},
    }
    explanation = (
        f"On {n} prompts gpt_mix writes its chain and the probe's final belief is right in {correct:.2f}. "
        f"D_t = KL(p_T‖p_t) never increases in {monotone_share:.2f} of the prompts ({step_mono:.2f} of the steps "
        f"do not increase it; a k < 1 with D_t ≤ k^t D_0 at every step exists in {has_k:.2f}). It starts at a median "
        f"D_0 = {float(D[:, 0].median()):.2g} nats ({d0_below:.2f} of prompts already within ε = {EPS}"
        + (f": the model, also trained on direct answers (free-running direct accuracy "
           f"{meta['generated_accuracy']['direct']:.2f}), has the answer before the chain" if d0_below > 0.5 else "")
        + f"), reaches a median maximum of {float(D.max(1).values.median()):.3g} nats while the chain is written, and "
        f"stays within ε from a median step {_med(settle):.3g} of T = {T} on. Appending '{biggest}' raises log D most "
        f"(mean {jumps[biggest]['mean_dlogD']:+.2f}). Fitted rates: log-linear k = {k_fit:.3f} (median R² "
        f"{r2:.2f}), median one-step ratio {k_med:.3g}; the book's count log(ε/D_0)/log k is defined (k < 1) for "
        f"{len(pairs)} prompts. Probing only at step "
        f"boundaries: monotone in {bnd_mono:.2f}. (The probe asks for the answer where the training format "
        f"never does — mid-chain — so D_t measures what the model reports if interrupted, which is the book's "
        f"operational belief; it is not a claim about a hidden belief.) The literal object softmax(W_lm h_t) changes its argmax on "
        f"{argmax_changes:.2f} of the steps, puts a median mass of {float(mass.median()):.2g} on the final answer "
        f"before the end, and its KL to the final next-token distribution is monotone in {raw_mono:.2f}. Theorem "
        f"check: the simplex Hessian of −log p_y at every final belief has rank {rank_max} (λ_min/λ_max ≤ "
        f"{ratio_max:.1e}; top eigenvalue = (1 − 1/K)/p_y² to {cf_max:.1e}), so μ = 0. Control (p ↦ p* + "
        f"{C_CTRL}(p − p*), {n_ctrl} runs through core.rollout, same scoring): monotone in {ctrl_mono:.2f}, median "
        f"step ratio {ctrl_k:.3f} against c² = {C_CTRL ** 2:.2f}, R² {ctrl_r2:.3f}. With its envelope k the steps "
        f"actually needed to reach ε (median {ctrl_first:.3g}) are within the book's count (median {ctrl_book:.3g}) "
        f"in {ctrl_le_book:.2f} of the runs and more than one step below it in {ctrl_lt_book:.2f}"
        + (": a sufficient count, an upper bound, not the lower bound the book calls it." if ctrl_le_book >= 0.99
           else ".")
    )
    corrected = None
    if verdict in ("fails", "holds-with-correction"):
        corrected = (
            f"The probed answer belief does not contract along the chain: KL(p_T‖p_t) is monotone in only "
            f"{monotone_share:.0%} of the prompts; from a median D_0 of {float(D[:, 0].median()):.2g} nats the partial "
            f"chain pushes it away (median peak {float(D.max(1).values.median()):.3g} nats) and it settles within "
            f"ε = {EPS} only at median step {_med(settle):.3g} of {T}, so no k < 1 bounds it ({has_k:.0%} of prompts "
            "have one) and log(ε/D_0)/log k counts nothing. "
            "Where a contraction D_t ≤ k^t D_0 does hold (the control), that count is a sufficient number of steps — "
            "an upper bound on the steps needed, not a lower bound — and for a one-hot p* the energy KL(p*‖p) "
            f"has a rank-{rank_max} Hessian on the simplex (μ = 0), so the theorem's strong-convexity premise fails "
            "exactly where it is applied."
        )
    return Result(
        verdict=verdict,
        numbers=numbers,
        threshold=(
            f"holds: D_t = KL(p_T‖p_t) never increases in ≥ {MONO_HOLD:.0%} of the prompts and log D_t ≈ a + t log k "
            f"fits with median R² ≥ {R2_HOLD}; holds-with-correction: monotone but not geometric; fails: monotone in "
            f"< {MONO_HOLD:.0%}. Decided only if the control — a linear contraction with c = {C_CTRL} on the simplex, "
            f"scored by the same code — is monotone in ≥ {CTRL_MONO:.0%} of its runs with median step ratio within "
            f"{CTRL_RATE_TOL} of c² (else inconclusive). Theorem check reported, not decisive: rank of the simplex "
            "Hessian of −log p_y."
        ),
        explanation=explanation,
        corrected=corrected,
    )
