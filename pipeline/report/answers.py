"""The sentences of ``micfp report``: the thesis's five questions answered from the numbers.

Nothing is written in advance: each answer is assembled from :func:`~.analysis.analyse`'s numbers,
so different results give different sentences.
"""

from __future__ import annotations

import numpy as np

from .analysis import THRESHOLDS
from .labels import PROTOCOL_TITLES, ci, hz, method_name, pct, sec


def answers(a: dict) -> list[tuple[str, str]]:
    """The five questions, each answered in sentences built from :func:`analyse`'s numbers."""
    imp = method_name(*a["improved"])
    main = a["main_protocol"]
    h = a["headline"]
    chance = a["chance"]
    n_mics = len(a["mics"])
    out = []

    # 1. Possible?
    lo = h.get("accuracy_lo", np.nan)
    if np.isfinite(lo) and lo >= 0.9:
        verdict = "Yes."
    elif np.isfinite(lo) and lo > chance:
        verdict = "Partly: clearly better than chance, but not reliably."
    elif h["accuracy"] > chance:
        verdict = "Not shown: the accuracy is above chance, but its confidence interval reaches chance level."
    else:
        verdict = "No: the accuracy is at chance level."
    s = (f"{verdict} Under the {PROTOCOL_TITLES.get(main, main)} protocol, {imp} names the right microphone out of "
         f"{n_mics} for {ci(h)} of {int(h['n_test'])} test clips of {sec(a['longest'])} (chance: {pct(chance)}).")
    s += " " + _method_choice(a)
    others = [f"{p} {ci(r)}" + ("" if r["method"] == tuple(a["improved"]) else f" ({method_name(*r['method'])})")
              for p, r in a.get("best_by_protocol", {}).items() if p != main]
    if others:
        s += " Other protocols, each with its best method: " + "; ".join(others) + "."
    out.append(("Can a microphone be identified from its recordings alone?", s))

    # 2. What differs?
    ss = a.get("signature_summary")
    if ss:
        parts = [f"{m} {v['db']:+.1f} dB at {hz(v['freq'])}" for m, v in ss["per_mic"].items()]
        s = (f"Their long-term spectra, level-normalised: the microphones differ most at {hz(ss['widest']['freq'])}, "
             f"where they span {ss['widest']['db']:.1f} dB. Each microphone's largest departure from the mean: "
             + "; ".join(parts) + ".")
        if "pair" in ss:
            p = ss["pair"]
            s += (f" The two units of the same model ({' and '.join(p['mics'])}) differ by {p['mean_db']:.2f} dB on "
                  f"average (at most {p['max_db']:.2f} dB, at {hz(p['freq'])}), against {ss['other_mean_db']:.2f} dB "
                  "between microphones of different models.")
    else:
        rec = a.get("confused", {}).get("recall", {})
        s = ("No feature cube with channel features was available for spectral signatures. Per-microphone recall: "
             + "; ".join(f"{m} {pct(v)}" for m, v in rec.items()) + ".")
    out.append(("How do the microphones differ in the sound they capture?", s))

    # 3. What limits it?
    bits = []
    groups, gacc = a.get("groups", {}), a.get("group_accuracy", {})
    if len(groups) > 1 and gacc:  # several identical-model groups: each one's own accuracy
        bits.append(f"the {len(groups)} identical-model groups are told apart in {ci(h, 'pair_accuracy')} of their "
                    f"clips, against {pct(h['accuracy'])} overall ("
                    + "; ".join(f"{g}: {' and '.join(m)} {pct(gacc.get(g))}" for g, m in groups.items()) + ")")
    elif a["pair"] and np.isfinite(h.get("pair_accuracy", np.nan)):
        bits.append(f"the identical pair ({' and '.join(a['pair'])}) is told apart in {ci(h, 'pair_accuracy')} of "
                    f"its clips, against {pct(h['accuracy'])} overall")
    if "confused" in a and a["confused"]["rate"] > 0:
        c = a["confused"]
        bits.append(f"the most frequent confusion is {c['true']} taken for {c['pred']} "
                    f"({pct(c['rate'])} of its clips)")
    if ss and "session_shift" in ss and "pair" in ss:
        sh = ss["session_shift"]
        bits.append(f"the same microphone's spectrum moves by {sh['mean_db']:.2f} dB on average between sessions "
                    f"{' and '.join(sh['sessions'])} (re-positioning), "
                    + ("more than" if sh["mean_db"] > ss["pair"]["mean_db"] else "less than")
                    + f" the {ss['pair']['mean_db']:.2f} dB between the identical units")
    for by, m in ((a["by_protocol"], a["improved"]), (a["baseline_by_protocol"], a["baseline"])):
        rand, sess = by.get("random"), by.get("session")
        if rand is not None and sess is not None:
            bits.append(f"with {method_name(*m)}, a random split of clips scores {pct(rand['accuracy'])} against "
                        f"{pct(sess['accuracy'])} when testing on another session: the difference is content and "
                        "session leaking into the random split")
            break
    rob = a.get("robustness")
    if rob is not None and not rob["rows"].empty:
        r = rob["rows"]
        r = r[(r["feature_set"] == a["improved"][0]) & (r["classifier"] == a["improved"][1])]
        for kind, label in (("noise", "noise added to the test audio"), ("codec", "lossy compression of the test audio")):
            k = r[r["condition_kind"] == kind] if "condition_kind" in r.columns else r.iloc[0:0]
            if not k.empty:
                w, b = k.loc[k["drop"].idxmax()], k.loc[k["drop"].idxmin()]
                mild = (f"{100 * b['drop']:.1f} points with {b['condition']} ({pct(b['accuracy'])}) to "
                        if len(k) > 1 else "")
                bits.append(f"{label} costs {mild}{100 * w['drop']:.1f} points with "
                            f"{w['condition']} ({pct(w['accuracy'])}), {sec(rob['clip_seconds'])} clips")
    s = ("What limits it: " + "; ".join(bits) + ".") if bits else "The results set holds no cells that isolate a limit."
    out.append(("What limits or hinders telling them apart?", s[0].upper() + s[1:]))

    # 4. Sound type.
    st = a.get("sound_types")
    if st:
        acc = st["accuracy"]
        best, worst = max(acc, key=acc.get), min(acc, key=acc.get)
        s = (f"With {sec(st['clip_seconds'])} clips, {best} gives the highest accuracy ({pct(acc[best])}) "
             f"and {worst} the lowest ({pct(acc[worst])}); "
             + ", ".join(f"{t} {pct(v)} (n = {st['n'][t]})" for t, v in sorted(acc.items())) + ".")
    else:
        s = (f"This grid pools the sound types (pooled accuracy {pct(h['accuracy'])}); a grid with "
             "sound_types = [\"each\"] (workflows/ablation.toml) compares them.")
    if "unseen_sound_type" in a:
        u = a["unseen_sound_type"]
        s += (f" Trained without a sound type and tested on it, accuracy is {ci(u)}, against {pct(h['accuracy'])} "
              "when every sound type is seen in training.")
    out.append(("How do speech, noise and other kinds of sound affect the result?", s))

    # 5. Minimum length.
    mc = a["min_clip"]
    lengths = ", ".join(sec(x) for x in a["clip_lengths"])
    parts = []
    for stype in (["all"] if "all" in mc else []) + sorted(k for k in mc if k != "all"):
        m = mc[stype]
        name = "all sound types pooled" if stype == "all" else stype
        reached = [f"{sec(m[f'{t:.2f}'])} for {t * 100:g} %" for t in THRESHOLDS if np.isfinite(m[f"{t:.2f}"])]
        if reached:
            parts.append(f"{name}: " + ", ".join(reached))
        elif m["best_accuracy"] >= THRESHOLDS[0]:
            parts.append(f"{name}: {THRESHOLDS[0] * 100:g} % reached at {sec(m['best_clip'])} "
                         f"({pct(m['best_accuracy'])}) but not kept at longer clips ({pct(m['longest_accuracy'])} "
                         f"at {sec(max(a['clip_lengths']))})")
        else:
            parts.append(f"{name}: {THRESHOLDS[0] * 100:g} % not reached (best {pct(m['best_accuracy'])} at "
                         f"{sec(m['best_clip'])})")
    s = (f"Tested clip lengths: {lengths} ({imp}, {main} protocol). Shortest length reaching and keeping the accuracy: "
         + "; ".join(parts) + ".")
    files = a.get("file_accuracy") or {}
    if files:
        s += (f" Whole files (runs of consecutive {sec(a['longest'])} clips of one recording, their log-probabilities "
              "summed): " + ", ".join(f"{sec(k)} {pct(v)}" for k, v in sorted(files.items())) + ".")
    out.append(("What minimum length of recording is needed?", s))
    return out


