"""Build a ``micfp simulate --sources`` folder from real recordings installed as Debian packages.

    python benchmarks/corpus/build_sources.py OUT --split dev|heldout [--minutes 20] [--seed 0]

Writes ``OUT/speech1``, ``OUT/speech2`` and ``OUT/music`` (mono 16-bit FLAC at 44.1 kHz; the
simulator resamples) and ``OUT/provenance.csv`` (which installed file went into which output
file). ``sweep`` and ``lowfreq`` have no folder, so the simulator synthesises them. The two
splits share no speaker, language or music track (benchmarks/corpus/README.md). Deterministic:
sorted file lists and a seeded shuffle. Nothing is downloaded; run ``install.sh`` first.
An existing OUT built with the same settings is reused; any other existing OUT is refused.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

FILLETS = Path("/usr/share/games/fillets-ng")
WESNOTH_MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
DRASCULA_MUSIC = Path("/usr/share/scummvm/drascula/audio")
ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
RATE = 44100
MARKER = ".micfp-corpus.json"
#: Version of the recipe: a changed recipe rebuilds.
RECIPE = 1


def fillets_voice(lang: str, character: str | None = None) -> list[Path]:
    """Fish Fillets NG voice files of one language (``cs``, ``nl``, ``en``), optionally of one character.

    File names are ``<level>-<character>-<line>.ogg``; ``v`` is the big fish and ``m`` the small
    fish, each voiced by one actor per language.
    """
    files = sorted((FILLETS / "sound").glob(f"*/{lang}/*.ogg"))
    if character is not None:
        files = [f for f in files if f.stem.split("-")[1:2] == [character]]
    return files


def _split_tracks(files: list[Path], parity: int) -> list[Path]:
    return [f for i, f in enumerate(sorted(files)) if i % 2 == parity]


def plan_split(split: str) -> dict[str, list[Path]]:
    """The installed files behind each sound type of a split (no speaker, language or track in both)."""
    wesnoth = sorted(WESNOTH_MUSIC.glob("*.ogg"))
    if split == "dev":
        return {"speech1": fillets_voice("cs", "v"), "speech2": fillets_voice("cs", "m"),
                "music": _split_tracks(wesnoth, 0) + sorted((FILLETS / "music").glob("*.ogg"))}
    alsa = [p for p in sorted(ALSA_SOUNDS.glob("*.wav")) if p.stem != "Noise"]
    return {"speech1": fillets_voice("nl", "v"), "speech2": fillets_voice("nl", "m") + fillets_voice("en") + alsa,
            "music": _split_tracks(wesnoth, 1) + sorted(DRASCULA_MUSIC.glob("*.ogg"))}


def read_mono(path: Path) -> np.ndarray:
    """A file as mono float64 at :data:`RATE`."""
    y, fs = sf.read(str(path), dtype="float64", always_2d=True)
    y = y.mean(axis=1)
    return soxr.resample(y, fs, RATE) if fs != RATE else y


def trim(y: np.ndarray, rel_db: float = -45.0) -> np.ndarray:
    """Cut leading and trailing near-silence (below ``rel_db`` re the peak, 10-ms frames)."""
    if not y.size or not np.any(y):
        return y[:0]
    hop = RATE // 100
    n = y.size // hop
    env = np.sqrt(np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1)) if n else np.abs(y)
    on = np.flatnonzero(env > np.abs(y).max() * 10 ** (rel_db / 20))
    return y[on[0] * hop: (on[-1] + 1) * hop] if on.size else y[:0]


def build_speech(files: list[Path], rng, minutes: float, part_s: float) -> tuple[list[np.ndarray], list[list[str]]]:
    """Utterances in seeded order, each at the same rms, joined by 0.25-0.7 s pauses into parts of
    about ``part_s`` seconds, until ``minutes`` are reached. Returns the parts and their sources."""
    order = [files[i] for i in rng.permutation(len(files))]
    parts, sources, cur, cur_src, total = [], [], [], [], 0
    for f in order:
        y = trim(read_mono(f))
        if y.size < RATE // 4:
            continue
        y = y * (0.1 / np.sqrt(np.mean(y**2)))  # -20 dBFS rms: utterances were recorded at many levels
        cur += [y, np.zeros(int(rng.uniform(0.25, 0.7) * RATE))]
        cur_src.append(str(f))
        total += y.size + cur[-1].size
        if sum(c.size for c in cur) >= part_s * RATE:
            parts.append(np.concatenate(cur))
            sources.append(cur_src)
            cur, cur_src = [], []
        if total >= minutes * 60 * RATE:
            break
    if cur:
        parts.append(np.concatenate(cur))
        sources.append(cur_src)
    return parts, sources


def build_music(files: list[Path], rng, minutes: float, excerpt_s: float) -> tuple[list[np.ndarray], list[list[str]]]:
    """An excerpt of up to ``excerpt_s`` seconds (seeded offset) of each track in seeded order,
    until ``minutes`` are reached. Returns the excerpts and their sources."""
    order = [files[i] for i in rng.permutation(len(files))]
    parts, sources, total = [], [], 0
    for f in order:
        y = trim(read_mono(f))
        n = int(excerpt_s * RATE)
        if y.size < 10 * RATE:
            continue
        a = int(rng.integers(0, max(1, y.size - n)))
        y = y[a: a + n]
        parts.append(y)
        sources.append([str(f)])
        total += y.size
        if total >= minutes * 60 * RATE:
            break
    return parts, sources


def build(out: Path, split: str, minutes: float, seed: int) -> Path:
    """Build (or reuse) the sources folder ``out`` of ``split``; returns ``out``."""
    settings = {"recipe": RECIPE, "split": split, "minutes": minutes, "seed": seed}
    marker = out / MARKER
    if out.exists():
        if not marker.is_file():
            raise SystemExit(f"{out}: exists and is not a corpus this script built; choose another folder")
        if json.loads(marker.read_text()) == settings:
            return out
    plan = plan_split(split)
    missing = [t for t, files in plan.items() if not files]
    if missing:
        raise SystemExit(f"no installed recordings for {', '.join(missing)}: run benchmarks/corpus/install.sh")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for k, (sound_type, files) in enumerate(sorted(plan.items())):
        rng = np.random.default_rng([seed, k, 0xC0])
        if sound_type == "music":
            parts, sources = build_music(files, rng, minutes, excerpt_s=90.0)
        else:
            parts, sources = build_speech(files, rng, minutes, part_s=120.0)
        (tmp / sound_type).mkdir(parents=True)
        for i, (y, src) in enumerate(zip(parts, sources)):
            name = f"{sound_type}/part-{i:03d}.flac"
            sf.write(str(tmp / name), np.clip(y * (0.9 / max(np.abs(y).max(), 1e-9)), -1, 1), RATE,
                     subtype="PCM_16")
            rows += [[name, s] for s in src]
    with open(tmp / "provenance.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["file", "source"], *rows])
    (tmp / MARKER).write_text(json.dumps(settings))
    if out.exists():  # an older build of this script (marker checked above)
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="sources folder to write (speech1, speech2, music)")
    p.add_argument("--split", choices=["dev", "heldout"], required=True,
                   help="dev: Czech speech and half the Wesnoth tracks + Fish Fillets music; heldout: Dutch and "
                        "English speech, the other Wesnoth tracks + Drascula music")
    p.add_argument("--minutes", type=float, default=20.0, help="minutes of audio per sound type (default 20)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = build(args.out.resolve(), args.split, args.minutes, args.seed)
    n = {t: len(list((out / t).glob("*.flac"))) for t in ("speech1", "speech2", "music")}
    print(f"{out}: " + ", ".join(f"{t} {k} files" for t, k in n.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
