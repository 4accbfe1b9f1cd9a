"""mics.csv's optional ``model`` column: declared identical-model groups, carried store -> cube."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipeline.artifacts.store import AudioStore
from pipeline.errors import InputError
from pipeline.io.ingest import ingest, plan_ingest
from pipeline.io.layouts import read_models

SR = 48000


def folder(root, mics_csv: str, labels=(1, 2, 3, 4, 5), sessions=("day1", "day2")):
    for si, s in enumerate(sessions):
        (root / s).mkdir(parents=True)
        for lab in labels:
            x = np.random.default_rng(10 * si + lab).normal(0, 3000, SR * 6).astype(np.int16)
            sf.write(root / s / f"rec-{lab}.wav", x, SR, subtype="PCM_16")
    (root / "mics.csv").write_text(mics_csv)
    return root


MODELS_CSV = ("label,name,model\n1,Alpha,KM 184\n2,Beta,KM 184\n3,Gamma,SM58\n4,Delta,SM58\n"
              "5,Epsilon,SM58\n")


def test_model_column_declares_groups_of_any_size(tmp_path):
    root = folder(tmp_path / "rec", MODELS_CSV)
    plan = plan_ingest(str(root))
    assert plan.models == {1: "KM 184", 2: "KM 184", 3: "SM58", 4: "SM58", 5: "SM58"}
    assert plan.layout.models == plan.models


def test_no_model_column_or_empty_cells(tmp_path):
    p = tmp_path / "mics.csv"
    p.write_text("label,name\n1,A #1\n2,A #2\n")
    assert read_models(p) == {}
    p.write_text("label,name,model\n1,A,X\n2,B,\n")
    assert read_models(p) == {1: "X"}
    assert read_models(None) == {} and read_models(tmp_path / "absent.csv") == {}


@pytest.mark.faults
def test_bad_label_in_model_csv_is_one_line(tmp_path):
    root = folder(tmp_path / "rec", "label,name,model\nx,A,KM\n", labels=(1,), sessions=("day1",))
    with pytest.raises(InputError, match=r"mics.csv: line 2: label 'x' is not an integer"):
        plan_ingest(str(root))


def test_models_reach_the_store_and_the_cube(tmp_path, client):
    from pipeline.artifacts.cube import open_cube
    from pipeline.artifacts.kinds import models_from_attrs
    from pipeline.features import FeatureConfig, compute_cube

    root = folder(tmp_path / "rec", MODELS_CSV)
    ingest(str(root), str(tmp_path / "a.zarr"), client, quiet=True)
    store = AudioStore.open(str(tmp_path / "a.zarr"))
    assert store.models == {1: "KM 184", 2: "KM 184", 3: "SM58", 4: "SM58", 5: "SM58"}
    compute_cube(str(tmp_path / "a.zarr"), str(tmp_path / "c.zarr"),
                 FeatureConfig(feature_sets=("channel",), clip_seconds=(2.0,)), client, quiet=True)
    assert models_from_attrs(open_cube(str(tmp_path / "c.zarr")).attrs) == store.models
    # ... and `micfp evaluate` scores every declared group
    from pipeline.artifacts.results import open_results
    from pipeline.evaluation.cell import Cell
    from pipeline.workflow.builtin import evaluate_workflow
    from pipeline.workflow.run import run_workflow

    cells = [Cell(2.0, "all", "channel", "micfp_lr", "session")]
    wf = evaluate_workflow(str(tmp_path / "c.zarr"), str(tmp_path / "report"), cells, n_boot=10)
    run_workflow(wf, client, quiet=True, report=False)
    ds = open_results(wf.results_path)
    assert sorted(ds.identical_group.values) == ["KM 184", "SM58"]
    assert ds.attrs["micfp"]["identical_groups"]["SM58"] == ["Gamma", "Delta", "Epsilon"]
    assert np.isfinite(ds.group_accuracy.values).all()
