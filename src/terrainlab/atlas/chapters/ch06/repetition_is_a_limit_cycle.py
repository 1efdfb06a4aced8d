"""ch06.repetition_is_a_limit_cycle — are greedy-decoding repetition loops periodic orbits, and when do they come?

Greedy decoding with a window of the last W tokens (positions restarted at every step) is a deterministic
map on the finite set of windows (:func:`terrainlab.seq.window_orbit`), so every run is eventually
periodic — a theorem (pigeonhole), checked here, not tested. What is not forced, and measured: how long
the transient is, the period, how many distinct loops there are and how many starts end in each (the
loop's basin), and how all of that depends on W (the map has |V|^W states: the guarantee says nothing
about a horizon of N tokens when W is large). Measured on the zoo's TinyGPT (gpt_mix, trained on 24-token
CoT sequences), decoding N tokens past its training length from CoT prompts (the model first writes its
own chain) and from random windows; W = 24 (the trained length) is the claim's setting, smaller W the
sweep.

A run "cycles" when the map's state — the window — comes back: every window of a loop of period p ≤
``MAX_PERIOD`` is seen to return once (:func:`terrainlab.seq.loop_census` with ``window=W``, two periods
of windows; the tokens are then periodic over W + 2p − 1 of them).

Controls inside the experiment: (i) the same runs sampled at temperature 1 (seeded): the same detector
must find no loop there; (ii) the zoo's GRU (gru_mix), whose state is continuous and whose context is
unbounded, is not forced to cycle: its greedy run is reported — loops in tokens, in states (to a
tolerance), or a fixed point.
"""

from __future__ import annotations

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._seq_zoo import cot_task, trained
from terrainlab.core import rollout
from terrainlab.core.cycles import detect_cycle
from terrainlab.core.fields import MapField
from terrainlab.dynamics import jacobian
from terrainlab.plotting import BLACK, BLUE, ORANGE, SKY, VERMILLION, figure
from terrainlab.seq import generate, loop_census, window_orbit

CYCLE_MIN = 0.90  # fraction of greedy runs that must end in a loop within N tokens
SAMPLED_MAX = 0.10  # the sampled control may show a loop in at most this fraction
MAX_PERIOD = 150
STATE_TOL = 1e-4  # GRU: a state "returns" within this max-abs distance
TEMPERATURE = 1.0


def cycled_rows(tokens: torch.Tensor, W: int, max_period: int = MAX_PERIOD):
    """The census of the window map's states (windows of W tokens; a loop: two periods of windows), and
    per row whether it ended in one (W = 1: the tokens themselves, three periods)."""
    c = loop_census(tokens, max_period=max_period, min_repeats=3 if W == 1 else 2, window=W)
    return c, c.cycled


def decide_repetition(greedy_frac: float, sampled_frac: float, best_separated_frac: float,
                      best_any_frac: float, cycle_min: float = CYCLE_MIN, sampled_max: float = SAMPLED_MAX) -> str:
    """At the trained window: inconclusive when the sampled control loops too (> sampled_max); holds when
    ≥ cycle_min of the greedy runs end in a loop within N tokens. Otherwise, over the shorter windows:
    holds-with-correction when one of them reaches cycle_min while its sampled control stays ≤ sampled_max
    (``best_separated_frac``: eventual periodicity is real, the horizon grows with W); inconclusive when
    greedy loops reach cycle_min only where sampling loops as well (``best_any_frac``); fails when no
    window reaches cycle_min."""
    vals = (greedy_frac, sampled_frac, best_separated_frac, best_any_frac)
    if not all(np.isfinite(v) for v in vals):
        return "inconclusive"
    if sampled_frac > sampled_max:
        return "inconclusive"
    if greedy_frac >= cycle_min:
        return "holds"
    if best_separated_frac >= cycle_min:
        return "holds-with-correction"
    if best_any_frac >= cycle_min:
        return "inconclusive"
    return "fails"


