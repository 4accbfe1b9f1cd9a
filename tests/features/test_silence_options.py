"""``micfp features --silence-threshold-db/--min-silence-s``: the thesis's silence split, from the command line."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cli import main


def silence_clips(path):
    from pipeline.features import open_cube

    cube = open_cube(path)
    sel = (cube.segmentation == "silence").values
    return cube, set(zip(cube.recording.values[sel], np.round(cube.start_s.values[sel], 4),
                         np.round(cube.end_s.values[sel], 4)))


def test_custom_silence_settings_change_the_silence_clips(tiny_store, client, tmp_path, capsys):
    addr = client.scheduler.address
    common = ["--feature-set", "thesis", "--segmentation", "silence", "--scheduler", addr]
    assert main(["features", tiny_store, str(tmp_path / "default.zarr"), *common]) == 0
    assert main(["features", tiny_store, str(tmp_path / "custom.zarr"), *common,
                 "--silence-threshold-db", "-30", "--min-silence-s", "0.3"]) == 0
    capsys.readouterr()
    default, clips_default = silence_clips(tmp_path / "default.zarr")
    custom, clips_custom = silence_clips(tmp_path / "custom.zarr")
    assert clips_default and clips_custom and clips_default != clips_custom
    assert default.attrs["micfp"]["config"]["silence"]["threshold_db"] == -60.0
    silence = custom.attrs["micfp"]["config"]["silence"]
    assert (silence["threshold_db"], silence["min_silence_s"]) == (-30.0, 0.3)


@pytest.mark.faults
@pytest.mark.parametrize("options, message", [
    (["--segmentation", "silence", "--silence-threshold-db", "5"],
     "--silence-threshold-db 5: silence threshold_db must be below 0 dBFS (full scale); the thesis used -55 to -80"),
    (["--segmentation", "fixed,silence", "--silence-threshold-db", "nan"], "--silence-threshold-db nan:"),
    (["--segmentation", "silence", "--min-silence-s", "0"],
     "--min-silence-s 0: silence min_silence_s must be positive; the thesis used 1.1 to 1.4 s"),
    (["--min-silence-s", "1.2"], "--min-silence-s sets the silence split: add --segmentation silence"),
])
def test_bad_silence_settings_refused_before_compute(tiny_store, tmp_path, capsys, options, message):
    # A scheduler nobody listens on: reaching it (or reading the store) would give another error.
    cube = tmp_path / "cube.zarr"
    assert main(["features", tiny_store, str(cube), *options, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not cube.exists()


@pytest.mark.faults
@pytest.mark.parametrize("field, value", [("threshold_db", 0.0), ("threshold_db", float("inf")), ("min_silence_s", -1),
                                          ("min_clip_s", -0.5), ("max_clip_s", float("nan")), ("threshold_db", "-60")])
def test_silence_settings_check_their_values(field, value):
    from pipeline.features import SilenceSettings

    with pytest.raises(ValueError, match=f"silence {field} must"):
        SilenceSettings(**{field: value})
