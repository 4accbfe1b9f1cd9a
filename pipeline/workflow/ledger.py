"""The results ledger (finished cells, one JSON line each) and the results set built from it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..artifacts.results import CLEAN, RESULTS_KIND, _plain_str
from ..report.files import json_default

log = logging.getLogger(__name__)


# -- results ---------------------------------------------------------------------------------
class ResultsLedger:
    """Finished cells of a workflow, one JSON line each, appended as cells finish.

    The first line is the *basis*: what the results depend on besides the cell (the audio, the
    frame settings, the bootstrap size, the training cap, the code version). A ledger with another basis is
    started over. The results Dataset is always rebuilt from the ledger, so an interrupted run
    loses nothing that finished.
    """

    def __init__(self, path: Path, basis: dict):
        self.path = Path(path)
        self.basis = json.loads(json.dumps(basis, default=json_default))
        self.records: dict[str, dict] = {}
        if self.path.exists():
            lines = self.path.read_text().splitlines()
            head = _loads(lines[0]) if lines else None
            if head is not None and head.get("basis") == self.basis:
                for line in lines[1:]:
                    rec = _loads(line)
                    if rec is not None and "key" in rec:  # a torn last line from a kill is skipped
                        self.records[rec["key"]] = rec
            else:
                log.info(f"{self.path}: results were computed from other audio or settings; starting over")
                self.path.unlink()
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"basis": self.basis}) + "\n")

    def done(self, key: str) -> bool:
        return key in self.records

    def record(self, key: str, result: dict) -> None:
        rec = {**json.loads(json.dumps(result, default=json_default)), "key": key}
        with self.path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[key] = rec


def _loads(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None




def results_set(records: list[dict], mics: dict[int, str], conditions: dict[str, dict], attrs: dict):
    """The results Dataset: evaluate's per-cell layout plus a ``condition`` dimension.

    Dims ``condition, clip_seconds, sound_type, feature_set, classifier, protocol`` (and
    ``true_mic, pred_mic`` for ``confusion``); NaN (0 for counts) where a cell was not run.
    ``clip_seconds`` 0 holds the silence-split cells. Coordinates on ``condition`` describe it:
    kind, SNR, codec, requested and measured bit rate.
    """
    import pandas as pd
    import xarray as xr

    from ..evaluation.grid import auto_choices, results_dataset

    order = [c for c in conditions if any(r["condition"] == c for r in records)]
    order += sorted({r["condition"] for r in records} - set(order))
    models = {int(k): v for k, v in (attrs.get("models") or {}).items()}  # declared in mics.csv
    parts = [results_dataset([r for r in records if r["condition"] == c], mics, models) for c in order]
    ints = {k for k, v in parts[0].data_vars.items() if v.dtype.kind in "iu"}
    ds = xr.concat(parts, dim=pd.Index(order, name="condition"), join="outer", combine_attrs="override",
                   fill_value={k: 0 for k in ints})
    for k in ints:
        if k in ds and ds[k].dtype.kind == "f":
            ds[k] = ds[k].fillna(0).astype(np.int64)
    # Wall time of each cell, for planning bigger grids.
    secs = xr.full_like(ds["accuracy"], np.nan)
    dims = [d for d in ds["accuracy"].dims if d != "condition"]
    for r in records:
        c = r["cell"]
        secs.loc[{"condition": r["condition"], **{d: c[d] for d in dims}}] = r.get("seconds", np.nan)
    ds["cell_seconds"] = secs
    # What each condition is, as data variables (not coordinates, so that a metric's
    # ``to_dataframe().dropna()`` keeps its rows): NaN where a field does not apply.
    info = [conditions.get(c, {}) for c in order]
    ds["condition_kind"] = ("condition", np.array([i.get("kind", CLEAN if c == CLEAN else "unknown")
                                                   for c, i in zip(order, info)], dtype=object))
    ds["snr_db"] = ("condition", np.array([_num(i.get("snr_db")) for i in info]))
    ds["codec"] = ("condition", np.array([i.get("codec") or "" for i in info], dtype=object))
    ds["kbps_requested"] = ("condition", np.array([_num(i.get("kbps")) for i in info]))
    ds["kbps_measured"] = ("condition", np.array([_num(i.get("kbps_measured")) for i in info]))
    ds["compression_level"] = ("condition", np.array([_num(i.get("level")) for i in info]))
    for d in [d for d in ("condition", "sound_type", "feature_set", "classifier", "protocol", "true_mic",
                          "pred_mic", "identical_group") if d in ds.coords]:
        ds = ds.assign_coords({d: (ds[d].dims, _plain_str(ds[d].values))})
    for d in ("condition_kind", "codec"):
        ds[d] = ("condition", _plain_str(ds[d].values))
    meta = dict(parts[0].attrs.get("micfp", {}))
    meta.update(kind=RESULTS_KIND, complete=True, **attrs)
    meta.pop("auto_choices", None)  # the first condition's; every condition's, in record order:
    if choices := auto_choices(records):
        meta["auto_choices"] = choices
    ds.attrs = {"micfp": json.loads(json.dumps(meta, default=json_default))}
    return ds


def _condition_spec(info: dict) -> dict | None:
    """What a degraded cell's result depends on: the condition and the audio it was made from."""
    keys = ("kind", "snr_db", "codec", "kbps", "seed", "level", "source_fingerprint", "sessions")
    return json.loads(json.dumps({k: info.get(k) for k in keys})) if info.get("kind") != CLEAN else None


def _num(v) -> float:
    return float(v) if v is not None else float("nan")
