"""Named studios: definitions, n-microphone rendering, position policies, what simulate writes."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys

import numpy as np
import pytest

from pipeline.simulate import STUDIOS, StudioPlan, frequency_response, get_studio, render_block
from pipeline.simulate.microphones import unit_deviation_db
from pipeline.simulate.room import POSITION_POLICIES, session_layout

#: sha256 of both sessions of ``StudioPlan(minutes_per_session=(0.1, 0.05), seed=7)`` rendered by the
#: code on main before studios existed (db01e39): the thesis studio must stay bit-identical.
THESIS_SHA256 = "5480e6079d65703c253f1b6bf327031116cc2fbdd515c926fa8df069c0d8a251"


def _sha(plan: StudioPlan) -> str:
    h = hashlib.sha256()
    for s in plan.sessions:
        h.update(render_block(plan, s, 0, plan.n_samples(s)).tobytes())
    return h.hexdigest()


def test_thesis_studio_is_bit_identical_to_the_original_simulator():
    plan = StudioPlan(minutes_per_session=(0.1, 0.05), seed=7)
    assert plan == StudioPlan(minutes_per_session=(0.1, 0.05), seed=7, studio="thesis")
    assert _sha(plan) == THESIS_SHA256
    # Its identity (writer.plan_checksum) is unchanged too: stores written before studios resume.
    assert repr(plan) == "StudioPlan(minutes_per_session=(0.1, 0.05), seed=7, sample_rate=48000, sources=None)"
    assert "studio='dev'" in repr(StudioPlan(studio="dev"))
    from pipeline.simulate.writer import plan_checksum, plan_identity

    # The WAV ledger's plan, as written before studios existed: an interrupted thesis run resumes.
    assert plan_identity(plan) == {"minutes_per_session": [0.1, 0.05], "seed": 7, "sample_rate": 48000,
                                   "sources": None}
    other = StudioPlan(minutes_per_session=(0.1, 0.05), seed=7, studio="heldout", positions="fixed")
    assert plan_identity(other)["studio"] == "heldout" and plan_identity(other)["positions"] == "fixed"
    assert plan_checksum(other) != plan_checksum(plan)


def test_studio_definitions():
    assert list(STUDIOS) == ["thesis", "dev", "heldout"]
    for st in STUDIOS.values():
        assert [m.label for m in st.mics] == list(range(1, len(st.mics) + 1))
        assert len({m.name for m in st.mics}) == len(st.mics)
        assert len(st.room.angles_deg) == len(st.mics)
        assert all(all(0 < c < d for c, d in zip(_slot(st, k), st.room.dim)) for k in range(len(st.mics)))
    assert STUDIOS["thesis"].model_groups() == {"Neumann KM 184": [3, 4]}
    dev, held = STUDIOS["dev"], STUDIOS["heldout"]
    assert len(dev.mics) == 10 and 8 <= len(held.mics) <= 9
    assert sorted(len(v) for v in dev.model_groups().values()) == [2, 3]
    assert [len(v) for v in held.model_groups().values()] == [2]
    assert {"dynamic", "condenser", "electret", "lavalier"} <= {m.kind for m in dev.mics}
    assert "lavalier" in {m.kind for m in held.mics}
    # Held out means held out: no model and no room shared with the tuning studios.
    assert not set(held.models.values()) & (set(dev.models.values()) | set(STUDIOS["thesis"].models.values()))
    assert len({st.room for st in STUDIOS.values()}) == 3


def _slot(st, k):
    ang = np.radians(st.room.angles_deg[k])
    x, y, z = st.room.speaker_pos
    return x + st.room.arm_m * np.cos(ang), y + st.room.arm_m * np.sin(ang), z


def test_units_of_one_model_differ_as_little_as_the_km184_pair():
    f = np.geomspace(30, 18000, 400)
    thesis = STUDIOS["thesis"].mics
    km = np.abs(frequency_response(thesis[2], f) - frequency_response(thesis[3], f)).max()
    for name in ("dev", "heldout"):
        st = STUDIOS[name]
        by_label = {m.label: m for m in st.mics}
        for labels in st.model_groups().values():
            for a, b in zip(labels[:-1], labels[1:]):
                d = np.abs(frequency_response(by_label[a], f) - frequency_response(by_label[b], f)).max()
                assert 0.3 < d <= km + 0.01, (name, a, b, d, km)
    for m in STUDIOS["dev"].mics + STUDIOS["heldout"].mics:
        assert np.abs(unit_deviation_db(m, f)).max() < 1.0


def test_lavaliers_roll_off_low_and_rise_in_presence():
    f = np.array([60.0, 1000.0, 8000.0])
    for m in (m for st in STUDIOS.values() for m in st.mics if m.kind == "lavalier"):
        lo, mid, hi = frequency_response(m, f)
        assert lo < mid - 3 and hi > mid + 2 and m.self_noise_dba >= 23, m.name


def test_dev_studio_renders_ten_microphones_deterministically():
    plan = StudioPlan(minutes_per_session=(0.15, 0.05), seed=2, studio="dev")
    n = plan.n_samples("day1")
    whole = render_block(plan, "day1", 0, n)
    assert whole.shape == (10, n) and whole.dtype == np.int16
    cuts = [0, 1234, 131072, n]
    parts = np.concatenate([render_block(plan, "day1", a, b) for a, b in zip(cuts[:-1], cuts[1:])], axis=1)
    np.testing.assert_array_equal(whole, parts)
    # Programme audible on every microphone in its first item, far above the gap before it; rows distinct.
    a, b, _ = plan.segments("day1")[0]
    sr = plan.sample_rate
    item = whole[:, int(a * sr): int(b * sr)] / 32768.0
    gap = whole[:, int(0.1 * sr): int((a - 0.1) * sr)] / 32768.0
    level, floor = (10 * np.log10(np.mean(x**2, axis=1)) for x in (item, gap))
    assert np.all((level > -45) & (level < -10) & (level - floor > 25)), (level, floor)
    assert len({r.tobytes() for r in whole}) == 10
    held = StudioPlan(minutes_per_session=(0.05, 0.05), seed=2, studio="heldout")
    assert render_block(held, "day1", 0, 4800).shape == (9, 4800)


@pytest.mark.parametrize("studio", ["dev", "heldout"])
def test_fixed_positions_stay_rotated_positions_move(studio):
    room, n = STUDIOS[studio].room, len(STUDIOS[studio].mics)
    rot = [session_layout(5, i, n, room, "rotate") for i in range(3)]
    fix = [session_layout(5, i, n, room, "fixed") for i in range(3)]
    for a, b in zip(rot[:-1], rot[1:]):
        assert all(p != q for p, q in zip(a.positions, b.positions))  # nobody keeps a slot
    for a in fix[1:]:
        assert (a.positions, a.distances_m, a.heights_m) == (fix[0].positions, fix[0].distances_m, fix[0].heights_m)
        assert a.gains_db != fix[0].gains_db  # preamps are still re-set each session
    assert fix[0] == rot[0]  # the first session is the same set-up either way
    plan = StudioPlan(minutes_per_session=(0.05, 0.05), seed=5, studio=studio, positions="fixed")
    assert plan.position_policy == "fixed" and StudioPlan(studio=studio).position_policy == "rotate"


@pytest.mark.faults
def test_unknown_studio_or_position_policy_is_refused():
    with pytest.raises(ValueError, match="unknown studio 'nope'; expected one of thesis, dev, heldout"):
        StudioPlan(studio="nope")
    with pytest.raises(ValueError, match="unknown position policy 'sideways'"):
        StudioPlan(positions="sideways")
    with pytest.raises(ValueError, match="unknown studio"):
        get_studio("")


def test_cli_choices_match_the_library():
    from pipeline.cli import arguments

    assert arguments.STUDIOS == tuple(STUDIOS) and arguments.POSITION_POLICIES == POSITION_POLICIES


def test_cli_parses_studio_and_positions():
    from pipeline.cli.main import build_parser

    args = build_parser().parse_args(["simulate", "out.zarr", "--studio", "heldout", "--positions", "fixed"])
    assert (args.studio, args.positions) == ("heldout", "fixed")
    args = build_parser().parse_args(["simulate", "out.zarr"])
    assert (args.studio, args.positions) == ("thesis", None)


@pytest.mark.faults
@pytest.mark.parametrize("option", [["--studio", "kitchen"], ["--positions", "sideways"]])
def test_cli_bad_studio_is_one_line(tmp_path, option):
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "simulate", str(tmp_path / "o.zarr"), *option],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and option[1] in lines[0] and "invalid choice" in lines[0], r.stderr
    assert not (tmp_path / "o.zarr").exists()


def test_simulate_writes_models(tmp_path, client):
    """WAV layout: mics.csv has label,name,model; the Zarr store records studio, positions, models."""
    from pipeline.artifacts.store import AudioStore
    from pipeline.simulate.writer import simulate_to_store, simulate_to_wav

    plan = StudioPlan(minutes_per_session=(0.05, 0.05), seed=1, studio="dev", positions="fixed")
    out = simulate_to_wav(plan, str(tmp_path / "wav"), client, quiet=True)
    with open(out / "mics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label", "name", "model"] and len(rows) == 10
    assert [r["model"] for r in rows if r["name"].startswith("Audio-Technica")] == ["Audio-Technica AT2020"] * 3
    assert sorted(p.name for p in (out / "day1").glob("mic-*.wav")) == sorted(f"mic-{k}.wav" for k in range(1, 11))

    store = simulate_to_store(plan, str(tmp_path / "a.zarr"), client, quiet=True)
    meta = AudioStore.open(store.path).meta
    assert meta["studio"] == "dev" and meta["positions"] == "fixed"
    assert meta["models"] == {r["label"]: r["model"] for r in rows}
    assert meta["mics"] == {r["label"]: r["name"] for r in rows}
    assert len(store.recordings()) == 20
    rec = next(r for r in store.recordings() if r.id == "day2-mic10")
    np.testing.assert_array_equal(store.group["audio"]["day2-mic10"][:], render_block(plan, "day2", 0, rec.n_samples)[9])



def _workflow(tmp_path, entry: str):
    from pipeline.workflow.config import load_workflow

    cfg = tmp_path / "w.toml"
    cfg.write_text(f"[corpus]\nsimulate = {{ minutes_per_session = [0.2, 0.1], {entry} }}\n"
                   '[[grid]]\nclip_seconds = [2.0]\nfeature_sets = ["channel"]\nclassifiers = ["micfp_lr"]\n')
    return cfg, (lambda: load_workflow(cfg, out=str(tmp_path / "out")))


def test_workflow_config_takes_studio_and_positions(tmp_path):
    from pipeline.workflow.corpus import _plan

    _, load = _workflow(tmp_path, 'studio = "heldout", positions = "fixed"')
    plan = _plan(load().corpus)
    assert (plan.studio, plan.position_policy, len(plan.mics)) == ("heldout", "fixed", 9)


@pytest.mark.faults
@pytest.mark.parametrize("entry, message", [('studio = "attic"', "studio = 'attic': expected one of thesis, dev, heldout"),
                                            ('positions = "loose"', "positions = 'loose': expected one of rotate, fixed")])
def test_workflow_config_bad_studio_is_one_line(tmp_path, entry, message):
    from pipeline.errors import ConfigError

    cfg, load = _workflow(tmp_path, entry)
    with pytest.raises(ConfigError, match=message) as exc:
        load()
    assert "\n" not in str(exc.value) and str(cfg) in str(exc.value)
