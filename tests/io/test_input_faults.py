"""Bad and tricky input (issue 18): each case is refused up front with one line naming the file,
or, where the input is fine, handled without losing or mixing anything."""

from __future__ import annotations

import os
import string
import subprocess
import sys
import tempfile
import unicodedata

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from log_helpers import logged

from pipeline.errors import InputError
from pipeline.io.ingest import IngestSettings, ingest, plan_ingest
from pipeline.artifacts.store import AudioStore, recording_id

pytestmark = pytest.mark.faults

SR = 8000


def noise(n, seed=0, channels=None, amp=3000):
    rng = np.random.default_rng(seed)
    shape = (n,) if channels is None else (n, channels)
    return np.clip(rng.normal(0, amp, shape), -32768, 32767).astype(np.int16)


def corpus(root, sessions=("day1",), labels=(1, 2), n=SR * 3, sr=SR, channels=None):
    """A thesis-layout folder ``root/<session>/rec-<label>.wav``; returns {(session, label): samples}."""
    data = {}
    for si, s in enumerate(sessions):
        (root / s).mkdir(parents=True, exist_ok=True)
        for lab in labels:
            x = noise(n, seed=100 * si + lab, channels=channels)
            sf.write(root / s / f"rec-{lab}.wav", x, sr, subtype="PCM_16")
            data[(s, lab)] = x
    return data


def run_ingest(src, store, client, settings=None):
    with logged("pipeline.io.ingest") as msgs:  # the warnings ingest logs
        report = ingest(str(src), str(store), client, settings, quiet=True)
    return report, msgs


