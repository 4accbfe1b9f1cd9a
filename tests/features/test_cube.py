"""The queries documented in docs/cube.md work on a real cube."""

import numpy as np
import pytest

pytestmark = pytest.mark.cluster


def test_documented_queries(tiny_cube):
    import pipeline

    cube = pipeline.open_cube(tiny_cube)
    km1 = cube.features.sel(clip=cube.mic == "Neumann KM 184 #1")
    assert km1.sizes["clip"] > 0 and set(km1.mic.values) == {"Neumann KM 184 #1"}
    day2 = cube.sel(clip=cube.session == "day2")
    assert set(day2.session.values) == {"day2"}
    speech = cube.sel(clip=cube.sound_type.isin(["speech1", "speech2"]))
    assert set(speech.sound_type.values) <= {"speech1", "speech2"}
    two_s = cube.where(cube.clip_seconds == 2, drop=True)
    assert set(two_s.clip_seconds.values) == {2.0}
    channel = cube.features.sel(feature=cube.feature_set == "channel")
    per_mic = channel.groupby("mic").mean()
    signature = per_mic - per_mic.mean("mic")
    assert signature.sizes["mic"] == 5
    np.testing.assert_allclose(signature.sum("mic").values, 0, atol=1e-3)
    assert cube.features.sel(feature="centroid_mean").sizes["clip"] == cube.sizes["clip"]
    df = two_s.features.sel(feature=two_s.feature_set == "thesis").to_pandas()
    assert df.shape[1] == 22
    table = two_s.drop_vars("features").reset_coords().drop_dims("feature").to_dataframe()
    assert {"mic", "session", "sound_type", "start_s"} <= set(table.columns)


def test_silence_split_clips_in_cube(tiny_cube):
    import pipeline

    cube = pipeline.open_cube(tiny_cube)
    sil = cube.sel(clip=cube.segmentation == "silence")
    assert sil.sizes["clip"] > 0
    assert (sil.clip_seconds == 0).all()
    assert ((sil.end_s - sil.start_s) >= 0.5).all()


def test_clips_stay_inside_their_segment(tiny_cube, tiny_store):
    import pipeline
    from pipeline.artifacts.store import AudioStore

    cube = pipeline.open_cube(tiny_cube)
    store = AudioStore.open(tiny_store)
    for session in set(cube.session.values):
        seg = store.segments(session)
        c = cube.sel(clip=cube.session == session)
        for st, a, b in zip(c.sound_type.values, c.start_s.values, c.end_s.values):
            rows = seg[(seg.sound_type == st) & (seg.start_s <= a + 1e-6) & (seg.end_s >= b - 1e-6)]
            assert len(rows) >= 1, (session, st, a, b)


def test_extra_cube_metadata_is_written_before_the_swap(client, tiny_store, tmp_path):
    """``compute_cube(attrs=...)``: the cube is complete with them (never stamped afterwards), and
    they cannot override what makes it a cube."""
    from pipeline.artifacts.cube import check_cube
    from pipeline.artifacts.kinds import CUBE_KIND
    from pipeline.features import FeatureConfig, compute_cube

    cube = compute_cube(tiny_store, str(tmp_path / "c.zarr"), FeatureConfig(feature_sets=("channel",),
                        clip_seconds=(2.0,)), client, quiet=True, attrs={"store_fingerprint": "abc", "kind": "x"})
    meta = check_cube(str(tmp_path / "c.zarr")).attrs["micfp"]
    assert meta["store_fingerprint"] == "abc" and meta["kind"] == CUBE_KIND and meta["complete"] is True
    assert cube.attrs["micfp"]["store_fingerprint"] == "abc"
