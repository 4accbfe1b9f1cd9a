"""CF-style metadata and consolidated Zarr metadata for every artifact micfp writes.

Attributes follow the CF conventions where they apply: ``units`` and ``long_name`` on each
variable, and the global ``Conventions``, ``title``, ``history`` and ``source``. micfp's own
metadata stays in the ``micfp`` attribute, untouched.

Zarr stores get consolidated metadata (one read to open them; ``xr.open_zarr`` then opens them
without a warning), written once the artifact is complete. micfp's own readers open the live
per-node metadata (``use_consolidated=False``), so a store whose attributes changed since it was
consolidated (an audio store being resumed) is never read stale; the first attribute write of
a resumed store removes its consolidated copy (:func:`unconsolidate`).
"""

from __future__ import annotations

import datetime as _dt
import sys
import warnings

from ..version import __version__

CONVENTIONS = "CF-1.10"

_S = "s"
#: (units, long_name) of the variables and coordinates micfp writes; units None: none apply.
VARIABLES: dict[str, tuple[str | None, str]] = {
    # feature cube
    "features": (None, "clip features (units differ per feature; see docs/cube.md)"),
    "clip": ("1", "clip index (row of the cube)"),
    "mic": (None, "microphone name"),
    "label": ("1", "microphone label (integer class)"),
    "session": (None, "recording session"),
    "recording": (None, "recording id in the audio store"),
    "sound_type": (None, "sound type of the segment the clip lies in"),
    "clip_seconds": (_S, "nominal clip length (0 for silence-split clips)"),
    "start_s": (_S, "clip start time from the start of its recording"),
    "end_s": (_S, "clip end time from the start of its recording"),
    "segmentation": (None, "how clips were cut (fixed or silence)"),
    "feature": (None, "feature name"),
    "feature_set": (None, "feature set"),
    "frequency_hz": ("Hz", "centre frequency of the feature's 1/6-octave band (NaN if not a band feature)"),
    # results set
    "condition": (None, "recording condition (clean or a degradation)"),
    "classifier": (None, "classifier"),
    "protocol": (None, "train/test protocol"),
    "true_mic": (None, "true microphone"),
    "pred_mic": (None, "predicted microphone"),
    "accuracy": ("1", "accuracy"),
    "macro_f1": ("1", "macro-averaged F1 score"),
    "weighted_f1": ("1", "support-weighted F1 score"),
    "pair_accuracy": ("1", "accuracy on the identical-model microphones (every group pooled)"),
    "group_accuracy": ("1", "accuracy on each identical-model group's clips"),
    "identical_group": (None, "identical-model group (microphones of one make and model)"),
    "file_accuracy": ("1", "accuracy on whole test files (runs of consecutive clips of one recording)"),
    "n_files": ("1", "number of whole test files of that length"),
    "file_seconds": (_S, "length of the whole test files"),
    "n_test": ("1", "number of test clips"),
    "n_train": ("1", "number of training clips (summed over folds)"),
    "confusion": ("1", "confusion matrix (test clips)"),
    "cell_seconds": (_S, "wall time of the evaluation cell"),
    # forensic cells (verification, open-set protocols)
    "eer": ("1", "equal error rate (ROC convex hull) of same/different-microphone trials, or of the unknown "
                 "detector under open-set"),
    "cllr": ("bit", "log-likelihood-ratio cost of the calibrated log10 likelihood ratios"),
    "min_cllr": ("bit", "Cllr after optimal (PAV) calibration on the trials themselves"),
    "eer_identical": ("1", "equal error rate of the trials within identical-model groups"),
    "cllr_identical": ("bit", "Cllr of the trials within identical-model groups"),
    "min_cllr_identical": ("bit", "min-Cllr of the trials within identical-model groups"),
    "n_target": ("1", "number of same-microphone trials (open-set: known-microphone test clips)"),
    "n_nontarget": ("1", "number of different-microphone trials (open-set: unknown-microphone test clips)"),
    "false_alarm_rate": ("1", "share of known-microphone clips called unknown"),
    "unknown_detection": ("1", "share of unknown-microphone clips called unknown at the false-alarm rate"),
    "curve_point": ("1", "point index along a Tippett or DET curve"),
    "tippett_llr": ("1", "log10 likelihood ratio (Tippett curve abscissa)"),
    "tippett_target": ("1", "share of same-microphone trials with log10 LR at or above tippett_llr"),
    "tippett_nontarget": ("1", "share of different-microphone trials with log10 LR at or above tippett_llr"),
    "det_p_miss": ("1", "miss rate along the DET curve (open-set: known clips called unknown)"),
    "det_p_fa": ("1", "false-alarm rate along the DET curve (open-set: unknown clips accepted)"),
    "condition_kind": (None, "kind of condition"),
    "snr_db": ("dB", "signal-to-noise ratio of added noise"),
    "codec": (None, "lossy codec"),
    "kbps_requested": ("kbit s-1", "requested codec bit rate"),
    "kbps_measured": ("kbit s-1", "measured codec bit rate"),
    "compression_level": ("1", "codec compression level"),
    # audio store
    "time": (_S, "time from the start of the recording"),
}
#: Bound suffixes of the results metrics and the confidence interval they delimit.
BOUNDS = {"_lo": "lower", "_hi": "upper"}
CI_LEVEL = 0.95


