"""``micfp report``: the page renders, every image it references is a real PNG, and the five
answers are built from the numbers (change the numbers, the sentences change)."""

from __future__ import annotations

import re
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

MICS = {1: "Shure SM7B", 2: "t.bone MB 7 Beta", 3: "Neumann KM 184 #1", 4: "Neumann KM 184 #2", 5: "RODE NT1-A"}
PNG = b"\x89PNG\r\n\x1a\n"
PER_MIC = 40


def _record(acc: float, clip: float, st: str, fs: str, clf: str, prot: str, cond: str = "clean",
            mics=MICS) -> dict:
    """A cell result as ``run_cell`` returns it, scored by evaluate's own ``score``."""
    from pipeline.evaluation.cell import Cell
    from pipeline.evaluation.metrics import identical_pairs, score

    labels = sorted(mics)
    y = np.repeat(labels, PER_MIC)
    pred = y.copy()
    wrong = len(y) - int(round(acc * len(y)))
    # mistakes go first to the identical pair (3 <-> 4), then to the next microphone
    order = np.concatenate([np.flatnonzero(np.isin(y, [3, 4])), np.flatnonzero(~np.isin(y, [3, 4]))])
    for i in order[:wrong]:
        pred[i] = {3: 4, 4: 3}.get(int(y[i]), labels[(labels.index(int(y[i])) + 1) % len(labels)])
    groups = np.tile(np.arange(PER_MIC) // 4, len(labels))
    r = score(y, pred, labels, identical_pairs(mics), groups, n_boot=60)
    cell = Cell(clip, st, fs, clf, prot)
    return {**r, "cell": asdict(cell), "condition": cond, "seconds": 0.1, "fold_accuracy": [r["accuracy"]]}


def _results(tmp_path: Path, curve: dict[float, float], name="results.zarr", cube=None, mics=MICS,
             workflow="synthetic") -> Path:
    from pipeline.artifacts.results import write_results
    from pipeline.workflow.ledger import results_set

    recs = []
    for clip, acc in curve.items():
        recs.append(_record(acc, clip, "all", "channel", "micfp_lr", "session", mics=mics))
        recs.append(_record(min(1, acc + 0.02), clip, "music", "channel", "micfp_lr", "session", mics=mics))
        recs.append(_record(acc - 0.15, clip, "speech1", "channel", "micfp_lr", "session", mics=mics))
        recs.append(_record(acc - 0.25, clip, "all", "thesis", "logistic_regression", "session", mics=mics))
        recs.append(_record(min(1, acc + 0.01), clip, "all", "thesis", "logistic_regression", "random", mics=mics))
        recs.append(_record(acc - 0.3, clip, "all", "channel", "micfp_lr", "leave-sound-type-out", mics=mics))
    longest = max(curve)
    for drop, cond in ((0.3, "noise-10dB"), (0.1, "mp3-64k")):
        recs.append(_record(curve[longest] - drop, longest, "all", "channel", "micfp_lr", "session", cond, mics=mics))
    conds = {"clean": {"kind": "clean"}, "noise-10dB": {"kind": "noise", "snr_db": 10.0},
             "mp3-64k": {"kind": "codec", "codec": "mp3", "kbps": 64.0, "kbps_measured": 63.2, "level": 0.86}}
    ds = results_set(recs, mics, conds, {"workflow": workflow, "cube": cube})
    return write_results(ds, tmp_path / name)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.answers, self._in_dd, self.text = [], [], False, []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "dd":
            self._in_dd = True
            self.answers.append("")

    def handle_endtag(self, tag):
        if tag == "dd":
            self._in_dd = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_dd:
            self.answers[-1] += data


def _render(results: Path, html: Path | None = None, cube=None):
    from pipeline.report.html import write_html_report

    path = write_html_report(results, html, cube=cube)
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return path, page


CURVE = {0.5: 0.80, 1.0: 0.93, 2.0: 0.96, 5.0: 0.995}


def test_report_renders_with_valid_pngs_and_numeric_answers(tmp_path):
    res = _results(tmp_path, CURVE)
    path, page = _render(res)
    assert path == tmp_path / "report" / "index.html"
    assert len(page.images) >= 7
    for src in page.images:
        f = path.parent / src
        assert f.is_file(), src
        assert f.read_bytes()[:8] == PNG, src
    assert len(page.answers) == 5
    for a in page.answers:
        assert re.search(r"\d", a), a
    q1, q2, q3, q4, q5 = page.answers
    assert "99.5 %" in q1 and "200 test clips of 5 s" in q1 and "chance: 20.0 %" in q1
    assert "Neumann KM 184 #1 taken for Neumann KM 184 #2" in q3  # mistakes were put on the pair
    assert "random split of clips scores" in q3
    assert "noise-10dB" in q3 and "69.5 %" in q3  # 0.995 - 0.3
    assert "music gives the highest" in q4 and "speech1" in q4
    assert "all sound types pooled: 2 s for 95 %, 5 s for 99 %" in q5
    text = " ".join(page.text)
    assert "63.2" in text  # the measured bit rate is shown


def _answers(path: Path) -> list[str]:
    from pipeline.artifacts.results import open_results
    from pipeline.report.analysis import analyse
    from pipeline.report.answers import answers

    return [a for _, a in answers(analyse(open_results(path)))]


@pytest.mark.faults
def test_user_strings_in_the_page_are_escaped(tmp_path):
    """Microphone names, the workflow name and the results path come from the user: they are shown
    as text, never as markup; and a second report over micfp's own page is allowed."""
    from pipeline.report.html import GENERATOR, _is_html_report

    evil = '<script>alert("mic")</script>'
    mics = {**MICS, 1: evil}
    folder = tmp_path / 'a<b>&"c'
    folder.mkdir()
    res = _results(folder, CURVE, mics=mics, workflow="</title><script>alert(1)</script>")
    path, page = _render(res)
    source = path.read_text(encoding="utf-8")
    assert "<script" not in source.lower()
    assert "&lt;script&gt;" in source
    text = "".join(page.text)
    assert f"microphones: {evil}, t.bone MB 7 Beta" in text  # shown as written, after unescaping
    assert "micfp report: </title><script>alert(1)</script>" in text
    assert f"Results: {res};" in text
    assert evil in page.answers[1]  # per-microphone recall names it
    assert GENERATOR in source[:4096] and _is_html_report(path)
    path2, _ = _render(res)  # micfp's own page is replaced
    assert path2 == path


def test_answers_follow_the_numbers(tmp_path):
    better = {0.5: 0.955, 1.0: 0.97, 2.0: 0.992, 5.0: 1.0}
    q = _answers(_results(tmp_path, better, "b.zarr"))
    assert q[0].startswith("Yes") and "100.0 %" in q[0]
    assert "all sound types pooled: 0.5 s for 95 %, 2 s for 99 %" in q[4]
    worse = {0.5: 0.3, 1.0: 0.35, 2.0: 0.4, 5.0: 0.45}
    q = _answers(_results(tmp_path, worse, "w.zarr"))
    assert "95 % not reached (best 45.0 % at 5 s)" in q[4]
    assert not q[0].startswith("Yes") and "45.0 %" in q[0]


def test_min_clip_length_needs_the_accuracy_to_stay():
    import pandas as pd

    from pipeline.report.analysis import min_clip_length

    c = pd.DataFrame({"clip_seconds": [0.5, 1, 2, 5], "accuracy": [0.96, 0.9, 0.97, 0.99]})
    assert min_clip_length(c, 0.95) == 2.0  # 0.5 s was a lucky dip above the line
    assert min_clip_length(c, 0.99) == 5.0
    assert np.isnan(min_clip_length(c, 0.995))


def test_cli_report_and_signature_from_a_cube(tmp_path, tiny_cube, capsys):
    from pipeline.cli import main
    from pipeline.report.analysis import signature

    sig = signature(tiny_cube)
    assert sig is not None and len(sig["mics"]) == 5
    np.testing.assert_allclose(sig["relative_db"].mean(axis=0), 0, atol=1e-9)  # relative to the mean
    assert sig["freqs"].size == sig["relative_db"].shape[1] and np.all(np.diff(sig["freqs"]) > 0)

    res = _results(tmp_path, CURVE, cube=tiny_cube)
    assert main(["report", str(res), "--html", str(tmp_path / "r" / "page.html")]) == 0
    assert "page.html" in capsys.readouterr().out
    page = _Page()
    page.feed((tmp_path / "r" / "page.html").read_text())
    assert "figures/spectral-signature.png" in page.images
    assert (tmp_path / "r" / "figures" / "spectral-signature.png").read_bytes()[:8] == PNG
    q2 = page.answers[1]
    assert "dB" in q2 and "Neumann KM 184 #1 and Neumann KM 184 #2" in q2


@pytest.mark.faults
def test_report_on_missing_results_is_one_line_error(tmp_path, capsys):
    from pipeline.cli import main

    assert main(["report", str(tmp_path / "nope.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no results set" in err[0]


@pytest.mark.parametrize("suffix", [".nc"])
def test_netcdf_results_work_too(tmp_path, suffix):
    from pipeline.artifacts.results import open_results

    res = _results(tmp_path, CURVE, name="results" + suffix)
    ds = open_results(res)
    assert ds.attrs["micfp"]["kind"] == "micfp-results" and ds.confusion.dtype.kind == "i"
    q = _answers(res)
    assert len(q) == 5 and "99.5 %" in q[0]


def test_report_on_a_micfp_evaluate_results_set(tmp_path):
    """``micfp report`` also reads what ``micfp evaluate`` writes (no condition dimension)."""
    from pipeline.artifacts.results import save_results
    from pipeline.evaluation.grid import results_dataset

    recs = [_record(acc, clip, "all", fs, clf, "session") for clip, acc in ((1.0, 0.7), (2.0, 0.9))
            for fs, clf in (("thesis", "svc"), ("channel", "micfp_lr"))]
    save_results(results_dataset(recs, MICS), tmp_path / "results.zarr")
    q = _answers(tmp_path / "results.zarr")
    assert "90.0 %" in q[0] and "1 s, 2 s" in q[4]


# -- the answers follow the best method of the grid (issue 23) -------------------------------------
def _grid_where_svc_wins(tmp_path: Path) -> Path:
    """micfp_lr 25 points behind micfp_svc on channel features; the thesis baseline further behind."""
    from pipeline.artifacts.results import write_results
    from pipeline.workflow.ledger import results_set

    recs = []
    for clip, acc in {0.5: 0.70, 1.0: 0.90, 2.0: 0.95}.items():
        recs.append(_record(acc, clip, "all", "channel", "micfp_svc", "session"))
        recs.append(_record(acc - 0.25, clip, "all", "channel", "micfp_lr", "session"))
        recs.append(_record(acc - 0.40, clip, "all", "thesis", "svc", "session"))
        recs.append(_record(acc - 0.45, clip, "all", "thesis", "knn", "session"))
        recs.append(_record(acc - 0.50, clip, "all", "spectral", "micfp_et", "session"))
        recs.append(_record(acc - 0.55, clip, "all", "spectral", "naive_bayes", "session"))
    return write_results(results_set(recs, MICS, {"clean": {"kind": "clean"}}, {"workflow": "svc-wins"}),
                         tmp_path / "svc.zarr")


def test_answers_quote_the_best_method_not_a_fixed_one(tmp_path):
    """Before: the answers followed micfp_lr whenever it was run, even 25 points behind another method."""
    from pipeline.report.labels import method_name

    q = _answers(_grid_where_svc_wins(tmp_path))
    best, base = method_name("channel", "micfp_svc"), method_name("thesis", "svc")
    assert q[0].startswith("Yes") and f"{best} names the right microphone" in q[0] and "95.0 %" in q[0]
    # which method won, and by how much over the thesis baseline (means over 0.5, 1 and 2 s)
    assert f"{best} is the best of the 6 methods in this grid (mean accuracy 85.0 %" in q[0]
    assert f"next: {method_name('channel', 'micfp_lr')}, 60.0 %" in q[0]
    assert f"40.0 points above the thesis baseline, {base} (45.0 %)" in q[0]
    assert f"({best}, session protocol)" in q[4]


def test_ties_go_to_the_identical_pair_then_to_micfp_auto():
    import pandas as pd

    from pipeline.report.analysis import choose_methods

    rows = [("channel", "micfp_auto", 0.9, 0.8), ("all", "micfp_svc", 0.9, 0.9), ("thesis", "svc", 0.9, 0.9),
            ("thesis", "knn", 0.5, 0.5)]
    df = pd.DataFrame([{"condition": "clean", "sound_type": "all", "protocol": "session", "clip_seconds": 1.0,
                        "feature_set": fs, "classifier": c, "accuracy": acc, "pair_accuracy": pair}
                       for fs, c, acc, pair in rows])
    m = choose_methods(df, "session")
    assert m["improved"] == ("all", "micfp_svc") and m["baseline"] == ("thesis", "svc")
    df.loc[df["classifier"] == "micfp_auto", "pair_accuracy"] = 0.9
    assert choose_methods(df, "session")["improved"] == ("channel", "micfp_auto")


def test_page_has_macro_f1_a_metrics_csv_link_and_normalised_confusions(tmp_path):
    import pandas as pd

    path, page = _render(_grid_where_svc_wins(tmp_path))
    source = path.read_text(encoding="utf-8")
    assert "<th>macro_f1</th>" in source
    assert '<a href="metrics.csv">' in source
    csv = pd.read_csv(path.parent / "metrics.csv")
    assert len(csv) == 18 and {"macro_f1", "accuracy", "classifier", "condition"} <= set(csv.columns)
    assert any(src.endswith("confusion-improved-session-normalised.png") for src in page.images)
    assert any(src.endswith("methods.png") for src in page.images)


def test_row_normalised_confusion_rows_sum_to_one():
    from pipeline.report.analysis import row_normalised

    conf = np.array([[30, 10, 0], [5, 5, 0], [0, 0, 0]])
    rates = row_normalised(conf)
    np.testing.assert_allclose(rates.sum(axis=1), [1.0, 1.0, 0.0])  # no test clips: an empty row
    np.testing.assert_allclose(rates[0], [0.75, 0.25, 0.0])


def test_every_method_figure_shows_a_handful_with_readable_names(tmp_path, monkeypatch):
    """Before: every method's line and band with raw identifiers (``micfp_svc / channel``)."""
    from pipeline.artifacts.results import open_results
    from pipeline.report import figures
    from pipeline.report.analysis import analyse
    from pipeline.report.labels import method_name

    a = analyse(open_results(_grid_where_svc_wins(tmp_path)))
    seen = {}

    def keep(fig, path):
        ax = fig.axes[0]
        seen["labels"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["bands"] = len(ax.collections)
        seen["title"] = ax.get_title()
        return path

    monkeypatch.setattr(figures, "_save", keep)
    figures.fig_methods(a, "session", tmp_path / "methods.png")
    labels = seen["labels"]
    assert labels[0] == method_name("channel", "micfp_svc") + " (improved)"
    assert method_name("thesis", "svc") + " (thesis baseline)" in labels
    assert len(labels) <= figures.METHODS_SHOWN + 2  # + baseline + chance
    assert seen["bands"] == 2 and not any("/" in t for t in labels)
    assert "more in the table" in seen["title"]


@pytest.mark.faults
def test_a_foreign_metrics_csv_beside_the_page_is_not_replaced(tmp_path):
    from pipeline.errors import InputError

    res = _results(tmp_path, CURVE)
    page = tmp_path / "mine" / "page.html"
    page.parent.mkdir()
    (page.parent / "metrics.csv").write_text("my,own,numbers\n1,2,3\n")
    with pytest.raises(InputError, match=r"metrics.csv: exists and is not a micfp metrics table"):
        _render(res, page)
    assert (page.parent / "metrics.csv").read_text() == "my,own,numbers\n1,2,3\n" and not page.exists()
    (page.parent / "metrics.csv").unlink()
    _render(res, page)
    _render(res, page)  # micfp's own table is replaced
    assert "accuracy" in (page.parent / "metrics.csv").read_text()


def test_answers_quote_micfp_auto_s_choice_groups_and_whole_files(tmp_path):
    """The default model's choice is stated (which feature set and classifier won inside the
    training data), every declared identical-model group gets its accuracy, and whole files too."""
    from pipeline.artifacts.results import open_results, write_results
    from pipeline.evaluation.metrics import group_accuracies, identical_groups
    from pipeline.workflow.ledger import results_set

    models = {1: "SM", 2: "SM", 3: "KM", 4: "KM", 5: "NT"}
    groups = identical_groups(MICS, models)
    recs = [_record(0.8, 2.0, "all", "thesis", "svc", "session")]
    auto = _record(0.95, 2.0, "all", "all", "micfp_auto", "session")
    auto["chosen"] = [{"fold": "train day1 test day2", "feature_set": "spectral", "classifier": "micfp_svc",
                       "params": {}, "cv_scores": {"spectral + micfp_svc": 0.97, "channel + micfp_lr": 0.9},
                       "cv_method": "3-fold grouped CV over 6 groups, 600 clips"}]
    auto["group_accuracy"] = group_accuracies(auto["confusion"], sorted(MICS), groups)
    auto["file_accuracy"] = [{"file_seconds": 2.0, "accuracy": 0.95, "n_files": 200},
                             {"file_seconds": 30.0, "accuracy": 1.0, "n_files": 12}]
    recs.append(auto)
    path = write_results(results_set(recs, MICS, {"clean": {"kind": "clean"}},
                                     {"workflow": "auto", "models": {str(k): v for k, v in models.items()}}),
                         tmp_path / "auto.zarr")
    ds = open_results(path)
    assert list(ds.identical_group.values) == ["SM", "KM"] and list(ds.file_seconds.values)[:3] == [2, 10, 30]
    assert ds.attrs["micfp"]["auto_choices"][0]["method"] == "spectral + micfp_svc"
    q = _answers(path)
    assert "chose spectral + micfp_svc by 3-fold grouped CV" in q[0]
    assert "the 2 identical-model groups" in q[2] and "SM: Shure SM7B and t.bone MB 7 Beta" in q[2]
    assert "Whole files" in q[4] and "30 s 100.0 %" in q[4]
