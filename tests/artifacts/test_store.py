"""The audio store: layout, ledger, completeness marker, clear errors."""

import numpy as np
import pytest
import zarr

from pipeline.errors import IncompleteError, InputError
from pipeline.artifacts.store import AudioStore, Recording, open_store, recording_id, write_shard


def make_store(path, n=48000 * 25):
    st = AudioStore.create(str(path), 48000, mics={1: "A"}, segments={"day 1": [(0, 10, "speech1")]})
    rec = Recording(id=recording_id("day 1", 1), mic="A", label=1, session="day 1", sample_rate=48000, n_samples=n)
    st.add_recording(rec)
    return st, rec


def test_round_trip_and_complete(tmp_path):
    st, rec = make_store(tmp_path / "s.zarr")
    data = (np.arange(rec.n_samples) % 2000 - 1000).astype(np.int16)
    for i, (a, b) in enumerate(rec.shard_ranges(st.shard_samples)):
        write_shard(st.path, rec.id, a, data[a:b])
        st.record_shards(rec.id, [i])
    st.mark_complete()
    ds = open_store(st.path)
    np.testing.assert_array_equal(ds[rec.id].values, data)
    assert ds[rec.id].attrs["mic"] == "A" and ds.attrs["sample_rate"] == 48000
    arr = zarr.open_array(f"{st.path}/audio/{rec.id}")
    assert arr.dtype == np.int16 and arr.chunks == (480000,)
    assert rec.id == "day_1~b4409c01-mic1"  # "day 1" loses its space: a hash of the name keeps it distinct


@pytest.mark.faults
def test_partial_store_is_refused(tmp_path):
    st, rec = make_store(tmp_path / "s.zarr")
    with pytest.raises(IncompleteError, match="incomplete"):
        AudioStore.open(st.path)
    with pytest.raises(IncompleteError, match="not fully written"):
        st.mark_complete()
    assert AudioStore.open(st.path, require_complete=False).recordings() == [rec]


@pytest.mark.faults
def test_resume_keeps_ledger(tmp_path):
    st, rec = make_store(tmp_path / "s.zarr")
    st.record_shards(rec.id, [0])
    st2 = AudioStore.create(st.path, 48000)
    st2.add_recording(rec)
    assert st2.shards_done(rec.id) == {0}
    changed = Recording(**{**rec.__dict__, "checksum": "other"})
    st2.add_recording(changed)
    assert st2.shards_done(rec.id) == set()


@pytest.mark.faults
def test_errors_name_the_path(tmp_path):
    with pytest.raises(InputError, match="no audio store"):
        AudioStore.open(str(tmp_path / "missing.zarr"))
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    with pytest.raises(InputError, match="other.zarr: not a micfp audio store"):
        AudioStore.open(str(tmp_path / "other.zarr"))
    st, _ = make_store(tmp_path / "s.zarr")
    with pytest.raises(InputError, match="sample rate 48000"):
        AudioStore.create(st.path, 44100)


@pytest.mark.faults
def test_read_only_location_is_a_clear_error(tmp_path):
    import os

    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions; nothing to test then
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(InputError, match="cannot create audio store"):
            AudioStore.create(str(ro / "s.zarr"), 48000)
    finally:
        os.chmod(ro, 0o755)


@pytest.mark.faults
def test_failed_write_is_not_marked_complete(tmp_path, monkeypatch):
    """A write that fails (full disk) leaves the shard out of the ledger and the store incomplete."""
    st, rec = make_store(tmp_path / "s.zarr")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zarr.Array, "__setitem__", boom)
    with pytest.raises(OSError, match="No space left"):
        write_shard(st.path, rec.id, 0, np.zeros(1000, np.int16))
    assert st.shards_done(rec.id) == set()
    with pytest.raises(IncompleteError):
        st.mark_complete()
