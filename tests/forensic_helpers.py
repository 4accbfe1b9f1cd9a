"""Synthetic clip features of six microphones over several sessions, for the forensic protocols' tests."""

import numpy as np
import pandas as pd

MICS = {1: "Dyn A", 2: "Dyn B", 3: "Cond #1", 4: "Cond #2", 5: "Ribbon", 6: "Lav"}


def synthetic(rng, n_per=40, sessions=("day1", "day2", "day3"), d=30, unit_gap=0.6):
    """Clips of six microphones: a channel offset per microphone (the two units of one model close)
    plus content shared by all microphones at the same time and a little per-clip noise."""
    base = rng.normal(0, 3, (7, d))
    base[4] = base[3] + unit_gap * rng.normal(0, 1, d)  # "Cond #2": one model's second unit
    X, rows = [], []
    for s in sessions:
        content = rng.normal(0, 1.0, (n_per, d))
        for lab in MICS:
            X.append(base[lab] + content + rng.normal(0, 0.3, (n_per, d)))
            rows += [{"mic": MICS[lab], "label": lab, "session": s, "recording": f"{s}-mic{lab}",
                      "sound_type": "music", "start_s": 2.0 * i, "clip_seconds": 2.0} for i in range(n_per)]
    return np.vstack(X).astype(np.float32), pd.DataFrame(rows)
