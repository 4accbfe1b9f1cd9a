"""``micfp identify``: features of a file, aggregation, known and unknown microphones, the CLI."""

import json

import numpy as np
import pytest
import soundfile as sf
import zarr

from pipeline.errors import InputError
from pipeline.features.frames import FrameSettings
from pipeline.features.signal import clip_features
from pipeline.identify.identify import UNKNOWN, aggregate, identify_file, identify_files


def test_aggregate_mean_log_and_vote():
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    g = np.exp(np.log(p).mean(axis=0))
    np.testing.assert_allclose(aggregate(p, "mean-log"), g / g.sum())
    np.testing.assert_allclose(aggregate(p, "vote"), [2 / 3, 1 / 3])
    with pytest.raises(InputError, match="unknown aggregation"):
        aggregate(p, "max")


def test_clip_features_match_the_cube(tiny_store, tiny_cube):
    """A file cut into clips gets the cube's features (frames align to within one hop)."""
    from pipeline.features import open_cube
    from pipeline.artifacts.store import AudioStore

    store = AudioStore.open(tiny_store)
    rec = store.recordings()[0]
    seg = store.segments(rec.session, rec.n_samples).iloc[0]
    sr = store.sample_rate
    a, b = int(round(seg.start_s * sr)), int(round(seg.end_s * sr))
    y = zarr.open_array(f"{tiny_store}/audio/{rec.id}", mode="r")[a:b]
    starts, X, names = clip_features(y, 1.0, "channel", FrameSettings())
    cube = open_cube(tiny_cube)
    sel = ((cube.recording == rec.id) & (cube.clip_seconds == 1.0) & (cube.segmentation == "fixed")
           & (cube.start_s >= seg.start_s - 1e-6) & (cube.start_s < seg.end_s)).values
    ref = cube.features.isel(clip=np.flatnonzero(sel), feature=(cube.feature_set == "channel").values)
    ref = ref.sortby("start_s")
    assert list(ref.feature.values) == names and X.shape == ref.shape
    np.testing.assert_allclose(starts, ref.start_s.values - seg.start_s, atol=1e-6)
    assert np.median(np.abs(X - ref.values)) < 0.1  # dB


def unknown_mic(y: np.ndarray, sr: int) -> np.ndarray:
    """A microphone unlike any trained one: nothing below 1 kHz (a tiny capsule)."""
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, 1000, "highpass", fs=sr, output="sos"), y)


@pytest.fixture(scope="module")
def four_mic_model(tiny_cube, client, tmp_path_factory):
    from pipeline.artifacts.model import save_model
    from pipeline.identify.model import TrainSettings, train_model

    settings = TrainSettings(clip_seconds=1.0, classifier="micfp_lr", mics=("1", "2", "3", "4"))
    model = train_model(tiny_cube, settings, client)
    return save_model(model, tmp_path_factory.mktemp("m4") / "m4.skops")


@pytest.fixture(scope="module")
def wavs(tiny_store, tmp_path_factory):
    d = tmp_path_factory.mktemp("wavs")
    out = {}
    for label in (1, 2, 5):
        y = zarr.open_array(f"{tiny_store}/audio/day2-mic{label}", mode="r")[:] / 32768.0
        sf.write(d / f"mic{label}.wav", y.astype(np.float32), 48000, subtype="PCM_16")
        out[label] = d / f"mic{label}.wav"
    y = zarr.open_array(f"{tiny_store}/audio/day2-mic1", mode="r")[:] / 32768.0
    sf.write(d / "eq.wav", unknown_mic(y, 48000).astype(np.float32), 48000, subtype="PCM_16")
    out["eq"] = d / "eq.wav"
    import soxr

    sf.write(d / "mic2-44k.flac", soxr.resample(zarr.open_array(f"{tiny_store}/audio/day2-mic2", mode="r")[:]
                                                / 32768.0, 48000, 44100).astype(np.float32), 44100)
    out["44k"] = d / "mic2-44k.flac"
    sf.write(d / "short.wav", np.zeros(1000, np.float32), 48000)
    out["short"] = d / "short.wav"
    return out


def test_known_microphone_is_named(four_mic_model, wavs):
    from pipeline.artifacts.model import load_model

    model = load_model(four_mic_model)
    r = identify_file(wavs[2], model, top_k=2)
    assert r["known"] and r["mic"] == "t.bone MB 7 Beta"
    assert len(r["top_k"]) == 2 and r["top_k"][0]["mic"] == r["mic"]
    assert sum(r["probabilities"].values()) == pytest.approx(1.0)
    assert sum(r["votes"].values()) == r["n_clips"] > 10
    # another sample rate is resampled to the model's
    r44 = identify_file(wavs["44k"], model)
    assert r44["sample_rate"] == 44100 and r44["mic"] == "t.bone MB 7 Beta"


