"""Recording folders: detect and read the thesis (Kaggle) layout, a manifest CSV or a labelled tree.

Layouts (see docs/spec.md, "Recording folders"):

- ``kaggle``: ``ROOT/<session>/<prefix>-<N>.wav`` (or .flac/.ogg), N the microphone label;
  optional ``ROOT/mics.csv`` (``label,name``) and ``ROOT/<session>/segments.csv``
  (``start_s,end_s,sound_type``).
- ``manifest``: a CSV with ``path,mic,session`` and optional ``sound_type,start_s,end_s``;
  relative paths are relative to the CSV's folder. ``mic`` is a label (int, names from a
  ``mics.csv`` beside the manifest) or a name (labels 1.. in sorted name order).
- ``tree``: every audio file under ROOT whose relative path matches ``--pattern``, a regular
  expression with a named group ``mic`` and optionally ``session`` (default: the parent
  folder). Default pattern: session = parent folder, mic = file stem.

Reading a layout never opens audio; it returns what it found plus every per-file problem
(unlabelled file, duplicate label, bad segment row), so the caller can report them all at once.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .audio import AUDIO_EXTENSIONS
from ..errors import ConfigError, InputError

LAYOUTS = ("auto", "kaggle", "manifest", "tree")
#: The thesis file names: anything, a dash, the label, an audio extension. Dots elsewhere are fine.
KAGGLE_NAME = re.compile(r"^(?P<prefix>.*)-(?P<label>\d+)\Z", re.DOTALL)  # DOTALL: any prefix, even a newline
DEFAULT_TREE_PATTERN = r"^(?:(?P<session>.+)/)?(?P<mic>[^/]+)\.[^./]+$"


@dataclass(frozen=True)
class SourceFile:
    """One audio file and whose recording it is."""

    path: str
    label: int
    mic: str
    session: str


@dataclass(frozen=True)
class Layout:
    """What a recording folder holds."""

    kind: str
    root: str
    files: tuple[SourceFile, ...]
    mics: dict[int, str]
    #: {session: ((start_s, end_s, sound_type), ...)} sorted by start.
    segments: dict[str, tuple] = field(default_factory=dict)
    #: {session: file the segments came from}, for messages.
    segment_files: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: {label: model} from ``mics.csv``'s optional ``model`` column: units sharing a model form an
    #: identical-model group (empty: the ``#N`` name rule decides, see ``evaluation.metrics``).
    models: dict[int, str] = field(default_factory=dict)


def is_audio(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def detect_layout(src: str, manifest: str | None = None) -> str:
    """``kaggle`` or ``manifest``; an unknown layout is an :class:`InputError`."""
    root = Path(src)
    if manifest or (root.is_file() and root.suffix.lower() == ".csv"):
        return "manifest"
    if not root.exists():
        raise InputError(f"{src}: no such file or folder")
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            if any(is_audio(f) and KAGGLE_NAME.match(f.stem) for f in sub.iterdir()):
                return "kaggle"
    raise InputError(f"{src}: unknown layout: no <session>/<prefix>-<N>.wav files and no manifest CSV; "
                     "use --manifest CSV or --layout tree --pattern REGEX")


def read_layout(src: str, kind: str = "auto", *, manifest: str | None = None, pattern: str | None = None,
                root_only: bool = False) -> Layout:
    """Read a recording folder (or manifest) of layout ``kind`` (``auto`` detects kaggle/manifest).

    A manifest may name files anywhere on disk (absolute paths, ``..``, links). With
    ``root_only``, every file outside the folder relative paths are read against (the
    recording folder; for a manifest, its folder, or SRC given with ``--manifest``) is a
    problem, symbolic links followed.
    """
    if kind not in LAYOUTS:
        raise ConfigError(f"unknown layout {kind!r}; choose one of {', '.join(LAYOUTS)}")
    # Absolute paths: workers may run in another directory (or on another host sharing it).
    src = os.path.abspath(src)
    manifest = os.path.abspath(manifest) if manifest else None
    if kind == "auto":
        kind = detect_layout(src, manifest)
    if kind == "manifest":
        layout, base = _read_manifest(src, manifest), _manifest_base(src, manifest)
    else:
        root = base = Path(src)
        if not root.is_dir():
            raise InputError(f"{src}: not a folder (the {kind} layout needs a folder of sessions)")
        layout = _read_kaggle(root) if kind == "kaggle" else _read_tree(root, pattern)
    if root_only:
        layout = dataclasses.replace(layout, problems=layout.problems + tuple(outside_root(layout.files, str(base))))
    return layout


# -- CSV helpers -----------------------------------------------------------------------------
def _csv_rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """(line number, row) of a CSV with the required columns; header problems raise."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in required if c not in cols]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(cols) or 'none'})")
            return [(i + 2, {(k or "").strip(): (v or "").strip() for k, v in row.items()})
                    for i, row in enumerate(reader)]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 CSV file ({exc.reason})") from exc
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV: {exc}") from exc


