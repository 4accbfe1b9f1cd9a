"""The model file (``micfp train``'s ``.skops``): the one place that writes, opens and checks it.

A saved model is a skops file (no code runs on load; only an explicit allow-list of the
scikit-learn types micfp produces is accepted, :data:`TRUSTED_TYPES`) holding the fitted
pipeline, the open-set statistics and the metadata ``micfp identify`` needs to compute the same
features: feature set and names, clip length, frame settings, microphone names, package
versions. :func:`load_model` refuses anything else with one line; :func:`describe_model` is what
``micfp train`` and ``micfp info`` print about one. Training lives in :mod:`pipeline.identify.model`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .kinds import MODEL_KIND, mics_from_attrs
from .model_checks import check_archive, check_openset

MODEL_VERSION = 1

#: Every type a micfp model file may contain; anything else is refused before loading. Kept in step
#: with :func:`evaluate.make_model` by ``tests/identify/test_model.py``.
TRUSTED_TYPES = (
    "pipeline.evaluation.models._finite",
    # the verifier (`micfp verify`): the score model and its calibration, fitted numpy arrays and numbers
    "pipeline.identify.verification.MicEmbedding",
    "pipeline.identify.verification.LLRCalibration",
    "pipeline.evaluation.evaluate._finite",  # models saved before evaluate.py was split
    "pipeline.evaluate._finite",  # models saved before the package was grouped by stage
    "numpy.random.mtrand.RandomState",
    # micfp_svc: the SVC inside Platt scaling (scikit-learn 1.9 deprecated SVC(probability=True))
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn.decomposition._pca.PCA",
    "sklearn.dummy.DummyClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.feature_selection._variance_threshold.VarianceThreshold",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.svm._classes.SVC",  # also micfp_svc models saved with SVC(probability=True): they still load
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._tree.Tree",
)


@dataclass
class TrainedModel:
    """A fitted pipeline with its open-set statistics and metadata (see :func:`save_model`)."""

    estimator: object
    openset: dict
    meta: dict = field(default_factory=dict)
    #: ``{"embedding": MicEmbedding, "calibration": [LLRCalibration], "segment_clips": [int]}`` of
    #: ``micfp verify`` (one calibration per segment length); None in models trained before it existed.
    verification: dict | None = None

    @property
    def mics(self) -> dict[int, str]:
        return mics_from_attrs(self.meta)

    @property
    def classes(self) -> np.ndarray:
        return np.asarray(self.estimator.classes_)

    def frame_settings(self):
        from ..features.frames import FrameSettings

        return FrameSettings(**self.meta["frame"])


def package_versions() -> dict:
    import numpy
    import sklearn
    import skops

    from ..version import __version__

    return {"micfp": __version__, "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "skops": skops.__version__}


def check_model_output(path, *, inputs=()) -> Path:
    """Check that micfp may write the model file ``path`` (new, or a micfp model it replaces)."""
    from .outputs import check_output_file

    return Path(check_output_file(path, inputs=inputs, what="model file", kind=MODEL_KIND))


def save_model(model: TrainedModel, path) -> Path:
    """Write ``model`` as a skops file (metadata as JSON inside it), replacing a micfp model whole.

    Written beside ``path`` under its write lock and renamed into place, so a reader finds the
    old model or the new one, and a run that dies leaves the old one (its temporary file is
    removed by the next save).
    """
    import skops.io as sio

    from ..report.files import json_default
    from .locks import exclusive
    from .swap import check_replaceable, remove_stale, temp_sibling

    path = check_model_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"kind": MODEL_KIND, "version": MODEL_VERSION, "estimator": model.estimator,
               "openset": {k: (np.asarray(v) if k != "tau" else float(v)) for k, v in model.openset.items()},
               "meta_json": json.dumps(model.meta, default=json_default)}
    if model.verification is not None:
        payload["verification"] = {k: model.verification[k] for k in ("embedding", "calibration", "segment_clips")}
    with exclusive(str(path), what="model file"):
        check_replaceable(path, MODEL_KIND, "model file")
        remove_stale(path)
        tmp = Path(temp_sibling(path))
        sio.dump(payload, tmp)
        tmp.replace(path)
    return path


def load_model(path) -> TrainedModel:
    """Load a model written by :func:`save_model`, refusing anything else.

    Raises
    ------
    InputError
        Missing or unreadable file, an archive that unpacks to far more than its size (nothing
        is loaded), a type outside :data:`TRUSTED_TYPES` (nothing is loaded), not a micfp model,
        trained with incompatible package versions, or open-set arrays that do not fit.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no model file here (make one with `micfp train CUBE {path}`)")
    try:
        # Read once: the archive and types checked are those of the bytes loaded, even if the file
        # is replaced meanwhile (a `micfp train` saving over it).
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the model file ({exc.strerror or exc})") from exc
    check_archive(path, data)  # before anything is unpacked
    try:
        untrusted = sio.get_untrusted_types(data=data)
        types = file_types(data)
    except Exception as exc:
        raise InputError(f"{path}: not a skops model file ({type(exc).__name__}: {exc})") from exc
    # skops itself trusts most of scikit-learn; micfp trusts only what it produces
    refused = sorted({t for t, loader in types if not _allowed(t, loader)} | (set(untrusted) - set(TRUSTED_TYPES)))
    if refused:
        raise InputError(f"{path}: untrusted type(s) {', '.join(refused)} refused; only micfp's own models load")
    try:
        _import_legacy_modules(untrusted)
        payload = sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise InputError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("kind") != MODEL_KIND:
        raise InputError(f"{path}: not a micfp model file")
    if payload.get("version") != MODEL_VERSION:
        raise InputError(f"{path}: model format version {payload.get('version')}, this micfp reads "
                         f"{MODEL_VERSION}; retrain with `micfp train`")
    try:
        meta = json.loads(payload["meta_json"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: model metadata is missing or malformed") from exc
    check_versions(meta.get("versions", {}), path)
    model = TrainedModel(payload["estimator"], dict(payload["openset"]), meta, payload.get("verification"))
    _check_consistent(model, path)
    check_openset(model.openset, model.estimator, path)
    if model.verification is not None:
        from ..identify.verification import check_verifier

        # the verifier's own features (older files: the classifier's)
        check_verifier(model.verification, len(meta.get("verification", {}).get("features", meta["features"])), path)
    return model


#: Old module paths (before the package was grouped by stage) that saved models may name.
LEGACY_MODULES = {"pipeline.evaluate": "pipeline.evaluation.models",
                  "pipeline.evaluation.evaluate": "pipeline.evaluation.models"}


def _import_legacy_modules(types) -> None:
    """Make the old module paths a model file names importable: skops imports functions by path."""
    import importlib
    import sys

    for old, new in LEGACY_MODULES.items():
        if any(t.startswith(old + ".") for t in types):
            sys.modules.setdefault(old, importlib.import_module(new))


def file_types(source) -> set[tuple[str, str]]:
    """Every ``(module.name, skops loader)`` a skops file (a path, or its bytes) refers to, read from its schema.

    Nothing is loaded.
    """
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as z:
        schema = json.loads(z.read("schema.json"))
    out: set[tuple[str, str]] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node:
                out.add((f"{node.get('__module__')}.{node['__class__']}", str(node.get("__loader__"))))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


_BUILTINS = {f"builtins.{n}" for n in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType",
                                       "slice", "set", "frozenset", "complex", "bytes")}


def _allowed(name: str, loader: str) -> bool:
    if name in TRUSTED_TYPES or name in _BUILTINS:
        return True
    # numpy arrays, scalars and dtypes are stored as data (.npy without pickles, or JSON)
    return name.startswith("numpy.") and loader in ("NdArrayNode", "DTypeNode", "JsonNode")


def check_versions(saved: dict, path) -> None:
    """Refuse a model from another micfp/numpy major or another scikit-learn minor version."""
    now = package_versions()

    def part(v, n):
        return tuple(str(v).split(".")[:n])

    for pkg, n in (("micfp", 1), ("numpy", 1), ("scikit-learn", 2)):
        if pkg not in saved:
            raise InputError(f"{path}: model metadata lacks the {pkg} version; retrain with `micfp train`")
        if part(saved[pkg], n) != part(now[pkg], n):
            raise InputError(f"{path}: trained with {pkg} {saved[pkg]}, this is {now[pkg]}; retrain the model "
                             f"with `micfp train` in this environment")


def _check_consistent(model: TrainedModel, path) -> None:
    """The metadata must describe the estimator and match this micfp's feature code."""
    from ..features import sets as fsets

    meta = model.meta
    try:
        frame = model.frame_settings()
        names, _ = fsets.feature_layout(meta["feature_set"], frame)
    except Exception as exc:
        raise InputError(f"{path}: model metadata does not describe a feature layout this micfp knows: {exc}") \
            from exc
    if names != meta["features"]:
        raise InputError(f"{path}: the model's {len(meta['features'])} {meta['feature_set']} features differ from "
                         f"this micfp's ({len(names)}); retrain the model with `micfp train`")
    n_in = getattr(model.estimator, "n_features_in_", len(names))
    classes = sorted(int(c) for c in model.classes)
    if n_in != len(names) or classes != sorted(model.mics):
        raise InputError(f"{path}: model metadata does not match its estimator (features {n_in} vs "
                         f"{len(names)}, classes {classes} vs {sorted(model.mics)})")


def describe_model(meta: dict) -> str:
    """A few lines on a trained model: what it knows, its held-out scores and its threshold."""
    def ci(d, k):
        return f"{d[k]:.3f} [{d[k + '_lo']:.2f}-{d[k + '_hi']:.2f}]" if k in d and d[k] == d[k] else "n/a"

    cal = meta["calibration"]
    fs = meta["feature_set"]
    fs = fs if isinstance(fs, str) else "+".join(fs)
    auto = meta.get("auto")
    clf = (f"micfp_auto (chose {auto['classifier']} on {auto['feature_set']} by {auto['cv_method']})" if auto
           else meta["settings"]["classifier"])
    lines = [f"model: {clf} on {fs} features, "
             f"{meta['clip_seconds']:g} s clips, {meta['n_train_clips']} clips of sessions "
             f"{', '.join(meta['settings']['sessions'])}; microphones: {', '.join(meta['mics'].values())}",
             f"held-out ({cal['method']}): accuracy {ci(cal, 'accuracy')}, macro F1 {ci(cal, 'macro_f1')}, "
             f"identical pair {ci(cal, 'pair_accuracy')}",
             f"unknown threshold {cal['tau']:.2f}: keeps {cal['file_accept_rate']:.1%} of {cal['n_files']} "
             f"held-out 30 s pseudo-files"]
    fc = cal.get("file")
    if fc:
        lines.append(f"whole files: p = softmax({fc['alpha']:.3g} x n^{fc['beta']:.2f} x mean clip log-p), learned on "
                     f"{fc['n_files']} held-out pseudo-files of 1-{max(fc['lengths'])} clips (log-loss "
                     f"{fc['log_loss']:.3f}, mean-log {fc['log_loss_mean_log']:.3f})")
    v = meta.get("verification")
    if v:
        clip_s = meta["clip_seconds"]
        lines.append(f"verifier ({v['method']}), EER / Cllr by compared length: " + ", ".join(
            f"{int(n) * clip_s:g} s {d['eer']:.3f} / {d['cllr']:.3f}" for n, d in v["lengths"].items()))
    h = meta.get("heldout")
    if h:
        lines.append(f"held-out sessions {', '.join(h['sessions'])} (ParallelPostFit, {h['n_clips']} clips): "
                     f"accuracy {ci(h, 'accuracy')}, macro F1 {ci(h, 'macro_f1')}, identical pair "
                     f"{ci(h, 'pair_accuracy')}; 30 s pseudo-files accepted {h['file_accept_rate']:.1%}"
                     + (f", of unknown microphones rejected {h['unknown_file_reject_rate']:.1%}"
                        if h["unknown_file_reject_rate"] == h["unknown_file_reject_rate"] else ""))
    return "\n".join(lines)
