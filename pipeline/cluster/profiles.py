"""Cluster profiles: named YAML files that say where work runs.

A profile is a small YAML mapping with a ``kind`` (``local``, ``remote``, ``slurm``, ``pbs``
or ``kubernetes``) and that kind's options; see ``pipeline/cluster/profiles/*.yaml`` (shipped with
the package) and ``docs/cluster.md``. The profile in force is chosen, first match wins, by

1. ``--scheduler ADDRESS`` (a ``remote`` profile with that address),
2. ``--cluster NAME`` (a profile name or a path to a YAML file),
3. the environment variable ``MICFP_CLUSTER``,
4. dask's ``scheduler-address`` (``DASK_SCHEDULER_ADDRESS`` or dask config; a ``remote`` profile),
5. the dask config key ``micfp.cluster`` (default ``local``; ``DASK_MICFP__CLUSTER`` sets it).

Option names are dask config keys: ``n-workers`` and ``n_workers`` are the same option (dask
stores ``DASK_MICFP__LOCAL__N_WORKERS`` as ``n_workers``), normalised to the ``-`` spelling.

Project defaults live in ``pipeline/cluster/micfp.yaml``, merged into dask's configuration on import
(dask's convention for downstream libraries), so users override them in their own dask config.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import dask.config
import yaml

from ..errors import ConfigError

KINDS = ("local", "remote", "slurm", "pbs", "kubernetes")
# Profiles shipped with the package (package data): the defaults, searched last.
SHIPPED_PROFILES = Path(__file__).resolve().with_name("profiles")

# Options each kind accepts: a typo in a profile is an error, not a silently ignored key.
OPTIONS = {
    "local": {"n-workers", "threads-per-worker", "memory-limit", "host", "dashboard-address", "close-timeout"},
    "remote": {"address", "scheduler-file", "tls", "timeout"},
    "pbs": {"jobs", "adapt", "wait-for-workers", "startup-timeout", "jobqueue", "scheduler-options"},
    "kubernetes": {"name", "namespace", "image", "n-workers", "resources", "env", "worker-command",
                   "scheduler-service-type", "idle-timeout", "wait-for-workers", "startup-timeout", "job"},
}
OPTIONS["slurm"] = OPTIONS["pbs"] | {"job"}  # job.command: run inside one job (pipeline.cluster.slurm_runner)
TLS_KEYS = {"ca-file", "cert", "key"}


def _load_defaults() -> None:
    path = Path(__file__).with_name("micfp.yaml")
    with open(path) as f:
        defaults = yaml.safe_load(f)
    dask.config.update_defaults(defaults)


_load_defaults()


def config(key: str, default=None):
    """A ``micfp.*`` dask config value (``pipeline/cluster/micfp.yaml`` holds the defaults)."""
    return dask.config.get(f"micfp.{key}", default=default)


def worker_environ() -> dict[str, str]:
    """Environment variables for worker processes micfp starts (config ``micfp.worker-environ``).

    See ``pipeline/cluster/micfp.yaml`` for why the allocator settings matter.
    """
    return {str(k): str(v) for k, v in (config("worker-environ", {}) or {}).items()}


def micfp_home() -> Path:
    """Folder of ``micfp cluster up``'s scheduler file and logs: ``$MICFP_HOME`` or ``micfp.home``."""
    return Path(os.environ.get("MICFP_HOME") or config("home", "~/.micfp")).expanduser()


def default_scheduler_file() -> Path:
    return micfp_home() / "cluster.json"


@dataclass(frozen=True)
class Profile:
    """A resolved cluster profile.

    Parameters
    ----------
    name : str
        Profile name (file stem, or ``local``/``remote`` when built in).
    kind : str
        One of :data:`KINDS`.
    options : dict
        The kind's options, environment variables already expanded.
    source : str
        The file it came from, or ``built-in``.
    """

    name: str
    kind: str
    options: dict = field(default_factory=dict)
    source: str = "built-in"

    def get(self, key: str, default=None):
        value = self.options.get(key)
        return default if value is None else value


def user_profile_dir() -> Path:
    """The user's own profile folder: ``$XDG_CONFIG_HOME/micfp/cluster`` (``~/.config/micfp/cluster``)."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or "~/.config").expanduser() / "micfp" / "cluster"


def search_path() -> list[Path]:
    """Folders searched for ``NAME.yaml``, first match wins: ``$MICFP_CLUSTER_PATH``, the config
    key ``micfp.profile-path``, :func:`user_profile_dir`, then the profiles shipped with micfp.

    The working directory and a source checkout are never searched: a checkout's files must not
    override the user's configuration."""
    dirs = [Path(p).expanduser() for p in os.environ.get("MICFP_CLUSTER_PATH", "").split(os.pathsep) if p]
    dirs += [Path(p).expanduser() for p in config("profile-path", []) or []]
    dirs += [user_profile_dir(), SHIPPED_PROFILES]
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def available_profiles() -> dict[str, str]:
    """Profile name -> where it is defined (first match wins: config ``micfp.profiles``, then
    :func:`search_path`)."""
    found = {"local": "built-in", "remote": "built-in"}
    for d in reversed(search_path()):
        for f in sorted(d.glob("*.yaml")) if d.is_dir() else []:
            found[f.stem] = str(f)
    for name in config("profiles", {}) or {}:
        found[str(name)] = f"dask config micfp.profiles.{name}"
    return found