def read_mics(path: Path) -> dict[int, str]:
    """``label,name`` rows; a duplicate or non-integer label is an :class:`InputError`."""
    mics: dict[int, str] = {}
    for line, row in _csv_rows(path, ("label", "name")):
        try:
            label = int(row["label"])
        except ValueError:
            raise InputError(f"{path}: line {line}: label {row['label']!r} is not an integer") from None
        if label in mics:
            raise InputError(f"{path}: line {line}: duplicate label {label} ({mics[label]!r} and {row['name']!r})")
        name = row["name"] or f"mic {label}"
        other = next((lab for lab, n in mics.items() if n == name), None)
        if other is not None:
            raise InputError(f"{path}: line {line}: duplicate microphone name {name!r} (labels {other} and {label})")
        mics[label] = name
    return mics


def read_models(path: Path | None) -> dict[int, str]:
    """``{label: model}`` from a ``mics.csv``'s optional ``model`` column (empty cells left out).

    Microphones sharing a ``model`` value are units of one make and model: an identical-model
    group of any size. No file or no column: ``{}``.
    """
    if path is None or not Path(path).is_file():
        return {}
    rows = _csv_rows(Path(path), ("label", "name"))
    if not rows or "model" not in rows[0][1]:
        return {}
    return {int(row["label"]): row["model"] for _, row in rows if row.get("model")}


def check_segments(rows, where: str) -> tuple[list[tuple[float, float, str]], list[str]]:
    """Sorted ``(start_s, end_s, sound_type)`` rows and the problems found (bad numbers, overlaps)."""
    out, problems = [], []
    for line, a, b, t in rows:
        try:
            a, b = float(a), float(b)
        except ValueError:
            problems.append(f"{where}: line {line}: start_s/end_s {a!r}, {b!r} are not numbers")
            continue
        if not (a >= 0 and b > a):
            problems.append(f"{where}: line {line}: segment {a:g}-{b:g} s is empty or negative")
            continue
        out.append((line, a, b, t or "unlabelled"))
    out.sort(key=lambda r: (r[1], r[2]))
    for (l1, a1, b1, _), (l2, a2, b2, _) in zip(out, out[1:]):
        if a2 < b1:
            problems.append(f"{where}: segments overlap: line {l1} ({a1:g}-{b1:g} s) and line {l2} ({a2:g}-{b2:g} s)")
    return [(a, b, t) for _, a, b, t in out], problems


def _segments_csv(path: Path) -> tuple[list, list[str]]:
    rows = [(line, r["start_s"], r["end_s"], r["sound_type"])
            for line, r in _csv_rows(path, ("start_s", "end_s", "sound_type"))]
    return check_segments(rows, str(path))


def _missing_segments(sessions: dict[str, str], seg_files: dict[str, str], table: str = "segments.csv") -> list[str]:
    """One warning per session without a sound-type table when other sessions have one.

    Parameters
    ----------
    sessions : dict
        ``{session: where}``: the session's folder (or manifest and session), named by the warning.
    seg_files : dict
        ``{session: file}`` of the sessions that have a table.
    table : str
        What the missing table is called.

    Such a session's recordings become one ``unlabelled`` stretch: they drop out of every
    per-sound-type result, which a forgotten (or misnamed) file should not do silently.
    """
    if not seg_files:
        return []
    example = seg_files[sorted(seg_files)[0]]
    return [f"{where}: no {table}, unlike {len(seg_files)} other session(s) (e.g. {example}); its recordings "
            "count as one 'unlabelled' sound type" for session, where in sorted(sessions.items())
            if session not in seg_files]


