"""Ingest: layouts, formats, resampling, resume, and one clear line for every kind of bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import zarr
from log_helpers import logged

from pipeline.errors import ConfigError, IncompleteError, InputError
from pipeline.io.ingest import IngestSettings, ShardTask, ingest, plan_ingest, read_task_audio
from pipeline.artifacts.store import AudioStore, open_store

SR = 8000  # low rate: multi-shard files (5 min shards) stay small


def noise(n, seed=0, amp=3000, channels=None):
    rng = np.random.default_rng(seed)
    shape = (n,) if channels is None else (n, channels)
    return np.clip(rng.normal(0, amp, shape), -32768, 32767).astype(np.int16)


def kaggle(root, sessions=("day1",), labels=(1, 2), n=SR * 3, sr=SR, segments=None, prefix="rec", mics=True):
    """A small thesis-layout folder; returns {(session, label): samples}."""
    data = {}
    for si, s in enumerate(sessions):
        (root / s).mkdir(parents=True, exist_ok=True)
        for lab in labels:
            x = noise(n, seed=100 * si + lab)
            sf.write(root / s / f"{prefix}-{lab}.wav", x, sr, subtype="PCM_16")
            data[(s, lab)] = x
        if segments is not None:
            (root / s / "segments.csv").write_text("start_s,end_s,sound_type\n" +
                                                   "".join(f"{a},{b},{t}\n" for a, b, t in segments))
    if mics:
        (root / "mics.csv").write_text("label,name\n" + "".join(f"{lab},Mic {lab}\n" for lab in labels))
    return data


def quiet_ingest(src, store, client, settings=None, **kw):
    with logged("pipeline.io.ingest") as msgs:  # the warnings ingest logs
        report = ingest(str(src), str(store), client, settings, quiet=True, **kw)
    return report, msgs


# -- the done-when: simulator WAV round trip -------------------------------------------------------
def test_simulated_wav_round_trips_sample_identical(tmp_path, client, tiny_plan, tiny_store):
    from pipeline.simulate.writer import simulate_to_wav

    wav = simulate_to_wav(tiny_plan, tmp_path / "wav dir", client, quiet=True)
    assert not (wav / ".micfp-simulate.json").exists()
    assert sf.info(str(wav / "day1" / "mic-3.wav")).subtype == "PCM_16"
    report, msgs = quiet_ingest(wav, tmp_path / "audio.zarr", client)
    assert msgs == [] and report.recordings == 10
    ref, got = AudioStore.open(tiny_store), AudioStore.open(str(tmp_path / "audio.zarr"))
    assert [r.id for r in got.recordings()] == [r.id for r in ref.recordings()]
    for r in ref.recordings():
        g = got.recording(r.id)
        assert (g.mic, g.label, g.session, g.n_samples, g.dtype) == (r.mic, r.label, r.session, r.n_samples, r.dtype)
        np.testing.assert_array_equal(got.read(r.id), ref.read(r.id))
    assert got.meta["segments"] == ref.meta["segments"] and got.mics == ref.mics
    ds = open_store(got.path)
    assert ds["day1-mic1"].attrs["source_path"].endswith(os.path.join("wav dir", "day1", "mic-1.wav"))
    assert ds["day1-mic1"].attrs["checksum"].startswith("blake2b-ends:")


# -- store layout, resume, idempotence ----------------------------------------------------------------
@pytest.mark.faults
def test_multi_shard_ingest_resume_and_change(tmp_path, client):
    src = tmp_path / "src"
    n = SR * 60 * 11  # 11 min: three 5-minute shards
    data = kaggle(src, labels=(1, 2), n=n, segments=[(0, 60, "speech"), (70, 400, "music")])
    store = tmp_path / "a.zarr"
    rep, _ = quiet_ingest(src, store, client)
    assert (rep.shards_total, rep.shards_written) == (6, 6)
    st = AudioStore.open(str(store))
    arr = st.array("day1-mic1")
    assert arr.dtype == np.int16 and arr.chunks == (10 * SR,) and arr.shards == (300 * SR,)
    assert st.shards_done("day1-mic1") == {0, 1, 2}
    np.testing.assert_array_equal(st.read("day1-mic2"), data[("day1", 2)])
    assert st.segments("day1").sound_type.tolist() == ["speech", "music"]
    assert st.mics == {1: "Mic 1", 2: "Mic 2"}

    rep, _ = quiet_ingest(src, store, client)  # idempotent: nothing to do
    assert rep.shards_written == 0 and AudioStore.open(str(store)).complete

    # An interrupted run: the ledger lost shard 1 and 2 of one recording -> only those are redone.
    st = AudioStore.open(str(store), mode="r+")
    meta = dict(st.array("day1-mic1").attrs["micfp"])
    st.array("day1-mic1").attrs["micfp"] = {**meta, "shards_done": [0]}
    st.mark_incomplete()
    rep, _ = quiet_ingest(src, store, client)
    assert rep.shards_written == 2 and AudioStore.open(str(store)).complete

    # A changed source file is rewritten, the others are kept.
    y = noise(n, seed=99)
    sf.write(src / "day1" / "rec-2.wav", y, SR, subtype="PCM_16")
    rep, _ = quiet_ingest(src, store, client)
    assert rep.shards_written == 3
    st = AudioStore.open(str(store))
    np.testing.assert_array_equal(st.read("day1-mic2"), y)
    np.testing.assert_array_equal(st.read("day1-mic1"), data[("day1", 1)])


@pytest.mark.faults
def test_failed_rerun_leaves_complete_store_untouched(tmp_path, client):
    src = tmp_path / "src"
    data = kaggle(src)
    store = tmp_path / "a.zarr"
    quiet_ingest(src, store, client)
    (src / "day1" / "rec-2.wav").write_bytes(b"")  # the source goes bad
    with pytest.raises(InputError, match="rec-2.wav: empty file"):
        quiet_ingest(src, store, client)
    st = AudioStore.open(str(store))  # still complete, same data
    np.testing.assert_array_equal(st.read("day1-mic2"), data[("day1", 2)])


@pytest.mark.faults
def test_file_changed_during_ingest_leaves_store_incomplete(tmp_path, client):
    src = tmp_path / "src"
    kaggle(src)
    plan = plan_ingest(str(src))
    sf.write(src / "day1" / "rec-1.wav", noise(SR), SR, subtype="PCM_16")  # shorter after planning
    with pytest.raises(InputError, match=r"rec-1.wav: changed while ingesting"):
        quiet_ingest(src, tmp_path / "a.zarr", client, plan=plan)
    with pytest.raises(IncompleteError):
        AudioStore.open(str(tmp_path / "a.zarr"))


@pytest.mark.faults
def test_stale_recordings_removed(tmp_path, client):
    src = tmp_path / "src"
    kaggle(src, labels=(1, 2, 3))
    quiet_ingest(src, tmp_path / "a.zarr", client)
    (src / "day1" / "rec-3.wav").unlink()
    quiet_ingest(src, tmp_path / "a.zarr", client)
    assert [r.id for r in AudioStore.open(str(tmp_path / "a.zarr")).recordings()] == ["day1-mic1", "day1-mic2"]


# -- formats and channels ---------------------------------------------------------------------
def test_formats_keep_their_width(tmp_path, client):
    src = tmp_path / "src" / "s1"
    src.mkdir(parents=True)
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.5, 0.5, SR * 2)
    sf.write(src / "a-1.wav", x, SR, subtype="PCM_24")
    sf.write(src / "a-2.wav", x, SR, subtype="FLOAT")
    sf.write(src / "a-3.flac", x, SR, subtype="PCM_16")
    sf.write(src / "a-4.ogg", x, SR, format="OGG", subtype="VORBIS")
    sf.write(src / "a-5.wav", x, SR, subtype="PCM_32")
    quiet_ingest(src.parent, tmp_path / "a.zarr", client)
    st = AudioStore.open(str(tmp_path / "a.zarr"))
    dtypes = {r.label: r.dtype for r in st.recordings()}
    assert dtypes == {1: "int32", 2: "float32", 3: "int16", 4: "float32", 5: "int32"}
    for lab, name in [(1, "a-1.wav"), (2, "a-2.wav"), (3, "a-3.flac"), (4, "a-4.ogg"), (5, "a-5.wav")]:
        ref, _ = sf.read(src / name, dtype=dtypes[lab])
        np.testing.assert_array_equal(st.read(f"s1-mic{lab}"), ref)
    assert st.mics == {k: f"mic {k}" for k in range(1, 6)}  # no mics.csv


def test_multichannel_pick_or_each(tmp_path, client):
    src = tmp_path / "src" / "s1"
    src.mkdir(parents=True)
    x = noise(SR * 2, channels=3)
    sf.write(src / "a-1.wav", x, SR, subtype="PCM_16")
    with pytest.raises(InputError, match=r"a-1.wav: has 3 channels; pass --channel"):
        plan_ingest(str(src.parent))
    with pytest.raises(InputError, match=r"--channel 5 but the file has 3 channels"):
        plan_ingest(str(src.parent), IngestSettings(channel=5))
    quiet_ingest(src.parent, tmp_path / "one.zarr", client, IngestSettings(channel=2))
    st = AudioStore.open(str(tmp_path / "one.zarr"))
    assert [(r.id, r.channel) for r in st.recordings()] == [("s1-mic1", 2)]
    np.testing.assert_array_equal(st.read("s1-mic1"), x[:, 2])
    quiet_ingest(src.parent, tmp_path / "each.zarr", client, IngestSettings(channel="each"))
    st = AudioStore.open(str(tmp_path / "each.zarr"))
    assert [r.id for r in st.recordings()] == ["s1-mic1-ch0", "s1-mic1-ch1", "s1-mic1-ch2"]
    for k in range(3):
        np.testing.assert_array_equal(st.read(f"s1-mic1-ch{k}"), x[:, k])


# -- resampling -----------------------------------------------------------------------------------
def test_mixed_rates_need_resample(tmp_path):
    src = tmp_path / "src" / "s1"
    src.mkdir(parents=True)
    sf.write(src / "a-1.wav", noise(SR), SR)
    sf.write(src / "a-2.wav", noise(6000), 6000)
    with pytest.raises(InputError, match=r"mixed sample rates: 6000 Hz \(1 files, e.g. .*a-2.wav\), 8000 Hz.*--resample"):
        plan_ingest(str(src.parent))
    assert plan_ingest(str(src.parent), IngestSettings(resample=SR)).sample_rate == SR


def test_resampled_shards_match_whole_file_resampling(tmp_path):
    import soxr

    src_rate, dst = 3000, 4000
    x = noise(src_rate * 60 * 11, seed=5, amp=6000)  # three output shards
    path = tmp_path / "r-1.wav"
    sf.write(path, x, src_rate, subtype="PCM_16")
    whole = soxr.resample(x.astype(np.float32) / 32768, src_rate, dst, quality="HQ")
    n_out = x.size * dst // src_rate
    shard = 300 * dst
    parts = [read_task_audio(ShardTask(str(path), "", ("r",), (0,), a, min(n_out, a + shard), src_rate, dst,
                                       x.size, "int16"))[:, 0] for a in range(0, n_out, shard)]
    got = np.concatenate(parts)
    ref = np.clip(np.rint(whole[:n_out] * 32768), -32768, 32767)
    assert got.shape == (n_out,)
    assert np.abs(got.astype(np.int32) - ref).max() <= 1  # shard seams are invisible


def test_resample_ingest(tmp_path, client):
    src = tmp_path / "src" / "s1"
    src.mkdir(parents=True)
    sf.write(src / "a-1.wav", noise(SR * 3), SR)
    sf.write(src / "a-2.wav", noise(4000 * 3), 4000)
    quiet_ingest(src.parent, tmp_path / "a.zarr", client, IngestSettings(resample=SR))
    st = AudioStore.open(str(tmp_path / "a.zarr"))
    assert st.sample_rate == SR and {r.n_samples for r in st.recordings()} == {SR * 3}


# -- layouts ---------------------------------------------------------------------------------------
def test_manifest_layout_with_segments(tmp_path, client):
    data = kaggle(tmp_path / "audio", labels=(1, 2), mics=False)
    man = tmp_path / "audio" / "list.csv"
    man.write_text("path,mic,session,sound_type,start_s,end_s\n"
                   "day1/rec-1.wav,KM 184,d1,speech,0,1.5\n"
                   "day1/rec-1.wav,KM 184,d1,music,1.5,3\n"
                   "day1/rec-2.wav,SM7B,d1,speech,0,1.5\n")
    plan = plan_ingest(str(man))
    assert plan.layout.kind == "manifest" and plan.mics == {1: "KM 184", 2: "SM7B"}
    assert plan.segments["d1"] == ((0.0, 1.5, "speech"), (1.5, 3.0, "music"))
    quiet_ingest(man, tmp_path / "a.zarr", client)
    st = AudioStore.open(str(tmp_path / "a.zarr"))
    np.testing.assert_array_equal(st.read("d1-mic1"), data[("day1", 1)])
    # SRC folder + --manifest: paths relative to SRC
    assert len(plan_ingest(str(tmp_path / "audio"), IngestSettings(manifest=str(man))).sources) == 2


def test_tree_layout_with_pattern(tmp_path):
    root = tmp_path / "tree"
    for sess in ("monday", "tuesday"):
        (root / "takes" / sess).mkdir(parents=True)
        for mic in ("left", "right"):
            sf.write(root / "takes" / sess / f"{mic}_take.flac", noise(SR), SR)
    plan = plan_ingest(str(root), IngestSettings(layout="tree",
                                                 pattern=r"takes/(?P<session>\w+)/(?P<mic>\w+)_take"))
    assert sorted((s.recording.session, s.recording.mic, s.recording.label) for s in plan.sources) == [
        ("monday", "left", 1), ("monday", "right", 2), ("tuesday", "left", 1), ("tuesday", "right", 2)]
    with pytest.raises(ConfigError, match="needs a named group"):
        plan_ingest(str(root), IngestSettings(layout="tree", pattern=r"(\w+)"))


def test_spaces_dots_and_non_ascii_paths(tmp_path, client):
    root = tmp_path / "Aufnahmen v1.2 (Studio ü)"
    data = kaggle(root, sessions=("Tag 1 – Montag", "day.2"), prefix="mé. take 3.final")
    quiet_ingest(root, tmp_path / "a b.zarr", client)
    st = AudioStore.open(str(tmp_path / "a b.zarr"))
    assert sorted(r.session for r in st.recordings()) == ["Tag 1 – Montag"] * 2 + ["day.2"] * 2
    rec = next(r for r in st.recordings() if r.session == "Tag 1 – Montag" and r.label == 2)
    assert "mé. take 3.final-2.wav" in rec.source_path
    np.testing.assert_array_equal(st.read(rec.id), data[("Tag 1 – Montag", 2)])


# -- bad input: one line naming the file and the problem --------------------------------------------
def _bad_corpus(root, case):
    kaggle(root, labels=(1, 2), segments=[(0, 1, "speech"), (1, 2.5, "music")])
    d = root / "day1"
    wav = d / "rec-2.wav"
    if case == "truncated":
        b = wav.read_bytes()
        wav.write_bytes(b[: len(b) // 2])
        return "rec-2.wav: truncated: header promises"
    if case == "not-audio":
        wav.write_text("this is a text file, not audio\n" * 20)
        return "rec-2.wav: not a readable audio file"
    if case == "empty":
        wav.write_bytes(b"")
        return r"rec-2.wav: empty file \(0 bytes\)"
    if case == "header-only":
        wav.write_bytes(wav.read_bytes()[:44])
        return "rec-2.wav: .*(no audio samples|truncated)"
    if case == "corrupt-flac":
        x = noise(SR * 3)
        sf.write(d / "rec-3.flac", x, SR)
        b = (d / "rec-3.flac").read_bytes()
        (d / "rec-3.flac").write_bytes(b[: len(b) * 2 // 3])
        return "rec-3.flac: "
    if case == "duplicate-label":
        sf.write(d / "other-2.wav", noise(SR * 3), SR)
        return "duplicate microphone label 2 in session 'day1'"
    if case == "segment-outside":
        (d / "segments.csv").write_text("start_s,end_s,sound_type\n0,1,speech\n2,9,music\n")
        return r"segments.csv: segment 2-9 s \(music\) ends after the recording \(3.000 s"
    if case == "segment-overlap":
        (d / "segments.csv").write_text("start_s,end_s,sound_type\n0,2,speech\n1.5,2.5,music\n")
        return r"segments.csv: segments overlap: line 2 \(0-2 s\) and line 3 \(1.5-2.5 s\)"
    if case == "segment-bad-number":
        (d / "segments.csv").write_text("start_s,end_s,sound_type\n0,two,speech\n")
        return r"segments.csv: line 2: start_s/end_s"
    if case == "unlabelled-name":
        sf.write(d / "notes.wav", noise(SR), SR)
        return r"notes.wav: file name has no microphone label"
    if case == "duplicate-mics-csv":
        (root / "mics.csv").write_text("label,name\n1,A\n1,B\n")
        return r"mics.csv: line 3: duplicate label 1"
    raise AssertionError(case)


BAD = ["truncated", "not-audio", "empty", "header-only", "corrupt-flac", "duplicate-label", "segment-outside",
       "segment-overlap", "segment-bad-number", "unlabelled-name", "duplicate-mics-csv"]


@pytest.mark.faults
@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_naming_the_file(tmp_path, case):
    expected = _bad_corpus(tmp_path / "src", case)
    with pytest.raises(InputError, match=expected) as err:
        plan_ingest(str(tmp_path / "src"))
    assert "\n" not in str(err.value)


@pytest.mark.faults
def test_unknown_layout(tmp_path):
    (tmp_path / "flat").mkdir()
    sf.write(tmp_path / "flat" / "a.wav", noise(SR), SR)
    with pytest.raises(InputError, match=r"flat: unknown layout: .*--manifest CSV or --layout tree"):
        plan_ingest(str(tmp_path / "flat"))
    with pytest.raises(InputError, match="no such file or folder"):
        plan_ingest(str(tmp_path / "missing"))


def test_several_problems_are_listed_together(tmp_path):
    root = tmp_path / "src"
    kaggle(root, labels=(1, 2, 3))
    (root / "day1" / "rec-1.wav").write_bytes(b"")
    (root / "day1" / "rec-3.wav").write_text("nope" * 100)
    with pytest.raises(InputError) as err:
        plan_ingest(str(root))
    lines = str(err.value).splitlines()
    assert lines[0] == "2 problems in the input (nothing was written):"
    assert "rec-1.wav: empty file" in lines[1] and "rec-3.wav: not a readable audio file" in lines[2]


def test_all_zero_file_warns(tmp_path, client):
    root = tmp_path / "src"
    kaggle(root)
    sf.write(root / "day1" / "rec-2.wav", np.zeros(SR * 3, np.int16), SR)
    report, msgs = quiet_ingest(root, tmp_path / "a.zarr", client)
    assert len(msgs) == 1 and "rec-2.wav: all samples are zero" in msgs[0]
    assert AudioStore.open(str(tmp_path / "a.zarr")).complete


@pytest.mark.faults
@pytest.mark.parametrize("align", ["shortest", "keep"])
def test_different_lengths_reported_and_aligned(tmp_path, client, align):
    root = tmp_path / "src"
    data = kaggle(root)
    short = data[("day1", 2)][: SR * 2]
    sf.write(root / "day1" / "rec-2.wav", short, SR)
    report, msgs = quiet_ingest(root, tmp_path / "a.zarr", client, IngestSettings(align=align))
    assert len(msgs) == 1 and "session 'day1': files differ in length" in msgs[0] and "rec-2.wav 2.000 s" in msgs[0]
    st = AudioStore.open(str(tmp_path / "a.zarr"))
    lengths = {r.label: r.n_samples for r in st.recordings()}
    assert lengths == ({1: SR * 2, 2: SR * 2} if align == "shortest" else {1: SR * 3, 2: SR * 2})
    np.testing.assert_array_equal(st.read("day1-mic1"), data[("day1", 1)][: lengths[1]])


@pytest.mark.faults
def test_bad_settings():
    with pytest.raises(ConfigError, match="--align"):
        IngestSettings(align="longest")
    with pytest.raises(ConfigError, match="--resample"):
        IngestSettings(resample=5)
    with pytest.raises(ConfigError, match="--channel"):
        IngestSettings(channel=-1)


# -- command line -------------------------------------------------------------------------------------
def micfp(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.faults
def test_cli_bad_file_is_one_line_and_writes_nothing(tmp_path):
    _bad_corpus(tmp_path / "src", "truncated")
    p = micfp("ingest", str(tmp_path / "src"), str(tmp_path / "a.zarr"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "rec-2.wav: truncated" in p.stderr
    assert not (tmp_path / "a.zarr").exists()  # checked before a cluster or a store exists


def test_cli_ingest_and_info(tmp_path):
    kaggle(tmp_path / "src", segments=[(0, 1, "speech"), (1, 2.5, "music")])
    p = micfp("ingest", str(tmp_path / "src"), str(tmp_path / "a.zarr"), "--workers", "1")
    assert p.returncode == 0, p.stderr
    assert "ingested 2 recordings" in p.stdout and "dashboard" in p.stderr
    p = micfp("info", str(tmp_path / "a.zarr"))
    assert p.returncode == 0 and "complete" in p.stdout and "music, speech" in p.stdout
    assert zarr.open_group(str(tmp_path / "a.zarr"), mode="r").attrs["micfp"]["complete"] is True


@pytest.mark.faults
def test_sessions_that_clash_as_ids(tmp_path):
    # One folder on a case-insensitive file system (macOS, Windows): refused, not merged.
    kaggle(tmp_path / "src", sessions=("Day1", "day1"))
    with pytest.raises(InputError, match=r"recording id 'day1-mic1' clashes .*differ only in letter case"):
        plan_ingest(str(tmp_path / "src"))


def test_kaggle_ignores_stray_files_and_reads_flac(tmp_path):
    root = tmp_path / "src"
    kaggle(root)
    (root / "day1" / "README.txt").write_text("notes")
    (root / "notes").mkdir()  # a folder without audio is not a session
    x = noise(SR * 3, seed=11)
    sf.write(root / "day1" / "rec-3.flac", x, SR)
    plan = plan_ingest(str(root))
    assert sorted(s.recording.id for s in plan.sources) == ["day1-mic1", "day1-mic2", "day1-mic3"]
    assert plan.mics[3] == "mic 3" and plan.mics[1] == "Mic 1"


@pytest.mark.parametrize("subtype, channels", [("PCM_16", 2), ("PCM_24", 1), ("FLOAT", 3)])
def test_read_range_drops_only_frames_already_read(tmp_path, monkeypatch, subtype, channels):
    import pipeline.io.audio as aio

    path = str(tmp_path / "a.wav")
    sf.write(path, noise(SR * 25, channels=channels) / 2**15, SR, subtype=subtype)
    info = sf.info(path)
    frame_bytes = {"PCM_16": 2, "PCM_24": 3, "FLOAT": 4}[subtype] * channels
    header = os.path.getsize(path) - info.frames * frame_bytes
    calls = []
    real = os.posix_fadvise
    monkeypatch.setattr(aio.os, "posix_fadvise", lambda fd, off, n, advice: (calls.append((off, n, advice)),
                                                                              real(fd, off, n, advice))[1])
    start, stop = 123_457, SR * 25 - 1_000
    dtype = "int32" if subtype == "PCM_24" else "float32" if subtype == "FLOAT" else "int16"
    got = aio.read_range(path, start, stop, None, dtype, drop_cache=True)
    assert np.array_equal(got, aio.read_range(path, start, stop, None, dtype))
    assert len(calls) == -(-(stop - start) // aio.READ_BLOCK)
    assert all(advice == os.POSIX_FADV_DONTNEED for *_, advice in calls)
    # consecutive calls tile the frames' bytes, and none reaches past the last frame read so far
    assert calls[0][0] == start * frame_bytes
    for (a, n, _), (b, _, _) in zip(calls, calls[1:]):
        assert a + n == b
    read_to = start
    for a, n, _ in calls:
        read_to = min(stop, read_to + aio.READ_BLOCK)
        assert a + n <= header + read_to * frame_bytes


def test_compressed_sources_are_not_dropped(tmp_path, monkeypatch):
    import pipeline.io.audio as aio

    path = str(tmp_path / "a.flac")
    sf.write(path, noise(SR * 2) / 2**15, SR, subtype="PCM_16")
    monkeypatch.setattr(aio.os, "posix_fadvise", lambda *a: pytest.fail("fadvise on a compressed file"))
    assert aio.read_range(path, 0, SR * 2, None, "int16", drop_cache=True).shape == (SR * 2, 1)
