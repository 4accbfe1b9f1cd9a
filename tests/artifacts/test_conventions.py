"""Artifact conventions: consolidated Zarr metadata and CF attributes on the cube, audio store and
results set; the cube's clip index and band view; the audio store's time coordinates."""

import json
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

from pipeline.artifacts.store import AudioStore, Recording, open_store, recording_id, write_shard

MICS = {1: "A", 2: "B"}


def _open_quietly(path, **kw):
    """``xr.open_zarr`` as a user calls it (no ``consolidated=``), every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(path, **kw)


def _store(path, seconds=20):
    st = AudioStore.create(str(path), 48000, mics={1: "A"}, segments={"day 1": [(0, seconds, "speech1")]})
    rec = Recording(id=recording_id("day 1", 1), mic="A", label=1, session="day 1", sample_rate=48000,
                    n_samples=48000 * seconds)
    st.add_recording(rec)
    data = (np.arange(rec.n_samples) % 2000 - 1000).astype(np.int16)
    for i, (a, b) in enumerate(rec.shard_ranges(st.shard_samples)):
        write_shard(st.path, rec.id, a, data[a:b])
        st.record_shards(rec.id, [i])
    st.mark_complete()
    return st, rec, data


def _consolidated(path) -> bool:
    with open(f"{path}/zarr.json") as fh:
        return json.load(fh).get("consolidated_metadata") is not None


def test_cube_opens_without_warning_with_cf_attributes(tiny_cube):
    ds = _open_quietly(tiny_cube)
    for name in ("start_s", "end_s", "clip_seconds"):
        assert ds[name].attrs["units"] == "s" and ds[name].attrs["long_name"]
    assert ds["features"].attrs["long_name"]
    for name in ds.variables:
        assert ds[name].attrs.get("long_name"), name
    assert ds["frequency_hz"].attrs["units"] == "Hz"
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["source"].startswith("micfp ")
    assert "micfp" in ds.attrs["history"] and ds.attrs["title"] == "micfp feature cube"


def test_cube_clip_index_and_band_view(tiny_cube):
    from pipeline import open_cube
    from pipeline.artifacts.cube import spectra
    from pipeline.features.frames import FrameSettings

    cube = open_cube(tiny_cube)
    n = cube.sizes["clip"]
    np.testing.assert_array_equal(cube["clip"].values, np.arange(n))
    one = cube.sel(clip=n - 1)
    assert float(one["start_s"]) == float(cube["start_s"].values[-1])
    freq = cube["frequency_hz"].to_series()
    assert np.isnan(freq["mfcc_mean_00"]) and np.isnan(freq["ltas_diff_00"])
    centres = FrameSettings().band_centres
    assert freq["ltas_mean_00"] == pytest.approx(centres[0]) and freq["ltas_p10_03"] == pytest.approx(centres[3])
    ltas = spectra(cube, "ltas_mean")
    assert ltas.dims == ("clip", "band") and ltas.sizes["band"] == centres.size
    np.testing.assert_allclose(ltas["frequency_hz"].values, centres)
    np.testing.assert_array_equal(ltas.values[:, 5], cube.features.sel(feature="ltas_mean_05").values)
    assert (ltas["mic"].values == cube["mic"].values).all()
    per_mic = ltas.groupby("mic").mean()  # the documented query (docs/cube.md)
    assert per_mic.dims == ("mic", "band") and "frequency_hz" in per_mic.coords


def test_audio_store_consolidated_when_complete_and_not_while_resumed(tmp_path):
    st, rec, data = _store(tmp_path / "s.zarr")
    assert _consolidated(st.path) and _consolidated(f"{st.path}/audio")
    root = _open_quietly(st.path)
    assert root.attrs["Conventions"] == "CF-1.10" and root.attrs["title"] == "micfp audio store"
    audio = _open_quietly(st.path, group="audio")
    # CF decoding (xarray's default) gives float audio; Zarr readers get the stored integers
    np.testing.assert_allclose(audio[rec.id].values[:3], data[:3] / 32768)
    assert zarr.open_array(f"{st.path}/audio/{rec.id}").dtype == np.int16
    # a resumed store: the consolidated copy goes at once, so it never shows stale attributes
    again = AudioStore.create(st.path, 48000)
    assert not _consolidated(st.path) and not _consolidated(f"{st.path}/audio")
    assert not AudioStore.open(st.path, require_complete=False).complete
    assert len(again.group.attrs["history"].splitlines()) == 2
    again.mark_complete()
    assert _consolidated(st.path) and AudioStore.open(st.path).complete


def test_open_store_time_coordinate_and_recording_table(tmp_path):
    st, rec, data = _store(tmp_path / "s.zarr")
    ds = open_store(st.path)
    var = ds[rec.id]
    assert var.dtype == np.int16 and var.attrs["scale_factor"] == 1 / 32768 and var.attrs["mic"] == "A"
    t = ds[f"time_{rec.id}"]
    assert t.chunks is not None and t.attrs["units"] == "s"  # lazy: a dask arange
    np.testing.assert_allclose(t.values[[0, 48000, -1]], [0.0, 1.0, (rec.n_samples - 1) / 48000])
    assert list(ds["mic"].values) == ["A"] and list(ds["session"].values) == ["day 1"]
    assert ds["duration_s"].sel(recording=rec.id) == 20.0
    np.testing.assert_allclose(xr.decode_cf(ds)[rec.id].values[:3], data[:3] / 32768)


def _record(clip, clf, acc):
    from pipeline.evaluation.cell import Cell
    from dataclasses import asdict

    r = {"cell": asdict(Cell(clip, "all", "channel", clf, "session")), "condition": "clean", "seconds": 0.5,
         "n_test": 10, "n_train": 20, "confusion": [[5, 0], [0, 5]]}
    for m in ("accuracy", "macro_f1", "weighted_f1", "pair_accuracy"):
        r.update({m: acc, f"{m}_lo": acc - 0.1, f"{m}_hi": min(1.0, acc + 0.1)})
    return r


@pytest.mark.parametrize("name", ["results.zarr", "results.nc"])
def test_results_set_cf_attributes_and_bounds(tmp_path, name):
    from pipeline.artifacts.results import open_results, write_results
    from pipeline.workflow.ledger import results_set

    recs = [_record(1.0, "micfp_lr", 0.8), _record(2.0, "micfp_lr", 0.9)]
    path = write_results(results_set(recs, MICS, {"clean": {"kind": "clean"}}, {"workflow": "t"}), tmp_path / name)
    if name.endswith(".zarr"):
        assert _consolidated(path)
        ds = _open_quietly(path)
    else:
        with open(path, "rb") as fh:
            assert fh.read(4) == b"\x89HDF"  # netCDF4
        ds = open_results(path)
        assert ds.attrs["micfp"]["workflow"] == "t"
    assert ds["accuracy"].attrs["units"] == "1" and ds["clip_seconds"].attrs["units"] == "s"
    assert ds["accuracy"].attrs["ci_bounds"] == "accuracy_lo accuracy_hi" and ds["accuracy"].attrs["ci_level"] == 0.95
    assert "lower bound of the 95% bootstrap" in ds["accuracy_lo"].attrs["long_name"]
    assert ds["cell_seconds"].attrs["units"] == "s" and ds["snr_db"].attrs["units"] == "dB"
    for v in ds.data_vars:
        assert ds[v].attrs.get("long_name"), v
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["title"] == "micfp results set"
    assert float(ds["accuracy"].sel(clip_seconds=2.0).squeeze()) == pytest.approx(0.9)
