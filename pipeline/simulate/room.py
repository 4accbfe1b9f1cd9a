"""The room: geometry per session, image-source impulse responses, and the room-noise recipe."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

#: Shoebox dimensions (m) and reverberation time of the roughly sound-proofed room.
ROOM_DIM = (4.2, 3.6, 2.6)
RT60_S = 0.18
#: Image-source order: enough for the early decay, kept modest so the IR stays short (~0.15 s).
MAX_ORDER = 12
#: Preamp knobs are re-set each session: per-microphone gain offset, standard deviation in dB.
GAIN_JITTER_DB = 0.35
SPEAKER_POS = (1.3, 1.8, 1.25)
#: Directivity index of the loudspeaker (assumed, small two-way monitor): the omnidirectional image
#: sources are attenuated by this much after the direct sound, since a real box sends less energy
#: into the room than on axis.
SPEAKER_DI_DB = 6.0
#: Arm's length from the loudspeaker, m, and the semicircle of microphone angles (degrees).
ARM_M = 0.7
ANGLES_DEG = (-40.0, -20.0, 0.0, 20.0, 40.0)
#: Room-noise level (dB(A) SPL, roughly sound-proofed room) and mains hum level (dB SPL).
ROOM_NOISE_DBA = 18.0
HUM_DB_SPL = 12.0
MAINS_HZ = 50.0
#: Loudspeaker vented-box roll-off (Hz, 4th order).
SPEAKER_HP_HZ = 42.0
#: Position policies: ``rotate`` re-positions the microphones every session (no microphone keeps
#: its slot), ``fixed`` keeps the first session's positions (the thesis's own set-up).
POSITION_POLICIES = ("rotate", "fixed")


@dataclass(frozen=True)
class Room:
    """A shoebox room, its loudspeaker and the semicircle of microphone slots.

    Parameters
    ----------
    dim : tuple of float
        Shoebox dimensions, m.
    rt60_s : float
        Reverberation time (Sabine), s.
    noise_dba : float
        Room-noise level, dB(A) SPL.
    hum_db_spl : float
        Mains hum level of the fundamental, dB SPL.
    mains_hz : float
        Mains frequency, Hz.
    speaker_pos : tuple of float
        Loudspeaker position, m.
    arm_m : float
        Nominal loudspeaker-to-microphone distance, m (each session jitters it by +-6 cm).
    angles_deg : tuple of float
        Microphone slots on the semicircle, one per microphone, degrees.
    max_order : int
        Image-source order.
    speaker_hp_hz : float
        Low roll-off of the loudspeaker (4th order), Hz.
    noise_slope_db_oct : float
        Slope of the room noise around 1 kHz, dB per octave.
    """

    dim: tuple[float, float, float]
    rt60_s: float
    noise_dba: float
    hum_db_spl: float
    mains_hz: float
    speaker_pos: tuple[float, float, float]
    arm_m: float
    angles_deg: tuple[float, ...]
    max_order: int = MAX_ORDER
    speaker_hp_hz: float = SPEAKER_HP_HZ
    noise_slope_db_oct: float = -3.0


#: The thesis room (the simulator's original and default room).
THESIS_ROOM = Room(dim=ROOM_DIM, rt60_s=RT60_S, noise_dba=ROOM_NOISE_DBA, hum_db_spl=HUM_DB_SPL,
                   mains_hz=MAINS_HZ, speaker_pos=SPEAKER_POS, arm_m=ARM_M, angles_deg=ANGLES_DEG)


@dataclass(frozen=True)
class SessionLayout:
    """Where the microphones stand and what the room sounds like in one session."""

    positions: tuple[int, ...]           # position index on the semicircle, per microphone (label order)
    distances_m: tuple[float, ...]       # loudspeaker-to-microphone distance, per microphone
    heights_m: tuple[float, ...]
    noise_db: float                      # room-noise level offset, dB
    noise_tilt_db_oct: float             # room-noise spectral tilt change, dB/octave
    gains_db: tuple[float, ...]          # preamp knob offsets this session, per microphone


@lru_cache(maxsize=64)
def session_layout(seed: int, session_index: int, n_mics: int = 5, room: Room = THESIS_ROOM,
                   positions: str = "rotate") -> SessionLayout:
    """Microphone positions and slightly changed room noise and preamp gains for a session.

    With ``positions="rotate"`` the positions are a permutation of the semicircle slots that
    differs from the previous session's for every microphone, so position is not confounded with
    identity. With ``"fixed"`` every session keeps the first session's slots, distances and
    heights (the microphones stayed on their stands); room noise and gains still change.
    """
    if positions not in POSITION_POLICIES:
        raise ValueError(f"unknown position policy {positions!r}; expected one of {', '.join(POSITION_POLICIES)}")
    if len(room.angles_deg) != n_mics:
        raise ValueError(f"the room has {len(room.angles_deg)} microphone slots, not {n_mics}")
    rng = np.random.default_rng([seed, session_index, 0xA0])
    perm = rng.permutation(n_mics)
    if session_index > 0 and positions == "rotate":
        prev = session_layout(seed, session_index - 1, n_mics, room, positions).positions
        while any(int(p) == q for p, q in zip(perm, prev)):
            perm = rng.permutation(n_mics)
    # Drawn in every case (same stream order as before position policies existed).
    distances = tuple(float(d) for d in room.arm_m + rng.uniform(-0.06, 0.06, n_mics))
    heights = tuple(float(h) for h in room.speaker_pos[2] + rng.uniform(-0.03, 0.03, n_mics))
    layout = SessionLayout(
        positions=tuple(int(p) for p in perm),
        distances_m=distances,
        heights_m=heights,
        noise_db=float(rng.uniform(-0.5, 0.5)),
        noise_tilt_db_oct=float(rng.uniform(-0.15, 0.15)),
        gains_db=tuple(float(g) for g in rng.normal(0.0, GAIN_JITTER_DB, n_mics)),
    )
    if positions == "fixed" and session_index > 0:
        first = session_layout(seed, 0, n_mics, room, positions)
        layout = replace(layout, positions=first.positions, distances_m=first.distances_m,
                         heights_m=first.heights_m)
    return layout


def mic_positions(layout: SessionLayout, room: Room = THESIS_ROOM) -> np.ndarray:
    """(3, n_mics) microphone coordinates, m."""
    ang = np.radians(np.asarray(room.angles_deg)[list(layout.positions)])
    d = np.asarray(layout.distances_m)
    return np.stack([room.speaker_pos[0] + d * np.cos(ang), room.speaker_pos[1] + d * np.sin(ang),
                     np.asarray(layout.heights_m)])


@lru_cache(maxsize=16)
def room_irs(layout: SessionLayout, sample_rate: int, room: Room = THESIS_ROOM) -> tuple[np.ndarray, ...]:
    """Image-source impulse responses loudspeaker -> each microphone (direct path ~ 1/r)."""
    import pyroomacoustics as pra

    e_abs, _ = pra.inverse_sabine(room.rt60_s, list(room.dim))
    shoebox = pra.ShoeBox(list(room.dim), fs=sample_rate, materials=pra.Material(e_abs),
                          max_order=room.max_order, air_absorption=False)
    shoebox.add_source(list(room.speaker_pos))
    shoebox.add_microphone_array(mic_positions(layout, room))
    shoebox.compute_rir()
    out = []
    for r in shoebox.rir:
        h = np.asarray(r[0], np.float64).copy()
        i = int(np.argmax(np.abs(h))) + int(0.002 * sample_rate)  # keep 2 ms after the direct sound
        h[i:] *= 10 ** (-SPEAKER_DI_DB / 20)
        out.append(h)
    return tuple(out)


def speaker_response_db(f: np.ndarray, angle_deg: float = 0.0, hp_hz: float = SPEAKER_HP_HZ) -> np.ndarray:
    """Loudspeaker (small two-way monitor, assumed) on- and off-axis response, dB.

    Vented-box roll-off below ~50 Hz, gentle tweeter roll-off above 18 kHz, and an
    off-axis high-frequency loss growing with angle (beaming of the drivers).
    """
    from .microphones import bump_db, highpass_db, lowpass_db, shelf_db

    db = highpass_db(f, hp_hz, 4) + lowpass_db(f, 21000.0, 2) + bump_db(f, 2200.0, -0.8, 0.4)
    return db + shelf_db(f, 8000.0, -2.0 * (angle_deg / 90.0) ** 2, 0.5)


def room_noise_db(f: np.ndarray, layout: SessionLayout, slope_db_oct: float = -3.0) -> np.ndarray:
    """Room-noise power spectrum shape, dB re 1 kHz: pinkish (-3 dB/oct), steeper above 4 kHz."""
    f = np.maximum(f, 1.0)
    lo = np.log2(f / 1000.0)
    db = slope_db_oct * lo + layout.noise_tilt_db_oct * lo - 4.0 * np.log2(1 + f / 4000.0)
    return np.where(f < 15, db - 12 * np.log2(15 / f), db)
