"""Docs figures: the five simulated frequency responses and the KM 184 pair's difference, and the
responses of the ``dev`` and ``heldout`` studios.

Run ``python -m pipeline.simulate.figures docs/img/frequency_responses.png docs/img/studio_responses.png``.
"""

from __future__ import annotations

import sys

import numpy as np

from .microphones import MICS, frequency_response


def plot_responses(path: str) -> str:
    """Write the response figure to ``path`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = np.geomspace(20, 20000, 600)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, height_ratios=[2.2, 1])
    for i, mic in enumerate(MICS):
        ax.semilogx(f, frequency_response(mic, f) + 0 * i, label=f"{mic.label}: {mic.name}")
    ax.set_ylabel("response (dB re 1 kHz)")
    ax.set_ylim(-15, 9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", ncol=2)
    ax.set_title("Simulated microphone frequency responses")
    d = frequency_response(MICS[2], f) - frequency_response(MICS[3], f)
    ax2.semilogx(f, d, color="k", label="day 1 (nominal)")
    ax2.semilogx(f, frequency_response(MICS[2], f, "day2") - frequency_response(MICS[3], f, "day2"),
                 color="k", ls="--", lw=0.8, label="day 2 (with drift)")
    ax2.axhline(0, color="grey", lw=0.5)
    ax2.set_ylabel("KM 184 #1 - #2 (dB)")
    ax2.set_xlabel("frequency (Hz)")
    ax2.set_ylim(-2, 2)
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_studio_responses(path: str, studios=("dev", "heldout")) -> str:
    """Write the responses of each named studio's microphones (one panel per studio) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .studios import get_studio

    f = np.geomspace(20, 20000, 600)
    fig, axes = plt.subplots(len(studios), 1, figsize=(10.5, 3.4 * len(studios)), sharex=True)
    for ax, name in zip(np.atleast_1d(axes), studios):
        for mic in get_studio(name).mics:
            ax.semilogx(f, frequency_response(mic, f), label=f"{mic.label}: {mic.name} ({mic.kind})",
                        ls="--" if mic.model != mic.name else "-")
        ax.set_ylabel("response (dB re 1 kHz)")
        ax.set_ylim(-18, 9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_title(f"Studio {name!r}: simulated responses (assumed curves; dashed: units of one model)", fontsize=10)
    np.atleast_1d(axes)[-1].set_xlabel("frequency (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(plot_responses(sys.argv[1] if len(sys.argv) > 1 else "docs/img/frequency_responses.png"))
    if len(sys.argv) > 2:
        print(plot_studio_responses(sys.argv[2]))
