"""``micfp <command> --help``: every positional explained, choices, defaults and examples; one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli.main import COMMANDS, build_parser

#: Per command, what its help must show: a choice list and a default (None: the command has no
#: option with fixed choices or a default worth showing).
SHOWS = {
    "demo": ("{tiny,small,thesis}", "(default: small)"),
    "simulate": ("{zarr,wav}", "(default: 3,1.5)"),
    "ingest": ("{auto,kaggle,manifest,tree}", "(default: auto)"),
    "features": ("thesis, spectral, channel, session-relative or all", "(default: 0.5,1,2)"),
    "evaluate": ("random, session, grouped-kfold, leave-sound-type-out, verification, open-set or enrolled-verification", "(default: session)"),
    "export": ("fixed or silence", "(default: all)"),
    "info": (None, None),
    "train": ("micfp_et or micfp_auto", "(default: 0.99)"),
    "identify": ("{calibrated,mean-log,vote}", "(default: 3)"),
    "verify": (None, "(default: model.skops)"),
    "run": (None, None),
    "report": (None, None),
    "cluster": ("{up,status,down,certs,profiles,render}", None),
    "warmup": (None, None),
}


def micfp(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=120)


def test_every_command_is_listed():
    assert set(SHOWS) == set(COMMANDS)


@pytest.mark.parametrize("cmd", sorted(SHOWS))
def test_help_shows_choices_defaults_and_examples(cmd):
    p = micfp(cmd, "--help")
    assert p.returncode == 0, p.stderr
    text = " ".join(p.stdout.split())  # argparse wraps lines
    choices, default = SHOWS[cmd]
    assert "examples:" in text and f"micfp {cmd} " in text.split("examples:", 1)[1]
    for expected in (choices, default):
        if expected is not None:
            assert expected in text
    # every positional argument says what it is
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[cmd]
    for action in sub._actions:
        if not action.option_strings and action.dest not in ("action",):
            assert action.help, f"micfp {cmd}: positional {action.dest!r} has no help"


def test_choices_agree_with_the_library():
    from pipeline.cli import arguments
    from pipeline.evaluation.models import CLASSIFIERS
    from pipeline.evaluation.protocols import PROTOCOLS
    from pipeline.features import SilenceSettings
    from pipeline.features.cube import SEGMENTATIONS
    from pipeline.features.sets import DEFAULT_FEATURE_SETS, FEATURE_SETS
    from pipeline.identify.identify import AGGREGATIONS

    assert arguments.FEATURE_SETS == FEATURE_SETS and arguments.SEGMENTATIONS == SEGMENTATIONS
    assert arguments.DEFAULT_FEATURE_SETS == DEFAULT_FEATURE_SETS
    assert arguments.PROTOCOLS == PROTOCOLS and arguments.CLASSIFIERS == CLASSIFIERS
    assert arguments.AGGREGATIONS == AGGREGATIONS
    assert (arguments.SILENCE_THRESHOLD_DB, arguments.MIN_SILENCE_S) == (SilenceSettings().threshold_db,
                                                                         SilenceSettings().min_silence_s)


@pytest.mark.faults
@pytest.mark.parametrize("args, message", [
    (["evaluate", "c.zarr", "out", "--protocol", "session,kfold"],
     "argument --protocol: unknown protocol 'kfold'; choose from random, session"),
    (["features", "s.zarr", "c.zarr", "--segmentation", "silent"], "unknown segmentation 'silent'"),
    (["train", "c.zarr", "m.skops", "--classifier", "xgboost"], "invalid choice: 'xgboost'"),
    (["export", "c.zarr"], "the following arguments are required: out"),
])
def test_bad_arguments_are_one_line(tmp_path, args, message):
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and message in p.stderr and "--help" in p.stderr, p.stderr
