"""``micfp identify``: which microphone recorded each file, how sure, or "unknown microphone".

Per file: read one channel, resample to the model's rate if needed, cut whole clips of the
model's length, compute the model's features with the cube's kernels
(:func:`features.signal.clip_features`), predict per-clip probabilities and aggregate them over
the file (mean log-probability, or clip votes). The file is a known microphone when the open-set
distance of its clips' mean to the winning microphone is within the threshold calibrated on
held-out data (see :mod:`pipeline.identify.model`); otherwise it is reported as unknown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts.model import TrainedModel, load_model
from ..errors import InputError, MicfpError, one_line
from ..evaluation.files import file_probabilities
from .model import file_distance
from .provenance import model_identity, sha256

UNKNOWN = "unknown microphone"
AGGREGATIONS = ("calibrated", "mean-log", "vote")


def read_audio(path, sample_rate: int, channel: int = 0) -> tuple[np.ndarray, int]:
    """One channel of an audio file as float32 at ``sample_rate``; returns ``(y, original rate)``."""
    import soundfile as sf

    from ..io.audio import probe

    probe(str(path))  # one line naming the file once: unreadable, not audio, empty, truncated
    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise InputError(f"{path}: cannot read audio ({exc})") from exc
    if not 0 <= channel < y.shape[1]:
        raise InputError(f"{path}: has {y.shape[1]} channel(s), --channel {channel} does not exist")
    y = np.ascontiguousarray(y[:, channel])
    if sr != sample_rate:
        import soxr

        y = soxr.resample(y, sr, sample_rate, quality="HQ").astype(np.float32)
    return y, int(sr)


def aggregate(proba: np.ndarray, how: str = "calibrated", calibration: dict | None = None) -> np.ndarray:
    """File-level probabilities from per-clip probabilities (rows sum to 1).

    ``calibrated`` (the default): the clips' summed log-probabilities with the temperature and
    length exponent ``micfp train`` learned on held-out pseudo-files (``calibration``, see
    :mod:`pipeline.evaluation.files`; a model without them falls back to ``mean-log``);
    ``mean-log``: normalised geometric mean of the clips' probabilities (a confident clip cannot
    outvote many others on its own, but 240 agreeing clips stay as unsure as one);
    ``vote``: share of clips whose top class each class is.
    """
    if how == "calibrated":
        return file_probabilities(proba, calibration)
    if how == "mean-log":
        s = np.log(np.clip(proba, 1e-12, 1.0)).mean(axis=0)
        e = np.exp(s - s.max())
        return e / e.sum()
    if how == "vote":
        return np.bincount(proba.argmax(axis=1), minlength=proba.shape[1]) / proba.shape[0]
    raise InputError(f"unknown aggregation {how!r}; choose from {', '.join(AGGREGATIONS)}")


def identify_signal(y: np.ndarray, model: TrainedModel, *, top_k: int = 3, how: str = "calibrated",
                    source: str = "signal") -> dict:
    """Identify the microphone of one signal already at the model's sample rate.

    Returns
    -------
    dict
        ``mic`` (the name, or ``"unknown microphone"``), ``known``, ``closest_mic``,
        ``probability`` (of the closest microphone), ``distance`` (open-set distance of the file to
        it, :func:`model.file_distance`), ``threshold`` (the calibrated limit of ``distance``), ``evidence``
        (``threshold / distance``: 1 or more is a known microphone), ``top_k`` (list of ``{mic, probability}``),
        ``probabilities`` ({mic: p}), ``votes`` ({mic: clips}), ``n_clips``.
    """
    from ..features.signal import clip_features

    meta = model.meta
    clip_s = float(meta["clip_seconds"])
    _, X, names = clip_features(y, clip_s, meta["feature_set"], model.frame_settings())
    if X.shape[0] == 0:
        raise InputError(f"{source}: {y.size / meta['sample_rate']:.2f} s of audio is shorter than the model's "
                         f"{clip_s:g} s clips")
    if names != meta["features"]:  # load_model checks this too; a model edited in memory must not slip by
        raise InputError(f"{source}: computed features do not match the model's")
    est = model.estimator
    proba = est.predict_proba(X)
    classes = model.classes
    mics = model.mics
    file_p = aggregate(proba, how, meta["calibration"].get("file"))
    best = int(np.argmax(file_p))
    distance = file_distance(est, model.openset, X, classes[best])
    tau = float(model.openset["tau"])
    known = distance <= tau
    order = np.argsort(-file_p)[: max(1, top_k)]
    votes = np.bincount(proba.argmax(axis=1), minlength=classes.size)
    closest = mics[int(classes[best])]
    return {
        "mic": closest if known else UNKNOWN,
        "label": int(classes[best]) if known else None,
        "known": bool(known),
        "closest_mic": closest,
        "probability": float(file_p[best]),
        "distance": distance,
        "threshold": tau,
        "evidence": tau / max(distance, 1e-12),
        "top_k": [{"mic": mics[int(classes[i])], "probability": float(file_p[i])} for i in order],
        "probabilities": {mics[int(c)]: float(p) for c, p in zip(classes, file_p)},
        "votes": {mics[int(c)]: int(v) for c, v in zip(classes, votes)},
        "n_clips": int(X.shape[0]),
        "aggregation": how,
        "operating_point": operating_point(meta),
    }


def operating_point(meta: dict) -> dict:
    """Where the unknown threshold of a model sits and what was measured of it, from its metadata.

    ``accept_rate``: the share of known-microphone pseudo-files the threshold was set to keep;
    ``known_kept`` of ``pseudo_files`` 30 s pseudo-files held out of training (``method``);
    ``heldout_known_kept`` and ``heldout_unknown_rejected``: the same on the sessions (and
    microphones) ``micfp train`` held out, ``None`` where it held none out.
    """
    cal, held = meta.get("calibration", {}), meta.get("heldout", {})

    def number(v):
        return None if v is None or not np.isfinite(v) else float(v)

    return {"accept_rate": number(meta.get("settings", {}).get("accept_rate")),
            "known_kept": number(cal.get("file_accept_rate")), "pseudo_files": cal.get("n_files"),
            "method": cal.get("method"), "heldout_known_kept": number(held.get("file_accept_rate")),
            "heldout_unknown_rejected": number(held.get("unknown_file_reject_rate"))}


def operating_point_line(op: dict) -> str:
    """One line stating the unknown decision's operating point (:func:`operating_point`)."""
    def pct(v):
        return "not measured" if v is None else f"{100 * v:.1f} %"

    return (f"unknown microphone: decided by the open-set distance; its threshold keeps {pct(op['known_kept'])} of "
            f"{op['pseudo_files']} known 30 s pseudo-files held out in training; on held-out sessions it kept "
            f"{pct(op['heldout_known_kept'])} of known and turned away {pct(op['heldout_unknown_rejected'])} of "
            "unknown-microphone pseudo-files (unseen microphones are hard to tell from known ones across days: "
            "docs/forensics.md)")


