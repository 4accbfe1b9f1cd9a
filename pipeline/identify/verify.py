"""``micfp verify A B``: were two recordings made with the same microphone? A calibrated log10 LR.

Each file is read (one channel, resampled to the model's rate), cut into the model's clips and
embedded by the model's verifier (:mod:`pipeline.identify.verification`); the comparison score
is the mean cosine over all pairs of the two files' segments (of the longest calibrated length
both hold, up to 30 s), and that length's calibration turns it into a log10 likelihood ratio for the propositions Hs (the same microphone recorded both) and Hd
(different microphones recorded them), put into words on the ENFSI verbal scale
(:mod:`pipeline.report.verbal`). The answer carries both files' SHA-256 and the model's identity
(its file's SHA-256, the micfp version that trained it), so it can be traced and repeated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts.model import TrainedModel, load_model
from ..errors import InputError
from ..report.verbal import HD, HS, verbal
from .identify import read_audio
from .provenance import model_identity, sha256
from .verification import compare, segment_length, unit_rows


def bounded(llr: float, trials: dict) -> tuple[float, list[float]]:
    """A log10 LR limited to what the calibration trials could show: ``(llr, [lower, upper])``.

    A linear calibration extrapolates without limit, but ``n`` trials cannot show an event rarer
    than about ``1/n``: support for Hs is limited to the number of different-microphone
    trials, support for Hd to the number of same-microphone ones (a conservative reading of
    the empirical-bounds idea). Without counts, no limit.
    """
    n_t, n_n = trials.get("n_target"), trials.get("n_nontarget")
    if not n_t or not n_n:
        return llr, [float("-inf"), float("inf")]
    lo, hi = -float(np.log10(n_t)), float(np.log10(n_n))
    return float(min(max(llr, lo), hi)), [lo, hi]


def _self_score(E: np.ndarray) -> float:
    """Mean cosine between the different clips of one file (how consistent the file is with itself)."""
    n = E.shape[0]
    if n < 2:
        return float("nan")
    m = unit_rows(E).sum(axis=0)
    return float((m @ m - n) / (n * (n - 1)))


def embed_file(path, model: TrainedModel, channel: int = 0) -> tuple[np.ndarray, dict]:
    """The verifier's clip embeddings of one audio file, and what describes the file (path, SHA-256, clips)."""
    from ..features.signal import clip_features

    meta = model.meta
    y, sr = read_audio(path, int(meta["sample_rate"]), channel)
    clip_s = float(meta["clip_seconds"])
    # the verifier's own features (models trained before they were recorded used the classifier's)
    vmeta = meta.get("verification", {})
    _, X, names = clip_features(y, clip_s, vmeta.get("feature_set", meta["feature_set"]), model.frame_settings())
    if X.shape[0] == 0:
        raise InputError(f"{path}: {y.size / meta['sample_rate']:.2f} s of audio is shorter than the model's "
                         f"{clip_s:g} s clips")
    want = vmeta.get("features", meta["features"])
    if not set(want) <= set(names):
        raise InputError(f"{path}: computed features do not match the model's")
    X = X[:, [names.index(n) for n in want]]
    E = model.verification["embedding"].transform(X)
    return E, {"path": str(path), "sha256": sha256(path), "duration_s": round(y.size / meta["sample_rate"], 3),
               "sample_rate": sr, "channel": channel, "n_clips": int(X.shape[0])}


def verify_files(a, b, model_path, *, channel: int = 0) -> dict:
    """Compare two audio files with a model's verifier; the answer of ``micfp verify``.

    Returns
    -------
    dict
        ``llr`` (log10 LR, Hs against Hd), ``lr``, ``verbal`` (the verbal-scale sentence),
        ``propositions``, ``scores`` (``comparison``: the calibrated score; ``within_a``,
        ``within_b``: each file's clips against each other, for context), ``files`` (path,
        SHA-256, duration, clips of each), ``model`` (path, SHA-256, the micfp version that trained
        it, its verifier's measured EER and Cllr) and ``micfp`` (this version).

    Raises
    ------
    InputError
        One line naming the file: missing or unreadable audio, too short, a model without a
        verifier or not a micfp model.
    """
    from ..version import __version__

    for p in (a, b):
        if not Path(p).is_file():
            raise InputError(f"{p}: no such file")
    model = load_model(model_path)
    if model.verification is None:
        raise InputError(f"{model_path}: the model has no verifier (trained before `micfp verify` existed); "
                         "retrain it with `micfp train`")
    from ..jit import warm_up

    warm_up()  # serially with any other micfp process compiling the same kernels
    Ea, fa = embed_file(a, model, channel)
    Eb, fb = embed_file(b, model, channel)
    ver = model.verification
    n = segment_length(len(Ea), len(Eb), ver["segment_clips"])
    if n > min(len(Ea), len(Eb)):  # cannot happen while 1 clip is a calibrated length; a clear line if it does
        raise InputError(f"{a if len(Ea) < n else b}: too short for the model's shortest calibrated comparison "
                         f"({n} clips)")
    score = compare(Ea, Eb, n)
    raw = float(ver["calibration"][list(ver["segment_clips"]).index(n)].llr(score))
    v = model.meta.get("verification", {})
    llr, bounds = bounded(raw, v.get("lengths", {}).get(str(n), {}))
    seconds = n * float(model.meta["clip_seconds"])
    return {
        "llr": llr, "lr": float(10.0 ** llr), "verbal": verbal(llr), "llr_unbounded": raw, "llr_bounds": bounds,
        "propositions": {"Hs": HS, "Hd": HD},
        "scores": {"comparison": score, "within_a": _self_score(Ea), "within_b": _self_score(Eb)},
        "compared_as": {"segment_seconds": seconds, "segments_a": len(Ea) // n, "segments_b": len(Eb) // n,
                        **{f"verifier_{k}": v.get("lengths", {}).get(str(n), {}).get(k)
                           for k in ("eer", "cllr", "min_cllr", "n_target", "n_nontarget")}},
        "files": [fa, fb],
        "model": {**model_identity(model_path, model.meta), "verifier_method": v.get("method")},
        "micfp": __version__,
    }


def format_verification(r: dict) -> str:
    """The answer as a few lines of text."""
    fa, fb = r["files"]
    m, c = r["model"], r["compared_as"]
    return "\n".join([
        f"log10 LR = {r['llr']:+.2f} (LR {r['lr']:.3g}): {r['verbal']}"
        + (f" [limited from {r['llr_unbounded']:+.2f} to what the calibration trials can show]"
           if r["llr"] != r["llr_unbounded"] else ""),
        f"score {r['scores']['comparison']:.3f} (within A {r['scores']['within_a']:.3f}, within B "
        f"{r['scores']['within_b']:.3f})",
        f"A: {fa['path']}  sha256 {fa['sha256']}  {fa['duration_s']:g} s, {fa['n_clips']} clips",
        f"B: {fb['path']}  sha256 {fb['sha256']}  {fb['duration_s']:g} s, {fb['n_clips']} clips",
        f"compared as {c['segment_seconds']:g} s segments ({c['segments_a']} x {c['segments_b']}); the verifier's "
        f"EER {c['verifier_eer']:.3f}, Cllr {c['verifier_cllr']:.3f} on held-out trials of that length "
        f"({m['verifier_method']})",
        f"model: {m['path']}  sha256 {m['sha256']}  micfp {m['micfp']}",
        "The LR is the probability of the observed similarity if the same microphone recorded both, divided by "
        "its probability if different ones did; it is not the probability that the microphone is the same.",
    ])
