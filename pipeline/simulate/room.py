"""The room: geometry per session, image-source impulse responses, and the room-noise recipe."""

from __future__ import annotations

from dataclasses import dataclass
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
def session_layout(seed: int, session_index: int, n_mics: int = 5) -> SessionLayout:
    """Re-positioned microphones and slightly changed room noise for a session.

    Positions are a permutation of the semicircle slots that differs from the previous
    session's, so position is not confounded with identity.
    """
    rng = np.random.default_rng([seed, session_index, 0xA0])
    perm = rng.permutation(n_mics)
    if session_index > 0:
        prev = session_layout(seed, session_index - 1, n_mics).positions
        while any(int(p) == q for p, q in zip(perm, prev)):
            perm = rng.permutation(n_mics)
    return SessionLayout(
        positions=tuple(int(p) for p in perm),
        distances_m=tuple(float(d) for d in ARM_M + rng.uniform(-0.06, 0.06, n_mics)),
        heights_m=tuple(float(h) for h in SPEAKER_POS[2] + rng.uniform(-0.03, 0.03, n_mics)),
        noise_db=float(rng.uniform(-0.5, 0.5)),
        noise_tilt_db_oct=float(rng.uniform(-0.15, 0.15)),
        gains_db=tuple(float(g) for g in rng.normal(0.0, GAIN_JITTER_DB, n_mics)),
    )


def mic_positions(layout: SessionLayout) -> np.ndarray:
    """(3, n_mics) microphone coordinates, m."""
    ang = np.radians(np.asarray(ANGLES_DEG)[list(layout.positions)])
    d = np.asarray(layout.distances_m)
    return np.stack([SPEAKER_POS[0] + d * np.cos(ang), SPEAKER_POS[1] + d * np.sin(ang),
                     np.asarray(layout.heights_m)])


@lru_cache(maxsize=16)
def room_irs(layout: SessionLayout, sample_rate: int) -> tuple[np.ndarray, ...]:
    """Image-source impulse responses loudspeaker -> each microphone (direct path ~ 1/r)."""
    import pyroomacoustics as pra

    e_abs, _ = pra.inverse_sabine(RT60_S, list(ROOM_DIM))
    room = pra.ShoeBox(list(ROOM_DIM), fs=sample_rate, materials=pra.Material(e_abs),
                       max_order=MAX_ORDER, air_absorption=False)
    room.add_source(list(SPEAKER_POS))
    room.add_microphone_array(mic_positions(layout))
    room.compute_rir()
    out = []
    for r in room.rir:
        h = np.asarray(r[0], np.float64).copy()
        i = int(np.argmax(np.abs(h))) + int(0.002 * sample_rate)  # keep 2 ms after the direct sound
        h[i:] *= 10 ** (-SPEAKER_DI_DB / 20)
        out.append(h)
    return tuple(out)


def speaker_response_db(f: np.ndarray, angle_deg: float = 0.0) -> np.ndarray:
    """Loudspeaker (small two-way monitor, assumed) on- and off-axis response, dB.

    Vented-box roll-off below ~50 Hz, gentle tweeter roll-off above 18 kHz, and an
    off-axis high-frequency loss growing with angle (beaming of the drivers).
    """
    from .microphones import bump_db, highpass_db, lowpass_db, shelf_db

    db = highpass_db(f, 42.0, 4) + lowpass_db(f, 21000.0, 2) + bump_db(f, 2200.0, -0.8, 0.4)
    return db + shelf_db(f, 8000.0, -2.0 * (angle_deg / 90.0) ** 2, 0.5)


def room_noise_db(f: np.ndarray, layout: SessionLayout) -> np.ndarray:
    """Room-noise power spectrum shape, dB re 1 kHz: pinkish (-3 dB/oct), steeper above 4 kHz."""
    f = np.maximum(f, 1.0)
    lo = np.log2(f / 1000.0)
    db = -3.0 * lo + layout.noise_tilt_db_oct * lo - 4.0 * np.log2(1 + f / 4000.0)
    return np.where(f < 15, db - 12 * np.log2(15 / f), db)