def normalise_keys(options: dict) -> dict:
    """A profile's option names in the ``-`` spelling (dask treats ``-`` and ``_`` alike in keys).

    Only the top level: the values of ``jobqueue``, ``scheduler-options`` and ``env`` are keyword
    arguments and variable names, kept as written.
    """
    return {str(k).replace("_", "-"): v for k, v in options.items()}


_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _expand(value, where: str):
    """``${VAR}`` / ``${VAR:-default}`` from the environment, recursively; ``~`` in paths."""
    if isinstance(value, dict):
        return {k: _expand(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, where) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(1) in os.environ:
            return os.environ[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise ConfigError(f"{where}: environment variable {m.group(1)} is not set (used as ${{{m.group(1)}}})")

    out = _VAR.sub(sub, value)
    if not out and value:  # "${VAR:-}" with VAR unset: the option is not given
        return None
    return os.path.expanduser(out) if out.startswith("~") else out


def _builtin(name: str) -> Profile | None:
    if name == "local":
        return Profile("local", "local", normalise_keys(config("local", {}) or {}))
    if name == "remote":
        return Profile("remote", "remote", {})
    return None


def parse_profile(data, name: str, source: str) -> Profile:
    """Validate a profile mapping (as read from YAML) into a :class:`Profile`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a cluster profile must be a YAML mapping with a 'kind'")
    data = normalise_keys(data)
    kind = data.pop("kind", None)
    data.pop("description", None)
    if kind not in KINDS:
        raise ConfigError(f"{source}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = set(data) - OPTIONS[kind]
    if unknown:
        raise ConfigError(f"{source}: unknown option(s) for a {kind} profile: {', '.join(sorted(unknown))} "
                          f"(allowed: {', '.join(sorted(OPTIONS[kind]))})")
    if kind == "local":  # a local profile file refines the configured defaults
        data = {**normalise_keys(config("local", {}) or {}), **{k: v for k, v in data.items() if v is not None}}
    if kind == "remote":
        tls = data.get("tls")
        if tls is not None and (not isinstance(tls, dict) or set(tls) - TLS_KEYS or "ca-file" not in tls):
            raise ConfigError(f"{source}: tls must map ca-file (and cert, key for mutual TLS), got {tls!r}")
    return Profile(name, kind, _expand(data, source), source)


def load_profile(name: str) -> Profile:
    """A profile by name (``NAME.yaml`` on :func:`search_path`, or built in) or by file path."""
    name = str(name)
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: no cluster profile file here")
    else:
        configured = (config("profiles", {}) or {}).get(name)
        if configured is not None:
            return parse_profile(configured, name, f"dask config micfp.profiles.{name}")
        path = next((d / f"{name}.yaml" for d in search_path() if (d / f"{name}.yaml").is_file()), None)
        if path is None:
            profile = _builtin(name)
            if profile is None:
                raise ConfigError(f"no cluster profile {name!r}; available: {', '.join(sorted(available_profiles()))} "
                                  f"(searched {', '.join(str(d) for d in search_path())})")
            return profile
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read cluster profile: {exc}") from exc
    return parse_profile(data, path.stem, str(path))


def dask_scheduler_address() -> str | None:
    """dask's own ``scheduler-address``: ``$DASK_SCHEDULER_ADDRESS`` (read now, so a variable set
    after import counts) or the dask config key, as :class:`distributed.Client` reads it."""
    return os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get("scheduler-address", None) or None


def resolve(scheduler: str | None = None, cluster: str | None = None) -> Profile:
    """The profile in force (see the module docstring for the order)."""
    if cluster:
        profile = load_profile(cluster)
    elif scheduler:
        return Profile("remote", "remote", {"address": scheduler}, "--scheduler")
    elif os.environ.get("MICFP_CLUSTER"):
        profile = load_profile(os.environ["MICFP_CLUSTER"])
    elif dask_scheduler_address():
        return Profile("remote", "remote", {"address": dask_scheduler_address()},
                       "DASK_SCHEDULER_ADDRESS / dask config scheduler-address")
    else:
        profile = load_profile(config("cluster", "local") or "local")
    if scheduler:  # --cluster remote-tls --scheduler tls://host:port: the address overrides
        if profile.kind != "remote":
            raise ConfigError(f"--scheduler cannot be combined with the {profile.kind} profile {profile.name!r}")
        opts = {**profile.options, "address": scheduler}
        opts.pop("scheduler-file", None)
        profile = Profile(profile.name, "remote", opts, profile.source)
    return profile
