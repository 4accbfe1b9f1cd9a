"""The command line's help and argument types: choices, defaults, examples, one-line errors.

argparse only, no heavy imports: ``micfp --help`` must not load numba, dask or scikit-learn.
The fixed sets of values are therefore repeated here (a test checks each against the
library's own constant).
"""

from __future__ import annotations

import argparse

from ..errors import one_line

# The library's constants (pipeline.features.sets.FEATURE_SETS, pipeline.features.cube.SEGMENTATIONS,
# pipeline.evaluation.protocols.PROTOCOLS, pipeline.evaluation.models.CLASSIFIERS, pipeline.identify.identify.AGGREGATIONS):
# tests/cli/test_help.py checks they agree.
FEATURE_SETS = ("thesis", "spectral", "channel", "session-relative", "all")
DEFAULT_FEATURE_SETS = ("all", "session-relative")
SEGMENTATIONS = ("fixed", "silence")
PROTOCOLS = ("random", "session", "grouped-kfold", "leave-sound-type-out", "verification", "open-set",
             "enrolled-verification")
CLASSIFIERS = ("svc", "mlp", "knn", "random_forest", "gradient_boosting", "logistic_regression", "naive_bayes",
               "decision_tree", "micfp_lr", "micfp_svc", "micfp_et", "micfp_auto")
AGGREGATIONS = ("calibrated", "mean-log", "vote")
#: pipeline.simulate.studios.STUDIOS and pipeline.simulate.room.POSITION_POLICIES (tests/simulate/test_studios.py checks).
STUDIOS = ("thesis", "dev", "heldout")
POSITION_POLICIES = ("rotate", "fixed")
#: The silence split's defaults (pipeline.features.clips.SilenceSettings), shown in the help.
SILENCE_THRESHOLD_DB = -60.0
MIN_SILENCE_S = 1.1

#: One to three examples per command, shown after its options.
EXAMPLES = {
    "demo": """\
examples:
  micfp demo                               # simulate, features, evaluate, report into ./micfp-out
  micfp demo --scale tiny --out /tmp/demo  # a quick look (a minute or so)""",
    "simulate": """\
examples:
  micfp simulate studio.zarr --minutes-per-session 3,1.5
  micfp simulate /tmp/wav --format wav --sessions 4 --minutes-per-session 2
  micfp simulate heldout.zarr --studio heldout --positions fixed --sources corpus/heldout""",
    "ingest": """\
examples:
  micfp ingest recordings/ audio.zarr                 # thesis layout: <session>/<prefix>-<N>.wav
  micfp ingest corpus.csv audio.zarr --resample 48000 # a manifest CSV, mixed sample rates
  micfp ingest tree/ audio.zarr --layout tree --pattern '(?P<session>[^/]+)/(?P<mic>[^/]+)\\.flac$'""",
    "features": """\
examples:
  micfp features audio.zarr cube.zarr
  micfp features audio.zarr cube.zarr --feature-set channel --clip-seconds 1,2
  micfp features audio.zarr cube.zarr --segmentation silence --silence-threshold-db -70 --min-silence-s 1.4

The thesis split its recordings on silence at -55 to -80 dBFS and 1.1 to 1.4 s.""",
    "evaluate": """\
examples:
  micfp evaluate cube.zarr report/
  micfp evaluate cube.zarr report/ --protocol session,random --classifiers micfp_lr,svc --clip-seconds 1,2
  micfp evaluate cube.zarr report/ --sound-type speech1 --bootstrap 1000""",
    "export": """\
examples:
  micfp export cube.zarr features.parquet                  # a folder of Parquet files, one per partition
  micfp export cube.zarr channel.csv --feature-set channel --clip-seconds 2
  micfp export cube.zarr silence.parquet --segmentation silence

Read back with pandas.read_parquet(OUT) or pandas.read_csv(OUT, index_col="clip"):
one row per clip, its coordinates (mic, session, sound type, times...) then one column per feature.""",
    "info": """\
examples:
  micfp info audio.zarr
  micfp info cube.zarr
  micfp info report/results.zarr""",
    "train": """\
examples:
  micfp train cube.zarr model.skops
  micfp train cube.zarr model.skops --sessions day1 --classifier micfp_lr --clip-seconds 1""",
    "identify": """\
examples:
  micfp identify take1.wav take2.flac --model model.skops
  micfp identify *.wav --model model.skops --json --top-k 5 > answers.json""",
    "verify": """\
examples:
  micfp verify questioned.wav reference.wav --model model.skops
  micfp verify leak.flac suspect-mic-day2.wav --json > verification.json

Prints the log10 likelihood ratio of "the same microphone recorded both" against "different
microphones recorded them", its verbal-scale words, the scores, both files' SHA-256 and the
model's identity. It is not the probability that the microphone is the same.""",
    "run": """\
examples:
  micfp run workflows/ablation.toml
  micfp run workflows/thesis.toml --out /tmp/thesis --performance-report /tmp/thesis-dask.html""",
    "report": """\
examples:
  micfp report report/results.zarr
  micfp report runs/ablation/results.zarr --html /tmp/ablation.html""",
    "cluster": """\
examples:
  micfp cluster up --workers 4 && micfp features audio.zarr cube.zarr --cluster remote && micfp cluster down
  micfp cluster render slurm""",
    "warmup": """\
examples:
  pip install . && micfp warmup
  RUN micfp warmup   # in a worker image's Dockerfile, after installing micfp""",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written; each option's default shown, comma lists as typed.

    No default is shown for flags, for options without one (``None``: their help says what
    happens) or when the help already names it.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool) or default == ()):
            return text
        if isinstance(default, (tuple, list)):
            shown = ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in default)
        else:
            shown = f"{default:g}" if isinstance(default, float) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and point to ``--help``), like micfp's own."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` and every sub-command the help formatter, and each command its examples."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.epilog is None and name in EXAMPLES:
                    sub.epilog = EXAMPLES[name]
                finish(sub)
    return parser


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (blanks dropped)."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


def choice_list(choices: tuple[str, ...], what: str):
    """An argument type: a comma-separated list whose every item is one of ``choices``.

    argparse's own ``choices`` checks a whole value, not the items of a list.
    """

    def parse(text: str) -> tuple[str, ...]:
        items = names(text)
        bad = [x for x in items if x not in choices]
        if bad or not items:
            got = f"unknown {what} {bad[0]!r}" if bad else f"no {what} given"
            raise argparse.ArgumentTypeError(f"{got}; choose from {', '.join(choices)}")
        return items

    return parse


def listing(choices: tuple[str, ...]) -> str:
    """Choices as the help shows them: ``a, b or c``."""
    return ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