def gru_greedy(model, start: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The GRU's greedy run as a map on its state, h ↦ Φ(h, argmax W h): states (steps+1, B, d), tokens
    (B, steps) (token k is the one read to reach state k + 1)."""
    with torch.no_grad():
        h0 = model.hidden_states(start)[:, -1]

        def update(h):
            return model.step(h, model.lm_head(h).argmax(-1))

        states = rollout(MapField(update), h0, eta=1.0, steps=steps).states
        tokens = model.lm_head(states[:-1]).argmax(-1).T
    return states, tokens


def floquet_radius(model, states: torch.Tensor, tokens: torch.Tensor, period: int) -> float:
    """Spectral radius of the Jacobian of the GRU's state map around the last ``period`` steps of one run,
    ρ = max|eig(J_{n−1} ⋯ J_{n−p})|, J_k = ∂Φ(h, x_k)/∂h at h_k (the token held at the one read): below 1 the
    token loop carries an attracting periodic orbit of the continuous state (a limit cycle)."""
    n = tokens.shape[0]
    J = torch.eye(states.shape[-1], dtype=states.dtype)
    for k in range(n - period, n):
        J = jacobian(model.token_map(int(tokens[k])), states[k][None])[0] @ J
    return float(torch.linalg.eigvals(J).abs().max())


def _raster(ax, tokens, W, title, n_show, vocab_size, starts=None):
    show = tokens[:n_show].numpy()
    ax.imshow(show, aspect="auto", interpolation="nearest", cmap="tab20", vmin=0, vmax=vocab_size)
    ax.axvline(W - 0.5, color=BLACK, lw=0.8, ls="--")
    if starts is not None:
        rows = [r for r in range(min(n_show, len(starts))) if starts[r] is not None]
        ax.scatter([starts[r] for r in rows], rows, marker="|", s=60, color=BLACK, lw=1.5,
                   label="loop begins", zorder=3)
        if rows:
            ax.legend(frameon=True, fontsize=6, loc="lower right")
    ax.set_xlabel("token index (dashed: the start window ends)")
    ax.set_ylabel("run")
    ax.set_title(title)


@experiment(
    id="ch06.repetition_is_a_limit_cycle",
    chapter=6,
    title="Greedy decoding's repetition loops as periodic orbits of the finite-window token map",
    claim="Repetition loops of GPT decoding are limit cycles: with a finite effective context, greedy "
    "decoding is eventually periodic.",
)
def repetition_is_a_limit_cycle(ctx: Context) -> Result:
    task = cot_task()
    V, W0 = task.vocab.size, task.length
    n_prompts, n_random = (16, 8) if ctx.quick else (32, 16)
    steps = 200 if ctx.quick else 400
    windows = (4, 8, W0) if ctx.quick else (4, 8, 12, 16, W0)
    gpt, meta = trained(ctx, "gpt_mix")
    batch = task(n_prompts, ctx.generator(3))
    with torch.no_grad():
        written = generate(gpt, batch.tokens[:, :task.prompt_length], W0 - task.prompt_length)
    rand = torch.randint(0, V, (n_random, W0), generator=ctx.generator(4))
    starts = torch.cat([written, rand])  # the model's own CoT, then random windows

    sweep = {}
    orbits = {}
    for W in windows:
        s = starts[:, W0 - W:]
        g_orb = window_orbit(gpt, s, steps)
        s_orb = window_orbit(gpt, s, steps, temperature=TEMPERATURE, generator=ctx.generator(5 + W))
        gc, gok = cycled_rows(g_orb.tokens, W)
        sc, sok = cycled_rows(s_orb.tokens, W)
        per = gc.period[gok]
        trans = gc.transient[gok]
        loops = {}
        for i in torch.nonzero(gok).flatten().tolist():
            key = gc.loops[int(gc.loop_id[i])]
            loops[key] = loops.get(key, 0) + 1
        top = sorted(loops.items(), key=lambda kv: -kv[1])
        sweep[W] = {
            "greedy_cycle_fraction": float(gok.double().mean()),
            "greedy_cycle_fraction_prompts": float(gok[:n_prompts].double().mean()),
            "greedy_cycle_fraction_random": float(gok[n_prompts:].double().mean()),
            "sampled_cycle_fraction": float(sok.double().mean()),
            "periods": sorted(set(per.tolist())),
            "median_period": float(per.double().median()) if len(per) else float("nan"),
            "median_transient": float(trans.double().median()) if len(trans) else float("nan"),
            "max_transient": int(trans.max()) if len(trans) else None,
            "distinct_loops": len(loops),
            "loop_basins": [n / len(gok) for _, n in top[:6]],
            "top_loops": [task.vocab.decode(list(k)) for k, _ in top[:3]],
            "loop_tokens": [task.vocab.decode(list(k)) for k, _ in top[:6]],
        }
        orbits[W] = (g_orb.tokens, s_orb.tokens, gok, [int(t) if o else None for t, o in zip(gc.transient, gok)])
    # the GPT's last-position hidden state along the tail of one cycled run repeats with the tokens
    W_small = min(w for w in windows if sweep[w]["greedy_cycle_fraction"] > 0) if any(
        sweep[w]["greedy_cycle_fraction"] > 0 for w in windows) else None
    hidden_same = None
    if W_small is not None:
        toks, _, gok, _ = orbits[W_small]
        i = int(torch.nonzero(gok)[0])
        p = int(cycled_rows(toks[i:i + 1], W_small)[0].period[0])
        wins = toks[i].unfold(0, W_small, 1)[-(2 * p + 1):]
        with torch.no_grad():
            h = gpt.hidden_states(wins)[:, -1, -1]  # (2p+1, d): last block, last position
        hidden_same = bool(detect_cycle(h, max_period=p, tol=1e-5, min_repeats=2).period == p)

    gru, gmeta = trained(ctx, "gru_mix")
    with torch.no_grad():
        gru_written = generate(gru, batch.tokens[:, :task.prompt_length], W0 - task.prompt_length)
    states, gru_tokens = gru_greedy(gru, gru_written, steps)
    gru_c, gru_tok_ok = cycled_rows(torch.cat([gru_written, gru_tokens], 1), 1)
    last_move = (states[-1] - states[-2]).abs().amax(-1)  # a fixed point stops moving
    ret = torch.full((states.shape[1],), float("nan"), dtype=states.dtype)
    per_loop = {}
    for i in torch.nonzero(gru_tok_ok).flatten().tolist():
        p = int(gru_c.period[i])
        ret[i] = (states[-1, i] - states[-1 - p, i]).abs().max()  # back where it was one token loop ago?
        key = gru_c.loops[int(gru_c.loop_id[i])]
        if key not in per_loop and len(per_loop) < 4:  # the Jacobian around one run of each loop
            per_loop[key] = {"tokens": task.vocab.decode(list(key)), "period": p,
                             "basin": gru_c.basin[int(gru_c.loop_id[i])],
                             "floquet_radius": floquet_radius(gru, states[:, i].detach(), gru_tokens[i], p)}
        per_loop.get(key, {}).setdefault("return_distances", []).append(float(ret[i]))
    loops_out = [{k: x for k, x in v.items() if k != "return_distances"}
                 | {"return_distance_median": float(np.median(v["return_distances"]))} for v in per_loop.values()]
    gru_num = {
        "token_cycle_fraction": float(gru_tok_ok.double().mean()),
        "token_periods": sorted(set(gru_c.period[gru_tok_ok].tolist())),
        "state_return_fraction": float((ret <= STATE_TOL).double().mean()),
        "state_return_distance_median": float(ret[gru_tok_ok].median()) if bool(gru_tok_ok.any()) else float("nan"),
        "state_fixed_point_fraction": float((last_move <= STATE_TOL).double().mean()),
        "state_tol": STATE_TOL,
        "loops": loops_out,
        "floquet_radius_per_loop": [v["floquet_radius"] for v in loops_out],
        "floquet_loop_periods": [v["period"] for v in loops_out],
    }

    main = sweep[W0]
    best_any = max(sweep[w]["greedy_cycle_fraction"] for w in windows)
    best_sep = max([sweep[w]["greedy_cycle_fraction"] for w in windows
                    if sweep[w]["sampled_cycle_fraction"] <= SAMPLED_MAX] or [0.0])
    verdict = decide_repetition(main["greedy_cycle_fraction"], main["sampled_cycle_fraction"], best_sep, best_any)

    fig, axes = figure("double", height=5.2, nrows=2, ncols=2)
    (a1, a2), (a3, a4) = axes
    looping = [w for w in windows if sweep[w]["greedy_cycle_fraction"] >= 0.5
               and sweep[w]["sampled_cycle_fraction"] <= SAMPLED_MAX] or [
        w for w in windows if sweep[w]["greedy_cycle_fraction"] >= 0.5]  # the longest window that loops
    W_show = max(looping) if looping else (W_small if W_small is not None else windows[0])
    _raster(a1, orbits[W0][0], W0, f"(a) greedy, W = {W0} (trained): "
            f"{main['greedy_cycle_fraction']:.0%} in a loop by {steps}", 12, V, orbits[W0][3])
    _raster(a2, orbits[W_show][0], W_show, f"(b) greedy, W = {W_show}: "
            f"{sweep[W_show]['greedy_cycle_fraction']:.0%} in a loop, median transient "
            f"{sweep[W_show]['median_transient']:.0f}", 12, V, orbits[W_show][3])
    xs = np.arange(len(windows))
    a3.bar(xs - 0.2, [sweep[w]["greedy_cycle_fraction"] for w in windows], 0.4, color=VERMILLION,
           label="greedy")
    a3.bar(xs + 0.2, [sweep[w]["sampled_cycle_fraction"] for w in windows], 0.4, color=SKY,
           label=f"control: sampled, T = {TEMPERATURE}")
    a3.axhline(CYCLE_MIN, color=BLACK, ls="--", lw=0.8, label=f"bar {CYCLE_MIN}")
    a3.axhline(SAMPLED_MAX, color=BLACK, ls=":", lw=0.8, label=f"control bar {SAMPLED_MAX}")
    a3.set_xticks(xs)
    a3.set_xticklabels([str(w) for w in windows])
    a3.set_xlabel("window W (tokens of context)")
    a3.set_ylabel(f"fraction of runs in a loop by {steps} tokens")
    a3.set_ylim(0, 1.3)
    a3.set_title(f"(c) runs in a loop by {steps} tokens, per window W")
    a3.legend(frameon=False, fontsize=6, ncol=2, loc="upper right")
    basins = sweep[W_show]["loop_basins"]
    rest = max(0.0, 1 - sum(basins))
    colors = [VERMILLION, ORANGE, BLUE, SKY, "#999999", "#CCCCCC"][:len(basins)]
    wedges, _ = a4.pie(basins + [rest], colors=colors + ["white"], startangle=90, radius=0.95,
                       center=(-1.0, 0.0), wedgeprops={"edgecolor": BLACK, "linewidth": 0.4}, frame=False)
    a4.set_xlim(-2.0, 2.4)
    a4.set_ylim(-1.05, 1.05)
    a4.set_aspect("equal")
    a4.axis("off")
    names = [f"{b:.0%}  p = {len(t.split())}: {t if len(t) <= 24 else t[:22] + ' …'}"
             for b, t in zip(basins, sweep[W_show]["loop_tokens"])] + ([f"{rest:.0%}  no loop"] if rest > 0 else [])
    a4.legend(wedges[:len(names)], names, frameon=False, fontsize=5.5, loc="center left", bbox_to_anchor=(0.46, 0.5))
    a4.set_title(f"(d) basins of the {sweep[W_show]['distinct_loops']} loops, W = {W_show}\n"
                 f"GRU control: token loops {gru_num['token_cycle_fraction']:.0%}, state returns to {STATE_TOL:g} "
                 f"{gru_num['state_return_fraction']:.0%},\nFloquet radius ρ = "
                 f"{', '.join(f'{r:.2g}' for r in gru_num['floquet_radius_per_loop']) or '—'}",
                 fontsize=7)
    ctx.savefig(fig, "repetition_is_a_limit_cycle")

    sweep_txt = "; ".join(f"W = {w}: {sweep[w]['greedy_cycle_fraction']:.2f} greedy / "
                          f"{sweep[w]['sampled_cycle_fraction']:.2f} sampled" for w in windows)
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "claim_kind_note": "eventual periodicity of greedy finite-window decoding is a theorem (a map on "
            "a finite set); the fractions within N tokens, transients, periods, loops, basins and the GRU "
            "are empirical",
            "runs": int(starts.shape[0]),
            "runs_from_prompts": n_prompts,
            "runs_from_random_windows": n_random,
            "best_greedy_fraction_separated_from_sampling": best_sep,
            "best_greedy_fraction_any_window": best_any,
            "tokens_decoded": steps,
            "trained_window": W0,
            "max_period": MAX_PERIOD,
            "by_window": {str(w): sweep[w] for w in windows},
            "hidden_state_repeats_with_tokens": hidden_same,
            "control_sampled_temperature": TEMPERATURE,
            "control_gru": gru_num,
            "generated_accuracy": {"gpt_mix": meta["generated_accuracy"], "gru_mix": gmeta["generated_accuracy"]},
        },
        threshold=f"holds: ≥ {CYCLE_MIN} of greedy runs at the trained window W = {W0} end in a loop (period ≤ "
        f"{MAX_PERIOD}, the window returning twice) within {steps} tokens, while the control — the same runs "
        f"sampled at T = {TEMPERATURE} — shows a loop in ≤ {SAMPLED_MAX} (else inconclusive); "
        f"holds-with-correction: W = {W0} misses the bar but a shorter window reaches it with its sampled control "
        f"≤ {SAMPLED_MAX}; inconclusive: windows reach it only where sampling loops too; fails: none reaches it.",
        explanation=(
            f"{starts.shape[0]} runs ({n_prompts} from CoT prompts the model first completes, {n_random} from "
            f"random windows) decoded {steps} tokens past their start. At the trained window W = {W0}, "
            f"{main['greedy_cycle_fraction']:.2f} of greedy runs end in a loop ({main['distinct_loops']} distinct "
            f"loops, periods {main['periods']}); sampled at T = {TEMPERATURE}, {main['sampled_cycle_fraction']:.2f}. "
            f"Across windows: {sweep_txt}. With W = {W_show}, loops have median period "
            f"{sweep[W_show]['median_period']:.0f} after a median transient of {sweep[W_show]['median_transient']:.0f} "
            f"tokens, and the largest loop takes {sweep[W_show]['loop_basins'][0] if sweep[W_show]['loop_basins'] else 0:.0%} "
            f"of the starts. The GPT's last-position hidden state repeats with the token loop: {hidden_same} "
            f"(it is a function of the window). GRU control (continuous state, unbounded context): "
            f"{gru_num['token_cycle_fraction']:.2f} of greedy runs loop in tokens (periods "
            f"{gru_num['token_periods']}), {gru_num['state_return_fraction']:.2f} return in state (one token period) to "
            f"{STATE_TOL:g} (median return distance {gru_num['state_return_distance_median']:.1e}), "
            f"{gru_num['state_fixed_point_fraction']:.2f} settle on a fixed point; the spectral radius of the "
            f"state map's Jacobian around each token loop (periods {gru_num['floquet_loop_periods']}) is "
            f"{', '.join(f'{r:.2g}' for r in gru_num['floquet_radius_per_loop']) or 'not computed (no loop)'} "
            "(< 1: the loop carries an attracting periodic orbit of the continuous state, a limit cycle proper); "
            "per loop (period: basin, state return distance after one period): "
            + "; ".join(f"{lp['period']}: {lp['basin']:.2f}, {lp['return_distance_median']:.1e}"
                        for lp in gru_num["loops"]) + "."
        ),
        corrected=(
            f"Greedy decoding with a finite window is a map on a finite set, so it is eventually periodic — "
            f"but the guarantee is vacuous at practical horizons: at the window the model was trained on "
            f"(W = {W0}) {1 - main['greedy_cycle_fraction']:.0%} of greedy runs had not entered a loop after "
            f"{steps} tokens, while with W in {[w for w in windows if sweep[w]['greedy_cycle_fraction'] >= CYCLE_MIN and sweep[w]['sampled_cycle_fraction'] <= SAMPLED_MAX]} "
            f"at least {CYCLE_MIN:.0%} do, into a few loops with large basins. Repetition loops are periodic "
            "orbits of the window map; how soon they come is set by the window (the map has |V|^W states), "
            "which the claim does not say."
        ) if verdict == "holds-with-correction" else None,
    )
