"""benchmarks/corpus/build_sources.py: disjoint, deterministic sources folders from installed packages."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "corpus"))
import build_sources as bs  # noqa: E402

installed = pytest.mark.skipif(not any((bs.FILLETS / "sound").glob("*/cs/*.ogg")) or not bs.WESNOTH_MUSIC.is_dir(),
                               reason="corpus packages not installed (benchmarks/corpus/install.sh)")


@installed
def test_splits_share_no_file_speaker_language_or_track():
    dev, held = bs.plan_split("dev"), bs.plan_split("heldout")
    assert set(dev) == set(held) == {"speech1", "speech2", "music"}
    assert all(dev[t] and held[t] for t in dev)
    every = lambda plan: {p for files in plan.values() for p in files}  # noqa: E731
    assert not every(dev) & every(held)
    assert {p.parent.name for t in ("speech1", "speech2") for p in dev[t]} == {"cs"}
    assert "cs" not in {p.parent.name for t in ("speech1", "speech2") for p in held[t]}
    assert not {p.name for p in dev["music"]} & {p.name for p in held["music"]}
    assert not {p.stem.split("-")[1] for p in dev["speech1"]} & {p.stem.split("-")[1] for p in dev["speech2"]}


@installed
def test_build_is_deterministic_and_playable(tmp_path):
    import soundfile as sf

    from pipeline.simulate import StudioPlan, render_source

    a = bs.build(tmp_path / "a", "dev", 0.15, 3)
    b = bs.build(tmp_path / "b", "dev", 0.15, 3)
    files = sorted(p.relative_to(a) for p in a.rglob("*.flac"))
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*.flac"))
    assert {f.parts[0] for f in files} == {"speech1", "speech2", "music"}
    for f in files:
        ya, fs = sf.read(a / f)
        assert fs == bs.RATE and ya.ndim == 1 and 0.5 < np.abs(ya).max() <= 0.91
        np.testing.assert_array_equal(ya, sf.read(b / f)[0])
    assert (a / "provenance.csv").read_text() == (b / "provenance.csv").read_text()
    assert bs.build(a, "dev", 0.15, 3) == a  # the same settings: reused
    # The simulator plays it: speech and music items come from the folder, not the synthesiser.
    plan = StudioPlan(minutes_per_session=(0.5,), seed=0, sources=str(a))
    seg = next(s for s in plan.segments("day1") if s[2] in ("speech1", "speech2", "music"))
    sr = plan.sample_rate
    assert np.any(render_source(plan, "day1", int(seg[0] * sr), int(seg[1] * sr)))


@pytest.mark.faults
def test_build_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not a corpus this script built"):
        bs.build(tmp_path / "mine", "dev", 0.1, 0)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_trim_cuts_leading_and_trailing_silence():
    y = np.concatenate([np.zeros(bs.RATE), np.ones(bs.RATE // 2) * 0.3, np.zeros(bs.RATE)])
    t = bs.trim(y)
    assert bs.RATE // 2 <= t.size <= bs.RATE // 2 + bs.RATE // 50 and np.all(t != 0)
    assert bs.trim(np.zeros(1000)).size == 0
