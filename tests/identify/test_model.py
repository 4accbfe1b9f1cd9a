"""Training, calibration, saving and (refused) loading of models."""

import json

import numpy as np
import pytest
import skops.io as sio

from pipeline.errors import ConfigError, InputError
from pipeline.artifacts.kinds import MODEL_KIND
from pipeline.artifacts.model import MODEL_VERSION, TRUSTED_TYPES, _allowed, file_types, load_model, save_model
from pipeline.evaluation.auto import fit_classifier
from pipeline.evaluation.models import AUTO, CLASSIFIERS, fit_model
from pipeline.identify.model import TrainSettings, fit_openset, openset_distance, train_model


def blobs(n_per=30, k=4, d=8, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 3
    y = np.repeat(np.arange(1, k + 1), n_per)
    return centers[y - 1] + shift + rng.normal(size=(y.size, d)), y


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_saves_with_trusted_types_only(tmp_path, name):
    X, y = blobs()
    est = fit_classifier(name, X, y, np.arange(y.size) // 10, 4, column_sets=("channel",) * X.shape[1])
    if name == AUTO:  # micfp train saves the pipeline micfp_auto chose, not the chooser
        est = est.model_
    path = tmp_path / "m.skops"
    sio.dump({"kind": MODEL_KIND, "estimator": est}, path)
    refused = {t for t, loader in file_types(path) if not _allowed(t, loader)}
    assert not refused and set(sio.get_untrusted_types(file=path)) <= set(TRUSTED_TYPES)


def test_openset_distance_separates_a_new_class():
    X, y = blobs(k=5)
    known = y < 5
    est = fit_model("micfp_lr", X[known], y[known], np.arange(known.sum()) // 10, 4)
    os_ = fit_openset(est, X[known], y[known])
    d_known = openset_distance(est, os_, X[known], y[known])
    d_new = openset_distance(est, os_, X[~known], est.predict(X[~known]))
    assert np.median(d_known) < 2 < np.median(d_new)


def write_payload(path, estimator, openset, meta):
    sio.dump({"kind": MODEL_KIND, "version": MODEL_VERSION, "estimator": estimator, "openset": openset,
              "meta_json": json.dumps(meta)}, path)


@pytest.fixture(scope="module")
def trained(tiny_cube, client, tmp_path_factory):
    settings = TrainSettings(feature_set="channel", clip_seconds=1.0, classifier="micfp_lr", sessions=("day1",))
    model = train_model(tiny_cube, settings, client)
    path = save_model(model, tmp_path_factory.mktemp("model") / "model.skops")
    return model, path


def test_train_save_load_roundtrip(trained, tiny_cube):
    from pipeline.evaluation.cell import Cell, select
    from pipeline.features import open_cube

    model, path = trained
    meta = model.meta
    assert meta["feature_set"] == "channel" and meta["clip_seconds"] == 1.0
    assert meta["mics"]["3"] == "Neumann KM 184 #1" and meta["versions"]["scikit-learn"]
    assert meta["calibration"]["method"].startswith("5-fold grouped") or "fold" in meta["calibration"]["method"]
    assert meta["calibration"]["file_accept_rate"] >= 0.9
    # day2 was held out and predicted lazily through ParallelPostFit
    assert meta["heldout"]["sessions"] == ["day2"] and meta["heldout"]["n_clips"] > 0
    loaded = load_model(path)
    X, _ = select(open_cube(tiny_cube), Cell(1.0, "all", "channel", "micfp_lr", "session"))
    np.testing.assert_allclose(loaded.estimator.predict_proba(X), model.estimator.predict_proba(X))
    assert loaded.openset["tau"] == pytest.approx(model.openset["tau"])


@pytest.mark.parametrize("old_module", ["pipeline.evaluate", "pipeline.evaluation.evaluate"])
def test_a_model_saved_before_the_package_was_grouped_by_stage_loads(tmp_path, trained, monkeypatch, old_module):
    """Models name micfp's functions by module path: one saved as ``pipeline.evaluate._finite`` (or
    ``pipeline.evaluation.evaluate._finite``, before that module was split) still loads."""
    import sys
    import zipfile

    model, path = trained
    old = tmp_path / "old-layout.skops"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "schema.json":
                assert b"pipeline.evaluation.models" in data
                data = data.replace(b"pipeline.evaluation.models", old_module.encode())
            dst.writestr(item, data)
    assert f"{old_module}._finite" in sio.get_untrusted_types(file=old)
    monkeypatch.delitem(sys.modules, old_module, raising=False)
    loaded = load_model(old)
    X = np.zeros((3, len(model.meta["features"])))
    np.testing.assert_allclose(loaded.estimator.predict_proba(X), model.estimator.predict_proba(X))


@pytest.mark.faults
def test_untrusted_type_is_refused(tmp_path, trained):
    from sklearn.ensemble import AdaBoostClassifier

    model, _ = trained
    path = tmp_path / "evil.skops"
    write_payload(path, AdaBoostClassifier(), model.openset, model.meta)
    with pytest.raises(InputError, match=r"evil.skops: untrusted type\(s\) .*AdaBoostClassifier.* refused"):
        load_model(path)


@pytest.mark.faults
def test_mismatched_versions_and_features_are_refused(tmp_path, trained):
    model, _ = trained
    old = dict(model.meta, versions={**model.meta["versions"], "scikit-learn": "0.24.2"})
    write_payload(tmp_path / "old.skops", model.estimator, model.openset, old)
    with pytest.raises(InputError, match="old.skops: trained with scikit-learn 0.24.2"):
        load_model(tmp_path / "old.skops")
    other = dict(model.meta, features=model.meta["features"][:-1] + ["bogus"])
    write_payload(tmp_path / "feat.skops", model.estimator, model.openset, other)
    with pytest.raises(InputError, match="feat.skops: the model's .* features differ"):
        load_model(tmp_path / "feat.skops")


@pytest.mark.faults
def test_not_a_model_is_refused(tmp_path):
    (tmp_path / "junk.skops").write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="junk.skops: not a skops model file"):
        load_model(tmp_path / "junk.skops")
    sio.dump({"kind": "something else"}, tmp_path / "other.skops")
    with pytest.raises(InputError, match="other.skops: not a micfp model file"):
        load_model(tmp_path / "other.skops")
    with pytest.raises(InputError, match="no model file here"):
        load_model(tmp_path / "missing.skops")


@pytest.mark.faults
def test_train_settings_errors(tiny_cube):
    with pytest.raises(ConfigError, match="unknown classifier"):
        TrainSettings(classifier="xgboost")
    with pytest.raises(ConfigError, match="accept-rate"):
        TrainSettings(accept_rate=1.5)
    with pytest.raises(ConfigError, match="no microphone 'AKG'"):
        train_model(tiny_cube, TrainSettings(clip_seconds=1.0, mics=("AKG",)))
    with pytest.raises(ConfigError, match="clip length 3"):
        train_model(tiny_cube, TrainSettings(clip_seconds=3.0))


@pytest.mark.faults
def test_compression_bomb_is_refused_unread(tmp_path, trained, monkeypatch):
    import shutil
    import zipfile

    _, good = trained
    path = tmp_path / "bomb.skops"
    shutil.copy(good, path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:  # ~600 MiB of zeros, < 1 MiB packed
        with z.open("extra.npy", "w", force_zip64=True) as f:
            chunk = bytes(2**24)
            for _ in range(38):
                f.write(chunk)
    assert path.stat().st_size < 4 * 2**20

    def unpacked(*a, **k):
        raise AssertionError("the archive was opened by skops")

    monkeypatch.setattr(sio, "get_untrusted_types", unpacked)
    monkeypatch.setattr(sio, "load", unpacked)
    with pytest.raises(InputError, match=r"bomb.skops: unpacks to 60\d MiB .*extra.npy.*refused"):
        load_model(path)


@pytest.mark.faults
@pytest.mark.parametrize("bad", ["means", "precision", "classes", "tau", "missing"])
def test_openset_shapes_are_checked(tmp_path, trained, bad):
    model, _ = trained
    openset = {k: np.asarray(v) for k, v in model.openset.items()}
    k, d = openset["means"].shape
    if bad == "means":
        openset["means"] = np.zeros((k, d + 1))
    elif bad == "precision":
        openset["precision"] = np.eye(d - 1)
    elif bad == "classes":
        openset["classes"] = openset["classes"][:-1]
    elif bad == "tau":
        openset["tau"] = float("nan")
    else:
        del openset["precision"]
    write_payload(tmp_path / "m.skops", model.estimator, openset, model.meta)
    with pytest.raises(InputError, match=r"m.skops: the model's open-set"):
        load_model(tmp_path / "m.skops")


def test_info_describes_a_model_file(trained):
    """`micfp info MODEL.skops` opens the model with load_model (every check) and describes it."""
    import subprocess
    import sys

    model, path = trained
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", "info", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"model file {path}" in p.stdout and "micfp_lr on channel features" in p.stdout
    assert "Neumann KM 184 #1" in p.stdout and "unknown threshold" in p.stdout


@pytest.mark.faults
def test_info_refuses_a_model_file_it_would_not_load(tmp_path, trained):
    """`micfp info` on an untrusted model: the loader's one line, nothing unpickled."""
    import subprocess
    import sys

    from sklearn.ensemble import AdaBoostClassifier

    model, _ = trained
    write_payload(tmp_path / "evil.skops", AdaBoostClassifier(), model.openset, model.meta)
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", "info", str(tmp_path / "evil.skops")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "evil.skops: untrusted type(s)" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.faults
def test_a_model_replaced_while_it_loads_loads_what_was_checked(tmp_path, trained, monkeypatch):
    """The file is read once: a model saved over it between the type check and the load cannot slip in
    types that were never checked."""
    import pipeline.artifacts.model as model_file
    from sklearn.ensemble import AdaBoostClassifier

    model, path = trained
    target = tmp_path / "m.skops"
    target.write_bytes(path.read_bytes())
    checked = model_file.file_types

    def replaced_after_check(source):
        out = checked(source)
        write_payload(target, AdaBoostClassifier(), model.openset, model.meta)  # a concurrent rewrite
        return out

    monkeypatch.setattr(model_file, "file_types", replaced_after_check)
    loaded = load_model(target)
    assert type(loaded.estimator) is type(model.estimator)


@pytest.mark.faults
def test_a_model_is_not_saved_while_another_run_saves_or_reads_it(tmp_path, trained):
    """Two saves to one path (or a save while `info` reads it) exclude each other; a dead save's
    temporary file is removed by the next."""
    import subprocess
    import sys

    from pipeline.artifacts.locks import LockedError

    model, path = trained
    out = tmp_path / "m.skops"
    code = (f"import time; from pipeline.artifacts.locks import shared\n"
            f"with shared({str(out)!r}):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match="m.skops"):
            save_model(model, out)
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()
    stale = tmp_path / f"m.skops.tmp-{'0' * 32}"
    stale.write_bytes(b"half a model")
    save_model(model, out)
    assert load_model(out).mics == model.mics and not stale.exists()


def test_a_micfp_svc_model_saves_loads_and_predicts(tmp_path, trained, tiny_cube):
    """micfp_svc is CalibratedClassifierCV(SVC): its calibration types are trusted."""
    from pipeline.evaluation.cell import Cell, select
    from pipeline.features import open_cube
    from pipeline.evaluation.protocols import time_groups

    model, _ = trained
    X, meta = select(open_cube(tiny_cube), Cell(1.0, "all", "channel", "micfp_svc", "session"))
    y = np.asarray(meta["label"])
    est = fit_model("micfp_svc", X, y, time_groups(meta), len(model.mics))
    write_payload(tmp_path / "svc.skops", est, model.openset, model.meta)
    loaded = load_model(tmp_path / "svc.skops")
    np.testing.assert_allclose(loaded.estimator.predict_proba(X[:5]), est.predict_proba(X[:5]))


def test_a_micfp_svc_saved_with_probability_true_still_loads(tmp_path, trained, tiny_cube):
    """Models trained before micfp_svc became CalibratedClassifierCV(SVC) hold ``SVC(probability=True)``:
    their types stay trusted and they still predict probabilities."""
    from sklearn.base import clone
    from sklearn.svm import SVC

    from pipeline.evaluation.cell import Cell, select
    from pipeline.features import open_cube

    model, _ = trained
    X, meta = select(open_cube(tiny_cube), Cell(1.0, "all", "channel", "micfp_lr", "session"))
    y = np.asarray(meta["label"])
    old = clone(model.estimator).set_params(clf=SVC(C=10.0, probability=True, random_state=42))
    with pytest.warns(FutureWarning, match="probability"):  # how such a model was made
        old.fit(X, y)
    write_payload(tmp_path / "old-svc.skops", old, model.openset, model.meta)
    loaded = load_model(tmp_path / "old-svc.skops")
    np.testing.assert_allclose(loaded.estimator.predict_proba(X[:5]), old.predict_proba(X[:5]))


def test_train_defaults_to_micfp_auto_and_saves_its_choice(tiny_cube, client, tmp_path):
    """``micfp train`` without a classifier: micfp_auto picks among the single-file feature sets; the
    model file holds the winning pipeline and its features only, and identify computes the same."""
    from pipeline.features.sets import feature_layout

    settings = TrainSettings(clip_seconds=1.0, sessions=("day1",))
    assert settings.classifier == AUTO and settings.feature_set == "all"
    model = train_model(tiny_cube, settings, client)
    auto = model.meta["auto"]
    assert auto["classifier"] in ("micfp_lr", "micfp_et", "micfp_svc") and auto["cv_scores"]
    assert "session-relative" not in auto["feature_set"] and "thesis" not in auto["feature_set"]
    names, _ = feature_layout(model.meta["feature_set"], model.frame_settings())
    assert names == model.meta["features"] and model.estimator.n_features_in_ == len(names)
    loaded = load_model(save_model(model, tmp_path / "auto.skops"))
    assert loaded.meta["auto"] == auto
    from pipeline.artifacts.model import describe_model

    assert f"micfp_auto (chose {auto['classifier']}" in describe_model(loaded.meta)
