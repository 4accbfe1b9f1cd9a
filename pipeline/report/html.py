"""``micfp report``: an HTML page with PNG figures that turns a results set into answers.

The page answers the thesis's five questions in sentences filled from the numbers (nothing is
written in advance): can a microphone be identified, what differs between microphones, what
limits it, how the sound type matters, and how short a clip may be. Figures: accuracy and
identical-pair accuracy against clip length per sound type (95 % bands), the minimum clip length
reaching 95 % and 99 %, accuracy under noise and compression, confusion matrices, each
microphone's spectral signature relative to the mean, and the thesis baseline beside the
improved method.

:func:`~.analysis.analyse` computes every number the page shows; :func:`~.answers.answers` turns
them into sentences, :mod:`.figures` draws the PNGs and :mod:`.tables` builds the tables;
:func:`write_html_report` puts them into the page template (``templates/report.html``, package
data, rendered by Jinja2 with every value HTML-escaped).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from importlib import resources
from pathlib import Path

import jinja2

from ..artifacts.kinds import mics_from_attrs
from ..artifacts.locks import shared
from ..artifacts.outputs import check_output_file
from . import figures, tables
from .analysis import analyse
from .answers import answers
from .forensic import forensic_figures, forensic_frame, forensic_summary, forensic_table
from .labels import method_name

#: What marks an HTML page as micfp's (only such a page is replaced).
GENERATOR = '<meta name="generator" content="micfp">'


def _is_html_report(path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return GENERATOR in head or "<title>micfp report:" in head


def _is_metrics_csv(path) -> bool:
    """A metrics table micfp wrote (the page's or ``micfp run``'s): its header names micfp's columns."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = set(f.readline().strip().split(","))
    except OSError:
        return False
    return {"feature_set", "classifier", "protocol", "accuracy", "accuracy_lo", "n_test"} <= header