def test_untrained_microphone_is_unknown(four_mic_model, wavs):
    from pipeline.artifacts.model import load_model

    r = identify_file(wavs["eq"], load_model(four_mic_model))
    assert not r["known"] and r["mic"] == UNKNOWN and r["label"] is None
    assert r["distance"] > r["threshold"]
    from pipeline.identify.identify import format_results

    lines = format_results([r]).splitlines()
    assert len(lines) == 2 and lines[1].startswith("unknown microphone: decided by the open-set distance")
    assert f"keeps {100 * r['operating_point']['known_kept']:.1f} %" in lines[1]


@pytest.mark.faults
def test_bad_files_are_reported_one_by_one(four_mic_model, wavs, tmp_path):
    res = identify_files([wavs[1], wavs["short"]], four_mic_model)
    assert "error" not in res[0]
    assert "shorter than the model's 1 s clips" in res[1]["error"]
    with pytest.raises(InputError, match="nope.wav: no such file"):
        identify_files([tmp_path / "nope.wav"], four_mic_model)


def test_cli_train_and_identify_json(tiny_cube, client, tmp_path, wavs, capsys):
    from pipeline.cli import main

    model = tmp_path / "m.skops"
    addr = client.scheduler.address
    assert main(["train", tiny_cube, str(model), "--clip-seconds", "1", "--sessions", "day1",
                 "--classifier", "micfp_lr", "--scheduler", addr]) == 0
    out = capsys.readouterr().out
    assert "held-out sessions day2 (ParallelPostFit" in out and "unknown threshold" in out
    assert main(["identify", str(wavs[1]), str(wavs[5]), "--model", str(model), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in res] == [str(wavs[1]), str(wavs[5])]
    assert {"mic", "probability", "top_k", "votes", "distance", "threshold"} <= set(res[0])
    # the unknown decision's operating point, from the model: what its threshold keeps, and what the held-out
    # session measured of it
    op = res[0]["operating_point"]
    assert op["accept_rate"] == 0.99 and 0 < op["known_kept"] <= 1 and op["pseudo_files"] > 0
    assert 0 <= op["heldout_known_kept"] <= 1 and op["heldout_unknown_rejected"] is None  # every mic was trained
    # provenance: the input's and the model file's SHA-256, the micfp version that trained the model
    import hashlib

    assert res[0]["sha256"] == hashlib.sha256(wavs[1].read_bytes()).hexdigest()
    assert res[0]["model"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert res[0]["model"]["micfp"] and res[0]["model"]["path"] == str(model)
    # per-file tasks on the cluster give the same answers
    assert main(["identify", str(wavs[1]), "--model", str(model), "--json", "--scheduler", addr]) == 0
    assert json.loads(capsys.readouterr().out)[0]["mic"] == res[0]["mic"]
    assert main(["identify", str(wavs[1]), "--model", str(tmp_path / "missing.skops")]) == 2
    assert "no model file here" in capsys.readouterr().err


@pytest.mark.faults
@pytest.mark.parametrize("as_json", [False, True])
def test_cli_file_errors_on_stderr_one_line_each(four_mic_model, wavs, tmp_path, capsys, as_json):
    from pipeline.cli import main

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    files = [str(wavs[1]), str(wavs["short"]), str(broken)]
    assert main(["identify", *files, "--model", str(four_mic_model), *(["--json"] if as_json else [])]) == 2
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert len(errors) == 2
    for line, path in zip(errors, files[1:]):
        assert line.startswith(f"micfp: error: {path}: ") and line.count(path) == 1, line
    assert "shorter than the model's 1 s clips" in errors[0]
    if as_json:  # stdout stays one JSON document, errors included
        res = json.loads(captured.out)
        assert [r["file"] for r in res] == files and "error" in res[2] and "mic" in res[0]
    else:  # stdout holds the answers only
        assert captured.out.splitlines()[0].startswith(f"{files[0]}: ") and files[1] not in captured.out


def test_whole_file_probability_is_calibrated(four_mic_model, wavs):
    """A file of many agreeing clips is named with a calibrated, near-certain probability, where the
    mean log-probability stays as unsure as one clip; the calibration was learned at train time."""
    from pipeline.artifacts.model import load_model

    model = load_model(four_mic_model)
    cal = model.meta["calibration"]["file"]
    assert cal["alpha"] > 0 and 0 <= cal["beta"] <= 1 and cal["n_files"] > 0
    assert cal["log_loss"] <= cal["log_loss_mean_log"] + 1e-9
    r = identify_file(wavs[2], model)
    m = identify_file(wavs[2], model, how="mean-log")
    assert r["aggregation"] == "calibrated" and r["mic"] == m["mic"] == "t.bone MB 7 Beta"
    assert r["probability"] > 0.9
    # the same microphone's file cut short: less evidence, a lower probability
    from pipeline.identify.identify import identify_signal

    y, _ = sf.read(wavs[2], dtype="float32")
    short = identify_signal(y[: 2 * 48000], model)
    assert short["n_clips"] == 2 and short["probability"] <= r["probability"]