def history_line(command: str | None = None) -> str:
    """One ``history`` entry: ISO UTC timestamp, micfp version and the command that ran."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    command = command or " ".join(["micfp", *sys.argv[1:]] if sys.argv[0].endswith("micfp") else sys.argv)
    return f"{now} micfp {__version__}: {command}"


def global_attrs(title: str, command: str | None = None) -> dict:
    """The CF global attributes of an artifact: Conventions, title, history, source."""
    return {"Conventions": CONVENTIONS, "title": title, "history": history_line(command),
            "source": f"micfp {__version__}"}


def variable_attrs(name: str) -> dict:
    """``units`` and ``long_name`` of a variable micfp writes (empty if unknown).

    A metric's ``_lo``/``_hi`` bound gets its metric's units and a long name naming the interval.
    """
    for suffix, side in BOUNDS.items():
        if name.endswith(suffix) and name[: -len(suffix)] in VARIABLES:
            units, long = VARIABLES[name[: -len(suffix)]]
            return {"units": units, "long_name": f"{long}, {side} bound of the {CI_LEVEL:.0%} bootstrap "
                                                  "confidence interval", "ci_level": CI_LEVEL}
    if name not in VARIABLES:
        return {}
    units, long = VARIABLES[name]
    return {"long_name": long} if units is None else {"units": units, "long_name": long}


def annotate(ds, title: str, command: str | None = None):
    """``ds`` with CF attributes on every known variable and coordinate and the global ones.

    Each metric with ``_lo``/``_hi`` siblings also names them in a ``ci_bounds`` attribute
    (and its ``ci_level``): CF's ``bounds`` is for coordinates, so the interval is described
    this way for data variables. Existing attributes are kept; ``micfp`` stays as it is.
    """
    ds = ds.copy()
    for name in ds.variables:
        attrs = variable_attrs(str(name))
        if str(name) in VARIABLES and f"{name}_lo" in ds.variables and f"{name}_hi" in ds.variables:
            attrs.update(ci_bounds=f"{name}_lo {name}_hi", ci_level=CI_LEVEL)
        ds[name].attrs = {**attrs, **ds[name].attrs}
    ds.attrs = {**global_attrs(title, command), **ds.attrs}
    return ds


def consolidate(store, groups=("",)) -> None:
    """Write consolidated metadata in ``store`` (a path or a Zarr store) for each group in ``groups``.

    Children before parents: ``("audio", "")``. Consolidated metadata is not (yet) part of the
    Zarr v3 specification; zarr-python warns so at every consolidation, which is expected here
    (xarray's readers use it). Stores that cannot hold it are left as they are.
    """
    import zarr

    for group in groups:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Zarr [Ff]ormat 3 specification.*")
            try:
                zarr.consolidate_metadata(store, path=group or None)
            except TypeError:  # the store does not support consolidated metadata
                return


def unconsolidate(group, children=()) -> None:
    """Remove the consolidated metadata of ``group`` and of its child groups ``children``.

    Called before a complete store's attributes change again (a resumed ingest). ``group`` must
    have been opened with ``use_consolidated=False``: a group opened so writes its node metadata
    back without a consolidated copy.
    """
    import zarr

    group.update_attributes({})
    for name in children:
        if name in group:
            zarr.open_group(store=group.store, path=f"{group.path}/{name}".strip("/"), mode="r+",
                            use_consolidated=False).update_attributes({})
