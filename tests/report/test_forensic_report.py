"""The forensic part of the report: verbal scale, Tippett/DET figures, the page of a forensic-only results set."""

import pytest

from forensic_helpers import MICS, synthetic
from pipeline.report.verbal import strength, verbal


@pytest.mark.parametrize("llr, words", [(0.0, "no support"), (0.5, "weak support"), (-1.5, "moderate support"),
                                        (2.5, "moderately strong support"), (-3.2, "strong support"),
                                        (4.01, "very strong support"), (1.0, "weak support")])
def test_verbal_scale(llr, words):
    assert strength(llr) == words


def test_verbal_sentence_names_the_favoured_proposition_first():
    assert verbal(1.5).startswith("moderate support for the proposition that the same microphone")
    assert verbal(-1.5).startswith("moderate support for the proposition that different microphones")


def test_a_forensic_only_results_set_gets_a_page_with_tippett_det_and_the_lr_paragraph(tmp_path, rng):
    from pipeline.artifacts.results import write_results
    from pipeline.evaluation.cell import Cell, run_cell
    from pipeline.evaluation.grid import results_dataset
    from pipeline.report.files import summary_table
    from pipeline.report.html import write_html_report

    X, meta = synthetic(rng, n_per=15, sessions=("day1", "day2"))
    res = [run_cell(X, meta, Cell(2.0, "all", "channel", "micfp_verify", p), MICS, n_boot=10)
           for p in ("verification", "open-set")]
    res.append(run_cell(X, meta, Cell(2.0, "all", "channel", "logistic_regression", "enrolled-verification"), MICS,
                        n_boot=10))
    results = write_results(results_dataset(res, MICS), tmp_path / "results.zarr")
    html = write_html_report(results, tmp_path / "report" / "index.html")
    page = html.read_text()
    assert "Same-microphone evidence" in page and "not the probability that the microphone is the same" in page
    figs = sorted(p.name for p in (html.parent / "figures").glob("*.png"))
    assert sum(f.startswith("tippett-") for f in figs) == 2 and sum(f.startswith("det-") for f in figs) == 3
    assert "questioned clips against microphones enrolled in another session" in page
    table = summary_table(res)
    assert "EER [95% CI]" in table and "accuracy" not in table.splitlines()[0]