def _auto_sentence(a: dict) -> str:
    """What micfp's default model (``micfp_auto``) chose inside the training data, and how it scored."""
    au = a.get("auto")
    if not au:
        return ""
    s = (f" {method_name(*au['cell'])}, micfp's default, chose {au['method']} by {au['cv_method'] or 'grouped CV'} "
         "inside the training data")
    top = list(au["cv_scores"].items())[:3]
    if top:
        s += " (" + ", ".join(f"{k} {pct(v)}" for k, v in top) + ")"
    if au["row"] is not None and tuple(a["improved"]) != tuple(au["cell"]):
        s += f" and scores {ci(au['row'])} on the test clips of {sec(au['clip_seconds'])}"
    return s + "."


def _method_choice(a: dict) -> str:
    """Which method the answers quote, and by how much it beat the thesis baseline and the runner-up;
    what ``micfp_auto`` chose, when it ran."""
    return _method_ranking(a) + _auto_sentence(a)


def _method_ranking(a: dict) -> str:
    imp = method_name(*a["improved"])
    if a.get("n_methods", 1) < 2:
        return f"{imp} is the only method in this grid."
    s = (f"{imp} is the best of the {a['n_methods']} methods in this grid (mean accuracy "
         f"{pct(a['improved_accuracy'])} over the protocol's clean cells")
    if a.get("runner_up"):
        s += f"; next: {method_name(*a['runner_up'])}, {pct(a['runner_up_accuracy'])}"
    s += ")"
    if a["improved"][0] == "thesis" and not a.get("baseline"):
        s += ", the thesis baseline itself"
    elif a.get("baseline"):
        d = 100 * (a["improved_accuracy"] - a["baseline_accuracy"])
        s += (f", {abs(d):.1f} points {'above' if d >= 0 else 'below'} the thesis baseline, "
              f"{method_name(*a['baseline'])} ({pct(a['baseline_accuracy'])})")
    return s + "."