def identify_file(path, model: TrainedModel, *, channel: int = 0, top_k: int = 3, how: str = "calibrated") -> dict:
    """:func:`identify_signal` on one audio file (any sample rate; one channel)."""
    y, sr = read_audio(path, int(model.meta["sample_rate"]), channel)
    out = {"file": str(path), "sha256": sha256(path), "duration_s": round(y.size / model.meta["sample_rate"], 3),
           "sample_rate": sr, "channel": channel}
    out.update(identify_signal(y, model, top_k=top_k, how=how, source=str(path)))
    return out


def _file_task(path: str, model_path: str, channel: int, top_k: int, how: str) -> dict:
    return _safe(path, load_model(model_path), channel, top_k, how)


def _safe(path, model, channel, top_k, how) -> dict:
    # a bad file is reported on its own line; the other files still get an answer
    try:
        return identify_file(path, model, channel=channel, top_k=top_k, how=how)
    except MicfpError as exc:  # one line: the message and its details, if any, after it
        return {"file": str(path), "error": "; ".join((exc.message, *exc.details))}


def identify_files(paths, model_path, *, client=None, channel: int = 0, top_k: int = 3, how: str = "calibrated",
                   quiet: bool = False) -> list[dict]:
    """Identify many files: here, one after the other, or as one task per file on ``client``'s cluster.

    The model is loaded (and checked) once here first, so a bad model fails before any work.
    Unreadable or too-short files come back as ``{"file", "error"}`` entries.
    """
    if how not in AGGREGATIONS:
        raise InputError(f"unknown aggregation {how!r}; choose from {', '.join(AGGREGATIONS)}")
    model = load_model(model_path)
    paths = [str(p) for p in paths]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise InputError(f"{missing[0]}: no such file" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    identity = model_identity(model_path, model.meta)
    if client is None:
        from ..jit import warm_up

        warm_up()  # serially with any other micfp process compiling the same kernels
        results = [_safe(p, model, channel, top_k, how) for p in paths]
    else:
        from ..cluster.runner import run_tasks

        model_path = str(Path(model_path).resolve())
        results = run_tasks(client, "identify: files", _file_task,
                            [(str(Path(p).resolve()), model_path, channel, top_k, how) for p in paths], quiet=quiet)
    return [{**r, "model": identity} for r in results]


def format_results(results: list[dict]) -> str:
    """One line per identified file: verdict, probability, evidence and the runners-up.

    Files that failed are left out: :func:`error_lines` reports them (on stderr, in the CLI).
    """
    lines = []
    for r in results:
        if "error" in r:
            continue
        top = ", ".join(f"{t['mic']} {t['probability']:.2f}" for t in r["top_k"])
        verdict = r["mic"] if r["known"] else f"{UNKNOWN} (closest: {r['closest_mic']})"
        lines.append(f"{r['file']}: {verdict}  p={r['probability']:.2f}  distance={r['distance']:.2f} "
                     f"(threshold {r['threshold']:.2f})  clips={r['n_clips']}  top: {top}")
    ops = [r["operating_point"] for r in results if "operating_point" in r]
    if ops:  # one model for every file: its operating point once
        lines.append(operating_point_line(ops[0]))
    return "\n".join(lines)


def error_lines(results: list[dict]) -> list[str]:
    """One line per file that failed, naming its path once: ``micfp: error: PATH: problem``."""
    out = []
    for r in results:
        if "error" in r:
            msg = r["error"] if r["error"].startswith(r["file"]) else f"{r['file']}: {r['error']}"
            out.append(f"micfp: error: {one_line(msg)}")
    return out