def _template_source(name: str) -> str:
    # importlib.resources, so the templates are found in a wheel or zip as well as in a checkout.
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    # autoescape: mic names, paths and conditions come from the user's files and are escaped;
    # StrictUndefined: a misspelt name in the template fails instead of rendering empty.
    return jinja2.Environment(loader=jinja2.FunctionLoader(_template_source), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_page(**context) -> str:
    """The report page from ``templates/report.html`` (see the template for the names it needs)."""
    return _environment().get_template("report.html").render(**context)


def _table(df):
    return None if df is None else {"columns": [str(c) for c in df.columns],
                                     "rows": [[str(v) for v in row] for row in df.itertuples(index=False)]}


def write_html_report(results, html_path=None, *, cube: str | None = None, metrics_csv=None) -> Path:
    """Write the report page and its PNG figures; returns the HTML path.

    Parameters
    ----------
    results : str or Path
        A results set (``results.zarr`` or ``.nc``), from ``micfp run`` or ``micfp evaluate``.
    html_path : str or Path, optional
        Default ``report/index.html`` beside the results set; figures go to ``figures/`` beside it.
    cube : str, optional
        The feature cube for spectral signatures; default the cube named in the results set.
    metrics_csv : str or Path, optional
        The metrics table the page links to (``micfp run`` passes the ``metrics.csv`` of its report
        files). Default: ``metrics.csv`` beside the page, written here with one row per finished cell
        (an existing one is replaced only when micfp wrote it).
    """
    from ..artifacts.results import open_results

    results = Path(results)
    html_path = Path(html_path) if html_path else results.parent / "report" / "index.html"
    html_path = Path(check_output_file(html_path, inputs=(results,), what="HTML report", ours=_is_html_report))
    if metrics_csv is None:  # a metrics.csv beside the page that micfp did not write is never replaced
        metrics_csv = Path(check_output_file(html_path.parent / "metrics.csv", inputs=(results,),
                                             what="metrics table", ours=_is_metrics_csv))
        write_csv = True
    else:
        write_csv = False
    ds = open_results(results)
    meta = ds.attrs["micfp"]
    figs_dir = html_path.parent / "figures"
    if figs_dir.exists() and html_path.exists():  # old figures of micfp's report here (checked above)
        for old in figs_dir.glob("*.png"):
            old.unlink()
    cube = cube or meta.get("cube")
    fdf = forensic_frame(ds)
    classified = ds["accuracy"].notnull().any() if "accuracy" in ds else False
    if classified or fdf.empty:
        with shared(cube, what="feature cube") if cube else contextlib.nullcontext():
            a = analyse(ds, cube)
        qa = answers(a)
    else:  # only forensic cells: no classification questions to answer
        a, qa = None, []
    if write_csv:
        metrics_csv.parent.mkdir(parents=True, exist_ok=True)
        (a["df"] if a is not None else fdf).to_csv(metrics_csv, index=False)

    def section(title, figs=(), table=None, note=None):
        shown = [{"src": str(Path(p).relative_to(html_path.parent)), "alt": alt} for p, alt in figs if p]
        return {"title": title, "figures": shown, "table": _table(table), "note": note}

    sections = []
    if not fdf.empty:
        sections.append(section("Same-microphone evidence: likelihood ratios", forensic_figures(ds, figs_dir),
                                forensic_table(fdf), forensic_summary(fdf)))
    if a is None:
        return _write_page(html_path, results, meta, sections, qa, metrics_csv, n_cells=len(fdf),
                           mics=list(mics_from_attrs(meta).values()))
    curves = [(figures.fig_clip_curves(a, p, figs_dir / f"clip-length-{p}.png"), f"accuracy against clip length, {p}")
              for p in a["protocols"]]
    curves.append((figures.fig_methods(a, a["main_protocol"], figs_dir / "methods.png"),
                   "every method against clip length"))
    if any(p for p, _ in curves):
        sections.append(section("Accuracy against clip length", curves))
    if a["min_clip"]:
        sections.append(section(
            "Minimum clip length", [(figures.fig_min_clip(a, figs_dir / "min-clip-length.png"), "minimum clip length")],
            tables.min_clip_table(a), "Seconds; the shortest tested length from which on the accuracy stays at or "
            "above the threshold; – not reached."))
    if a.get("robustness") is not None:
        sections.append(section(
            "Noise and compression", [(figures.fig_robustness(a, figs_dir / "robustness.png"),
                                       "accuracy under noise and compression")],
            tables.conditions_table(a), "Only the test session is degraded; models train on clean audio. Bit rates "
            "are measured from the encoded bytes."))
    sig = figures.fig_signature(a, figs_dir / "spectral-signature.png")
    if sig:
        sections.append(section("What differs between microphones", [(sig, "spectral signatures")]))
    base = figures.fig_baseline(a, figs_dir / "baseline-vs-improved.png")
    if base:
        sections.append(section("Thesis baseline and improved method", [(base, "baseline vs improved")]))
    confs = figures.fig_confusions(ds, a, figs_dir)
    if confs:
        sections.append(section("Confusion matrices", [(p, t) for t, p in confs]))
    sections.append(section(f"Every cell ({len(a['df'])})", table=tables.cells_table(a)))

    return _write_page(html_path, results, meta, sections, qa, metrics_csv, n_cells=len(a["df"]) + len(fdf),
                       mics=list(a["mics"].values()), improved=method_name(*a["improved"]),
                       baseline=method_name(*a["baseline"]) if a["baseline"] else None,
                       selected_on_test=a["selected_on_test"])


def _write_page(html_path: Path, results: Path, meta: dict, sections, qa, metrics_csv, **context) -> Path:
    """Render the page, write it and its ``answers.json``; returns the HTML path."""
    context = {"improved": None, "baseline": None, "selected_on_test": False, **context}
    page = render_page(
        title=f"micfp report: {meta.get('workflow', results.name)}", results=str(results), answers=qa,
        sections=sections, metrics_csv=os.path.relpath(Path(metrics_csv).resolve(), html_path.parent.resolve()),
        **context)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(page, encoding="utf-8")
    (html_path.parent / "answers.json").write_text(json.dumps([{"question": q, "answer": t} for q, t in qa], indent=1))
    return html_path
