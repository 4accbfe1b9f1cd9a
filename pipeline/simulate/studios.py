"""Named studios: a microphone set, a room and a position policy.

``thesis`` is the simulator's original studio (five microphones, one room). ``dev`` is a
tuning studio with ten microphones of other makes and types, and ``heldout`` a third room with
nine more that no tuning may look at (issue 20: report on it separately).

The response curves below are **assumed**: smooth primitives (roll-offs, Gaussian bumps in
log-frequency, shelves; see :mod:`.microphones`) shaped after typical published response plots of
each make and type, with sensitivities and self-noise near the data sheets as we remember them.
They are plausible for their type (dynamics: limited top end, presence rise; condensers:
extended and flat or bright; electret lavaliers: higher self-noise, low-frequency roll-off,
presence rise), not measurements of those very products. Units of one model share the model
curve and differ by a small smooth unit deviation of the size of the KM 184 pair's
(:func:`unit_bumps`) and about a decibel of self-noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .microphones import MICS, MicModel, bump_db
from .room import POSITION_POLICIES, THESIS_ROOM, Room


@dataclass(frozen=True)
class Studio:
    """A simulated studio: which microphones, which room, how positions change between sessions.

    Parameters
    ----------
    name : str
        The studio's name (``micfp simulate --studio``).
    mics : tuple of MicModel
        The microphones in label order; labels and names are unique.
    room : Room
        The room, loudspeaker and microphone slots (one slot per microphone).
    positions : str
        ``"rotate"`` (microphones change slots between sessions) or ``"fixed"`` (they keep them).
    description : str
        One line for listings.
    """

    name: str
    mics: tuple[MicModel, ...]
    room: Room
    positions: str = "rotate"
    description: str = ""

    def __post_init__(self):
        labels, names = [m.label for m in self.mics], [m.name for m in self.mics]
        if len(set(labels)) != len(labels) or len(set(names)) != len(names):
            raise ValueError(f"studio {self.name!r}: microphone labels and names must be unique")
        if len(self.room.angles_deg) != len(self.mics):
            raise ValueError(f"studio {self.name!r}: {len(self.mics)} microphones but "
                             f"{len(self.room.angles_deg)} slots in the room")
        if self.positions not in POSITION_POLICIES:
            raise ValueError(f"studio {self.name!r}: unknown position policy {self.positions!r}")

    @property
    def models(self) -> dict[int, str]:
        """``{label: model}``: units sharing a model form an identical-model group."""
        return {m.label: m.model for m in self.mics}

    def model_groups(self) -> dict[str, list[int]]:
        """``{model: labels}`` of the models with more than one unit."""
        groups: dict[str, list[int]] = {}
        for m in self.mics:
            groups.setdefault(m.model, []).append(m.label)
        return {k: v for k, v in groups.items() if len(v) > 1}


# Shapes of the unit-to-unit deviation: five broad bumps spread over the band, as the KM 184 pair's.
_UNIT_BANDS_HZ = ((70.0, 220.0), (400.0, 1500.0), (2000.0, 4500.0), (5000.0, 9000.0), (11000.0, 18000.0))
_UNIT_WIDTHS_OCT = (1.0, 0.8, 0.6, 0.6, 0.5)


def unit_bumps(seed: int) -> tuple[tuple[float, float, float], ...]:
    """A unit's deviation from its model curve: five broad bumps of 0.35-0.55 dB, random sign.

    The size and spread match the two KM 184 units of the thesis studio (assumed capsule
    tolerance); ``seed`` makes each unit's deviation its own and reproducible.
    """
    rng = np.random.default_rng([seed, 0x0417])
    out = []
    for (lo, hi), width in zip(_UNIT_BANDS_HZ, _UNIT_WIDTHS_OCT):
        f0 = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        gain = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.35, 0.55))
        out.append((round(f0, 1), round(gain, 3), width))
    return tuple(out)


#: Largest difference between two units of one model, dB: the KM 184 pair's (0.88 dB, docs/simulator.md).
MAX_UNIT_DIFFERENCE_DB = 0.88


def _group_deviations(seed: int, n: int) -> list[tuple[tuple[float, float, float], ...]]:
    """Unit deviations of ``n`` units of one model, scaled down (if needed) so that no two units
    differ by more than :data:`MAX_UNIT_DIFFERENCE_DB` anywhere in 20 Hz-20 kHz."""
    devs = [unit_bumps(seed * 16 + k) for k in range(n)]
    f = np.geomspace(20.0, 20000.0, 600)
    curves = [sum(bump_db(f, *b) for b in d) for d in devs]
    worst = max((np.abs(a - b).max() for i, a in enumerate(curves) for b in curves[i + 1:]), default=0.0)
    k = min(1.0, MAX_UNIT_DIFFERENCE_DB / worst) if worst else 1.0
    return [tuple((f0, round(g * k, 3), w) for f0, g, w in d) for d in devs]


def _units(first_label: int, model: str, n: int, self_noise: float | None, seed: int, **curve) -> list[MicModel]:
    """``n`` units of one model (``"<model> #k"`` when ``n > 1``), each with its own deviation.

    Self-noise of condenser units spreads by +-0.75 dB around the model's (assumed, as the KM 184 pair).
    """
    spread = np.linspace(-0.75, 0.75, n) if n > 1 else np.zeros(1)
    return [MicModel(label=first_label + k, name=f"{model} #{k + 1}" if n > 1 else model, model=model,
                     self_noise_dba=None if self_noise is None else float(self_noise + spread[k]),
                     unit_bumps=dev, **curve)
            for k, dev in enumerate(_group_deviations(seed, n))]


# --- dev: the tuning studio (10 microphones) -----------------------------------------------------
_SM58 = dict(kind="dynamic", sensitivity_mv_pa=1.85, highpass=(95.0, 2), lowpass=(12500.0, 3),
             bumps=((5000.0, 5.0, 0.55), (150.0, 1.0, 0.9), (9000.0, -2.0, 0.3)), saturation_pa=10.0)
_RE20 = dict(kind="dynamic", sensitivity_mv_pa=1.5, highpass=(45.0, 2), lowpass=(16000.0, 2),
             bumps=((2500.0, 1.0, 0.7), (6500.0, -1.2, 0.5)), saturation_pa=15.0)
_C414 = dict(kind="condenser", sensitivity_mv_pa=23.0, noise_tilt_db_oct=0.2, highpass=(25.0, 2),
             lowpass=(20500.0, 3), bumps=((12000.0, 1.5, 0.5), (4000.0, 0.8, 0.8)))
_AT2020 = dict(kind="condenser", sensitivity_mv_pa=14.1, noise_tilt_db_oct=0.2, highpass=(55.0, 1),
               lowpass=(18000.0, 3), bumps=((7000.0, 2.5, 0.7), (12500.0, 1.5, 0.3), (300.0, -0.5, 1.0)))
_NT5 = dict(kind="condenser", sensitivity_mv_pa=12.0, noise_tilt_db_oct=0.3, highpass=(30.0, 2),
            lowpass=(21000.0, 3), bumps=((11000.0, 1.8, 0.5), (3000.0, -0.5, 0.8)))
_ECM77 = dict(kind="lavalier", sensitivity_mv_pa=5.6, noise_tilt_db_oct=0.8, highpass=(110.0, 2),
              lowpass=(17000.0, 3), bumps=((7500.0, 4.0, 0.6), (12000.0, 3.0, 0.35)))
_ECM8000 = dict(kind="electret", sensitivity_mv_pa=10.0, noise_tilt_db_oct=0.6, highpass=(18.0, 2),
                lowpass=(19000.0, 2), bumps=((10000.0, 2.0, 0.5), (14000.0, 1.0, 0.3)))

DEV_MICS: tuple[MicModel, ...] = tuple(
    _units(1, "Shure SM58", 2, None, 101, **_SM58)
    + _units(3, "Electro-Voice RE20", 1, None, 102, **_RE20)
    + _units(4, "AKG C414 XLS", 1, 6.0, 103, **_C414)
    + _units(5, "Audio-Technica AT2020", 3, 20.0, 104, **_AT2020)
    + _units(8, "RODE NT5", 1, 16.0, 105, **_NT5)
    + _units(9, "Sony ECM-77B", 1, 24.0, 106, **_ECM77)
    + _units(10, "Behringer ECM8000", 1, 28.0, 107, **_ECM8000)
)

#: A larger, livelier, noisier room than the thesis's (assumed: a treated office).
DEV_ROOM = Room(dim=(5.5, 4.3, 2.8), rt60_s=0.3, noise_dba=26.0, hum_db_spl=16.0, mains_hz=50.0,
                speaker_pos=(1.6, 2.15, 1.3), arm_m=0.9, angles_deg=tuple(np.linspace(-67.5, 67.5, 10).tolist()),
                max_order=15, speaker_hp_hz=55.0, noise_slope_db_oct=-2.5)

# --- heldout: never used in tuning (9 microphones) -----------------------------------------------
_MD421 = dict(kind="dynamic", sensitivity_mv_pa=2.0, highpass=(60.0, 2), lowpass=(14000.0, 3),
              bumps=((4800.0, 3.5, 0.5), (1800.0, -1.0, 0.6), (100.0, 1.5, 0.8)), saturation_pa=14.0)
_M88 = dict(kind="dynamic", sensitivity_mv_pa=2.9, highpass=(35.0, 2), lowpass=(17000.0, 3),
            bumps=((3500.0, 2.0, 0.5), (9000.0, 3.0, 0.5), (200.0, 1.0, 1.0)), saturation_pa=14.0)
_U87 = dict(kind="condenser", sensitivity_mv_pa=28.0, noise_tilt_db_oct=0.2, highpass=(32.0, 2),
            lowpass=(18000.0, 4), bumps=((9000.0, 2.5, 0.6), (4000.0, 1.0, 0.8)))
_CMC6 = dict(kind="condenser", sensitivity_mv_pa=13.0, noise_tilt_db_oct=0.1, highpass=(35.0, 2),
             lowpass=(20000.0, 2), bumps=((10000.0, 0.8, 0.6), (15000.0, -1.0, 0.4)))
_MK012 = dict(kind="condenser", sensitivity_mv_pa=10.0, noise_tilt_db_oct=0.4, highpass=(40.0, 2),
              lowpass=(17000.0, 3), bumps=((6000.0, 2.5, 0.5), (11000.0, -2.0, 0.3), (14000.0, 2.0, 0.3)))
_ME2 = dict(kind="lavalier", sensitivity_mv_pa=20.0, noise_tilt_db_oct=0.8, highpass=(130.0, 2),
            lowpass=(16000.0, 3), bumps=((8000.0, 4.5, 0.5), (3000.0, 1.5, 0.8)))
_DPA4060 = dict(kind="lavalier", sensitivity_mv_pa=20.0, noise_tilt_db_oct=0.5, highpass=(90.0, 1),
                lowpass=(20000.0, 2), bumps=((10000.0, 3.0, 0.6),))
_MXL990 = dict(kind="condenser", sensitivity_mv_pa=15.0, noise_tilt_db_oct=0.4, highpass=(30.0, 2),
               lowpass=(18000.0, 3), bumps=((10000.0, 4.5, 0.5), (5000.0, 1.5, 0.5), (300.0, -1.0, 1.0)))

HELDOUT_MICS: tuple[MicModel, ...] = tuple(
    _units(1, "Sennheiser MD 421 II", 1, None, 201, **_MD421)
    + _units(2, "Beyerdynamic M 88 TG", 1, None, 202, **_M88)
    + _units(3, "Neumann U 87 Ai", 1, 12.0, 203, **_U87)
    + _units(4, "Schoeps CMC 6 MK 4", 2, 15.0, 204, **_CMC6)
    + _units(6, "Oktava MK-012", 1, 20.0, 205, **_MK012)
    + _units(7, "Sennheiser ME 2", 1, 30.0, 206, **_ME2)
    + _units(8, "DPA 4060", 1, 23.0, 207, **_DPA4060)
    + _units(9, "MXL 990", 1, 20.0, 208, **_MXL990)
)

#: A narrow, more reverberant room on 60 Hz mains, with the microphones further away (assumed).
HELDOUT_ROOM = Room(dim=(3.4, 5.1, 2.45), rt60_s=0.45, noise_dba=22.0, hum_db_spl=14.0, mains_hz=60.0,
                    speaker_pos=(1.0, 2.5, 1.2), arm_m=1.1, angles_deg=tuple(np.linspace(-60.0, 60.0, 9).tolist()),
                    max_order=18, speaker_hp_hz=38.0, noise_slope_db_oct=-3.5)

#: The named studios, by name.
STUDIOS: dict[str, Studio] = {s.name: s for s in (
    Studio("thesis", MICS, THESIS_ROOM, "rotate", "the thesis's five microphones in one small room (default)"),
    Studio("dev", DEV_MICS, DEV_ROOM, "rotate", "tuning studio: ten microphones of other makes, another room"),
    Studio("heldout", HELDOUT_MICS, HELDOUT_ROOM, "rotate",
           "held-out studio: nine more microphones in a third room, never used in tuning"),
)}


def get_studio(name: str) -> Studio:
    """The studio called ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    try:
        return STUDIOS[name]
    except KeyError:
        raise ValueError(f"unknown studio {name!r}; expected one of {', '.join(STUDIOS)}") from None