def micfp(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def one_line(stderr: str) -> str:
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    return stderr


# -- item 3: frames of another channel are never reused ---------------------------------------------
def test_reingest_with_another_channel_recomputes_frames(tmp_path, client):
    from pipeline.features import FeatureConfig, compute_cube

    rate = 48000  # the frame stage's rate
    corpus(tmp_path / "src", labels=(1, 2), n=rate * 3, sr=rate, channels=2)
    config = FeatureConfig(feature_sets=("spectral",), clip_seconds=(1.0,))
    store, cube = tmp_path / "a.zarr", tmp_path / "cube.zarr"
    run_ingest(tmp_path / "src", store, client, IngestSettings(channel=0))
    compute_cube(str(store), str(cube), config, client, quiet=True)
    run_ingest(tmp_path / "src", store, client, IngestSettings(channel=1))
    got = compute_cube(str(store), str(cube), config, client, quiet=True)

    run_ingest(tmp_path / "src", tmp_path / "fresh.zarr", client, IngestSettings(channel=1))
    want = compute_cube(str(tmp_path / "fresh.zarr"), str(tmp_path / "fresh-cube.zarr"), config, client, quiet=True)
    np.testing.assert_array_equal(got.features.values, want.features.values)


def test_frames_follow_the_arrays_written_id(tmp_path, client):
    """A store rebuilt from scratch with identical metadata still gets its frames recomputed."""
    from pipeline.features.cube import compute_frames
    from pipeline.features.frames import FrameSettings

    rate = 48000
    corpus(tmp_path / "src", labels=(1,), n=rate * 2, sr=rate)
    store_path = tmp_path / "a.zarr"
    run_ingest(tmp_path / "src", store_path, client)
    store = AudioStore.open(str(store_path))
    written = store.identity("day1-mic1")["written"]
    g = compute_frames(store, str(tmp_path / "f.zarr"), FrameSettings(), client, quiet=True)
    assert g["frames/day1-mic1"].attrs["source"]["written"] == written
    run_ingest(tmp_path / "src", store_path, client)  # a resume: same array, same id, frames kept
    assert AudioStore.open(str(store_path)).identity("day1-mic1")["written"] == written
    AudioStore.create(str(store_path), rate, resume=False)  # rebuilt from scratch
    run_ingest(tmp_path / "src", store_path, client)
    store = AudioStore.open(str(store_path))
    assert store.identity("day1-mic1")["written"] != written
    g = compute_frames(store, str(tmp_path / "f.zarr"), FrameSettings(), client, quiet=True)
    assert g["frames/day1-mic1"].attrs["source"] == store.identity("day1-mic1")


# -- item 6: NaN / Inf in float audio -----------------------------------------------------------------
@pytest.mark.parametrize("bad, subtype, shown", [(np.nan, "FLOAT", "NaN"), (np.inf, "FLOAT", r"\+inf"),
                                                 (-np.inf, "DOUBLE", "-inf")])
def test_nonfinite_float_wav_refused_up_front(tmp_path, client, bad, subtype, shown):
    src, store = tmp_path / "src", tmp_path / "a.zarr"
    corpus(src)
    run_ingest(src, store, client)
    before = AudioStore.open(str(store)).read("day1-mic2")
    x = noise(SR * 3, seed=5) / 32768.0
    x[1234] = bad
    sf.write(src / "day1" / "rec-2.wav", x, SR, subtype=subtype)
    with pytest.raises(InputError, match=rf"rec-2.wav: sample 1234 is {shown}; float audio must hold finite"):
        plan_ingest(str(src))
    p = micfp("ingest", str(src), str(store), "--workers", "1")
    assert p.returncode == 2 and "rec-2.wav: sample 1234 is" in one_line(p.stderr)
    st = AudioStore.open(str(store))  # still complete, still the old audio
    np.testing.assert_array_equal(st.read("day1-mic2"), before)


def test_nonfinite_sample_only_in_an_unused_channel_is_fine(tmp_path):
    src = tmp_path / "src"
    corpus(src, labels=(1,), channels=2)
    x = noise(SR * 3, seed=3, channels=2) / 32768.0
    x[77, 1] = np.nan
    sf.write(src / "day1" / "rec-2.wav", x, SR, subtype="FLOAT")
    assert len(plan_ingest(str(src), IngestSettings(channel=0)).sources) == 2
    with pytest.raises(InputError, match=r"rec-2.wav: sample 77 \(channel 1\) is NaN"):
        plan_ingest(str(src), IngestSettings(channel="each"))


# -- item 7: a short file, broken links, Unicode sessions, newlines, --root-only, duplicate names -------
@pytest.mark.parametrize("n", [1, SR])
def test_much_shorter_file_does_not_silently_cut_its_session(tmp_path, n):
    src = tmp_path / "src"
    corpus(src, labels=(1, 2, 3))
    sf.write(src / "day1" / "rec-2.wav", noise(n), SR)
    with pytest.raises(InputError, match=rf"rec-2.wav: {n} samples? \({n / SR:.3f} s\), the longest file of "
                                         rf"session 'day1' has {SR * 3} \(3.000 s, .*rec-1.wav\)") as err:
        plan_ingest(str(src))
    assert "\n" not in str(err.value)
    cut = plan_ingest(str(src), IngestSettings(align="shortest"))  # asked for: cut, with the warning
    assert {r.n_samples for r in cut.recordings} == {n} and "differ in length" in cut.warnings[0]
    kept = plan_ingest(str(src), IngestSettings(align="keep"))
    assert sorted(r.n_samples for r in kept.recordings) == [n, SR * 3, SR * 3]


def test_cli_short_file_is_refused_in_one_line(tmp_path):
    src = tmp_path / "src"
    corpus(src)
    sf.write(src / "day1" / "rec-2.wav", noise(1), SR)
    p = micfp("ingest", str(src), str(tmp_path / "a.zarr"))
    assert p.returncode == 2 and "rec-2.wav: 1 sample " in one_line(p.stderr) and "--align" in p.stderr
    assert not (tmp_path / "a.zarr").exists()


def test_shorter_file_within_half_is_still_aligned(tmp_path):
    src = tmp_path / "src"
    corpus(src)
    sf.write(src / "day1" / "rec-2.wav", noise(SR * 2), SR)  # 2 s of 3 s: a take that stopped early
    plan = plan_ingest(str(src))
    assert {r.n_samples for r in plan.recordings} == {SR * 2}


@pytest.mark.parametrize("layout", ["kaggle", "tree"])
@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_broken_links_named_like_recordings_are_refused(tmp_path, layout, kind):
    src = tmp_path / "src"
    corpus(src)
    link = src / "day1" / "rec-3.wav"
    os.symlink(src / "day1" / "gone.wav" if kind == "dangling" else link, link)
    with pytest.raises(InputError, match="rec-3.wav: " + ("dangling symbolic link to .*gone.wav"
                                                          if kind == "dangling" else "symbolic link loop")) as err:
        plan_ingest(str(src), IngestSettings(layout=layout))
    assert "\n" not in str(err.value)


def test_unicode_sessions_stay_distinct(tmp_path, client):
    src = tmp_path / "src"
    data = corpus(src, sessions=("月曜", "火曜", "day 1", "day_1"), labels=(1,))
    run_ingest(src, tmp_path / "a.zarr", client)
    st = AudioStore.open(str(tmp_path / "a.zarr"))
    recs = {r.session: r for r in st.recordings()}
    assert sorted(recs) == sorted(["月曜", "火曜", "day 1", "day_1"])
    assert recs["月曜"].id == "月曜-mic1" and recs["day_1"].id == "day_1-mic1"
    for s in recs:
        np.testing.assert_array_equal(st.read(recs[s].id), data[(s, 1)])


def test_newline_in_a_file_name_gives_one_line(tmp_path):
    src = tmp_path / "src"
    corpus(src)
    (src / "day1" / "bad\nname-3.wav").write_bytes(b"")
    p = micfp("ingest", str(src), str(tmp_path / "a.zarr"))
    assert p.returncode == 2 and "bad\\nname-3.wav: empty file" in one_line(p.stderr)


def test_newline_in_names_of_several_problems_gives_one_line_each(tmp_path):
    src = tmp_path / "src"
    corpus(src)
    (src / "day1" / "bad\nname-3.wav").write_bytes(b"")
    (src / "day1" / "bad\rname-4.wav").write_bytes(b"")
    with pytest.raises(InputError) as err:
        plan_ingest(str(src))
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and "bad\\nname-3.wav" in lines[1] + lines[2] and "bad\\rname-4.wav" in lines[1] + lines[2]


def test_root_only_refuses_manifest_paths_outside_its_folder(tmp_path):
    outside = tmp_path / "elsewhere"
    corpus(outside)
    here = tmp_path / "project"
    corpus(here, labels=(1,))
    os.symlink(outside / "day1" / "rec-2.wav", here / "day1" / "link-2.wav")
    man = here / "manifest.csv"
    man.write_text("path,mic,session\n"
                   "day1/rec-1.wav,1,day1\n"
                   f"{outside / 'day1' / 'rec-2.wav'},2,day1\n"
                   "day1/link-2.wav,2,day2\n"
                   "../elsewhere/day1/rec-1.wav,1,day2\n")
    assert len(plan_ingest(str(man)).sources) == 4  # by default a manifest may name files anywhere
    with pytest.raises(InputError) as err:
        plan_ingest(str(man), IngestSettings(root_only=True))
    lines = str(err.value).splitlines()
    assert lines[0] == "3 problems in the input (nothing was written):"
    assert all("refused by --root-only" in line for line in lines[1:])
    assert "link-2.wav: outside the recording folder" in lines[2] and "it leads to" in lines[2]
    p = micfp("ingest", str(man), str(tmp_path / "a.zarr"), "--root-only")
    assert p.returncode == 2 and "3 problems" in p.stderr and not (tmp_path / "a.zarr").exists()


def test_root_only_accepts_links_within_the_folder(tmp_path):
    src = tmp_path / "src"
    corpus(src)
    (src / "day1" / "rec-2.wav").rename(src / "day1" / "real.bin")
    os.symlink("real.bin", src / "day1" / "rec-2.wav")
    assert len(plan_ingest(str(src), IngestSettings(root_only=True)).sources) == 2


@pytest.mark.parametrize("mics, expected", [
    ("label,name\n1,A\n2,A\n", r"mics.csv: line 3: duplicate microphone name 'A' \(labels 1 and 2\)"),
    ("label,name\n1,mic 2\n", r"mics.csv: duplicate microphone name 'mic 2' \(labels 1, 2\)"),
])
@pytest.mark.parametrize("layout", ["kaggle", "manifest"])
def test_duplicate_microphone_names_are_refused(tmp_path, mics, expected, layout):
    src = tmp_path / "src"
    corpus(src)
    (src / "mics.csv").write_text(mics)
    target = str(src)
    if layout == "manifest":
        (src / "m.csv").write_text("path,mic,session\nday1/rec-1.wav,1,day1\nday1/rec-2.wav,2,day1\n")
        target = str(src / "m.csv")
    with pytest.raises(InputError, match=expected) as err:
        plan_ingest(target)
    assert "\n" not in str(err.value)


# -- the recording-id sanitiser ------------------------------------------------------------------------
SAFE_EXTRA = set("_.-~") | set(string.digits)


def _id_is_safe(rid: str) -> bool:
    return (rid not in (".", "..") and not rid.startswith((".", "_")) and len(rid.encode()) <= 200
            and all(c in SAFE_EXTRA or unicodedata.category(c)[0] in "LMN" for c in rid)
            and unicodedata.normalize("NFC", rid) == rid)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=80), min_size=2, max_size=6, unique=True),
       st.integers(min_value=0, max_value=99), st.one_of(st.none(), st.integers(min_value=0, max_value=7)))
def test_recording_ids_are_distinct_and_filesystem_safe(sessions, label, channel):
    ids = [recording_id(s, label, channel) for s in sessions]
    assert len(set(ids)) == len(ids)
    assert all(_id_is_safe(rid) for rid in ids), ids
    with tempfile.TemporaryDirectory() as d:  # the file system takes each, as one entry each
        for rid in ids:
            os.mkdir(os.path.join(d, rid))
        assert sorted(os.listdir(d)) == sorted(ids)


def test_safe_session_names_keep_their_id():
    assert recording_id("day1", 3) == "day1-mic3" and recording_id("月曜", 1, 0) == "月曜-mic1-ch0"