def _duplicates(files: list[SourceFile], names_from: str) -> list[str]:
    """Two files of one session with the same label, and one microphone name given to two labels.

    ``names_from`` is where the names came from (a ``mics.csv`` or the layout's root), for the message.
    """
    seen: dict[tuple[str, int], str] = {}
    problems = []
    for f in files:
        key = (f.session, f.label)
        if key in seen:
            problems.append(f"{f.path}: duplicate microphone label {f.label} in session {f.session!r} "
                            f"(also {seen[key]})")
        else:
            seen[key] = f.path
    labels: dict[str, set[int]] = defaultdict(set)
    for f in files:
        labels[f.mic].add(f.label)
    for name, labs in sorted(labels.items()):
        if len(labs) > 1:  # e.g. a mics.csv name "mic 2" for label 1 beside label 2's default name
            problems.append(f"{names_from}: duplicate microphone name {name!r} (labels "
                            f"{', '.join(map(str, sorted(labs)))})")
    return problems


def broken_link(path: Path) -> str | None:
    """The problem of an audio-named symbolic link whose target cannot be opened, else None.

    Such links are not files, so the folder layouts would otherwise skip them without a word.
    """
    if path.name.startswith(".") or path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{path}: symbolic link loop ({os.readlink(path)})"
        return f"{path}: dangling symbolic link to {os.readlink(path)} ({exc.strerror})"
    return None


def outside_root(files, root: str) -> list[str]:
    """Files that are not inside ``root`` once symbolic links are followed (``--root-only``)."""
    top = os.path.realpath(root)
    problems = []
    for f in files:
        real = os.path.realpath(f.path)
        if os.path.commonpath([top, real]) != top:
            via = "" if real == os.path.abspath(f.path) else f" (it leads to {real})"
            problems.append(f"{f.path}: outside the recording folder {top}{via}; refused by --root-only")
    return problems


def _names_from(mics_csv: Path | None, fallback: Path) -> str:
    return str(mics_csv) if mics_csv is not None and mics_csv.is_file() else str(fallback)


