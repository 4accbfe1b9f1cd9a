"""A session without the sound-type table the other sessions have is named in one warning line."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipeline.io.ingest import plan_ingest
from pipeline.io.layouts import read_layout

SR = 8000
ROWS = "start_s,end_s,sound_type\n0,1,speech\n1,2,music\n"


def corpus(root, with_table=("day1",), sessions=("day1", "day2")):
    for s in sessions:
        (root / s).mkdir(parents=True)
        for lab in (1, 2):
            sf.write(root / s / f"rec-{lab}.wav", np.zeros(SR * 2, np.int16), SR, subtype="PCM_16")
        if s in with_table:
            (root / s / "segments.csv").write_text(ROWS)
    return root


@pytest.mark.faults
def test_kaggle_session_without_segments_csv_is_named(tmp_path):
    src = corpus(tmp_path / "src", sessions=("day1", "day2", "day3"), with_table=("day1", "day3"))
    warnings = plan_ingest(str(src)).warnings
    missing = [w for w in warnings if "segments.csv" in w]
    assert len(missing) == 1 and "\n" not in missing[0]
    assert missing[0].startswith(f"{src / 'day2'}: no segments.csv, unlike 2 other session(s)")
    assert "unlabelled" in missing[0]


@pytest.mark.faults
def test_tree_and_manifest_sessions_without_segments_are_named(tmp_path):
    src = corpus(tmp_path / "tree")
    tree = read_layout(str(src), "tree")
    assert [w.split(":")[0] for w in tree.warnings] == [str(src / "day2")]
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,mic,session,sound_type,start_s,end_s\n"
                        f"{src}/day1/rec-1.wav,1,day1,speech,0,1\n{src}/day1/rec-2.wav,2,day1,speech,0,1\n"
                        f"{src}/day2/rec-1.wav,1,day2,,,\n{src}/day2/rec-2.wav,2,day2,,,\n")
    layout = read_layout(str(manifest), "manifest")
    assert len(layout.warnings) == 1 and f"{manifest} (session day2): no start_s/end_s rows" in layout.warnings[0]


def test_no_warning_when_every_or_no_session_has_segments(tmp_path):
    assert not plan_ingest(str(corpus(tmp_path / "all", with_table=("day1", "day2")))).warnings
    assert not plan_ingest(str(corpus(tmp_path / "none", with_table=()))).warnings