# -- layouts ---------------------------------------------------------------------------------
def _read_kaggle(root: Path) -> Layout:
    mics = read_mics(root / "mics.csv") if (root / "mics.csv").is_file() else {}
    files, problems, segments, seg_files = [], [], {}, {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        entries = sorted(sub.iterdir())
        problems += [p for p in map(broken_link, entries) if p]
        audio = [f for f in entries if is_audio(f)]
        for f in audio:
            m = KAGGLE_NAME.match(f.stem)
            if not m:
                problems.append(f"{f}: file name has no microphone label (expected <prefix>-<N>{f.suffix})")
                continue
            label = int(m["label"])
            files.append(SourceFile(str(f), label, mics.get(label, f"mic {label}"), sub.name))
        if audio and (sub / "segments.csv").is_file():
            rows, seg_problems = _segments_csv(sub / "segments.csv")
            segments[sub.name], seg_files[sub.name] = tuple(rows), str(sub / "segments.csv")
            problems += seg_problems
    if not files and not problems:
        raise InputError(f"{root}: no <session>/<prefix>-<N>.wav files found")
    problems += _duplicates(files, _names_from(root / "mics.csv", root))
    warnings = _missing_segments({f.session: str(Path(f.path).parent) for f in files}, seg_files)
    return Layout("kaggle", str(root), tuple(files), mics or {f.label: f.mic for f in files}, segments, seg_files,
                  tuple(problems), tuple(warnings), read_models(root / "mics.csv"))


def _labels_for(values: list[str], mics: dict[int, str]) -> dict[str, tuple[int, str]]:
    """Map mic column values to (label, name): integers are labels, anything else a name."""
    if all(re.fullmatch(r"\d+", v) for v in values):
        return {v: (int(v), mics.get(int(v), f"mic {int(v)}")) for v in values}
    return {v: (i + 1, v) for i, v in enumerate(sorted(set(values)))}


def _manifest_base(src: str, manifest: str | None) -> Path:
    """Where a manifest's relative paths lead from: SRC when it is a folder given with --manifest,
    else the CSV's folder."""
    return Path(src) if manifest and Path(src).is_dir() else Path(manifest or src).parent


def _read_manifest(src: str, manifest: str | None) -> Layout:
    path = Path(manifest or src)
    if not path.is_file():
        raise InputError(f"{path}: manifest CSV not found")
    base = _manifest_base(src, manifest)
    mics_csv = next((p for p in (base / "mics.csv", path.parent / "mics.csv") if p.is_file()), None)
    mics = read_mics(mics_csv) if mics_csv else {}
    rows = _csv_rows(path, ("path", "mic", "session"))
    if not rows:
        raise InputError(f"{path}: manifest has no rows")
    has_segments = any(r.get("sound_type") or r.get("start_s") or r.get("end_s") for _, r in rows)
    problems: list[str] = []
    first: dict[str, tuple[int, str, str]] = {}
    seg_rows: dict[str, list] = defaultdict(list)
    for line, r in rows:
        if not (r["path"] and r["mic"] and r["session"]):
            problems.append(f"{path}: line {line}: path, mic and session are all required")
            continue
        p = Path(r["path"])
        p = p if p.is_absolute() else base / p
        key = (r["mic"], r["session"])
        if str(p) in first and first[str(p)][1:] != key:
            problems.append(f"{path}: line {line}: {p} listed again with another mic/session "
                            f"(line {first[str(p)][0]})")
            continue
        first.setdefault(str(p), (line, *key))
        if has_segments and (r.get("start_s") or r.get("end_s")):
            seg_rows[r["session"]].append((line, r.get("start_s", ""), r.get("end_s", ""), r.get("sound_type", "")))
    names = _labels_for([m for _, m, _ in first.values()], mics)
    files = [SourceFile(p, names[m][0], names[m][1], s) for p, (_, m, s) in first.items()]
    segments = {}
    for session, srows in seg_rows.items():
        # One table per session, repeated on every file's rows: keep each stretch once.
        unique = list({(a, b, t): (line, a, b, t) for line, a, b, t in srows}.values())
        segments[session], seg_problems = check_segments(unique, f"{path} (session {session})")
        segments[session] = tuple(segments[session])
        problems += seg_problems
    problems += _duplicates(files, _names_from(mics_csv, path))
    seg_files = {s: str(path) for s in segments}
    warnings = _missing_segments({f.session: f"{path} (session {f.session})" for f in files}, seg_files,
                                 table="start_s/end_s rows")
    return Layout("manifest", str(path), tuple(files), {lab: n for lab, n in names.values()}, segments,
                  seg_files, tuple(problems), tuple(warnings), read_models(mics_csv))


def _read_tree(root: Path, pattern: str | None) -> Layout:
    try:
        rx = re.compile(pattern or DEFAULT_TREE_PATTERN)
    except re.error as exc:
        raise ConfigError(f"--pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    if "mic" not in rx.groupindex:
        raise ConfigError(f"--pattern {rx.pattern!r} needs a named group (?P<mic>...) for the microphone")
    mics = read_mics(root / "mics.csv") if (root / "mics.csv").is_file() else {}
    found, skipped = [], []
    entries = sorted(root.rglob("*"))
    links = [p for p in map(broken_link, entries) if p]
    for f in (p for p in entries if is_audio(p)):
        rel = f.relative_to(root).as_posix()
        m = rx.search(rel)
        if not m or not m.group("mic"):
            skipped.append(rel)
            continue
        session = (m.groupdict().get("session") or f.parent.relative_to(root).as_posix())
        found.append((str(f), m.group("mic"), "default" if session in ("", ".") else session))
    if not found and not links:
        raise InputError(f"{root}: no audio file matches --pattern {rx.pattern!r}")
    names = _labels_for([m for _, m, _ in found], mics)
    files = [SourceFile(p, names[m][0], names[m][1], s) for p, m, s in found]
    segments, seg_files, problems = {}, {}, links
    for session in sorted({f.session for f in files}):
        seg = root / session / "segments.csv"
        if seg.is_file():
            rows, seg_problems = _segments_csv(seg)
            segments[session], seg_files[session] = tuple(rows), str(seg)
            problems += seg_problems
    warnings = [f"{root}: {len(skipped)} audio file(s) do not match --pattern and are skipped, e.g. {skipped[0]}"
                ] if skipped else []
    warnings += _missing_segments({f.session: str(root / f.session) for f in files}, seg_files)
    problems += _duplicates(files, _names_from(root / "mics.csv", root))
    return Layout("tree", str(root), tuple(files), {lab: n for lab, n in names.values()}, segments, seg_files,
                  tuple(problems), tuple(warnings), read_models(root / "mics.csv"))
