"""Profile presets: profiles/<name>.yaml are complete params files; params.yaml is the active one.

`make repro PROFILE=paper` (or `python -m compass.cli profile paper`) copies a preset onto
params.yaml, and DVC then reruns what its params change. A params.yaml that matches no preset holds
someone's edits: switching refuses unless forced, so no edit is lost silently. Switching back
(`PROFILE=tiny`) restores the tiny results from DVC's cache where they are still there.
"""
from __future__ import annotations

from compass import config, io, paths


def available() -> list[str]:
    return sorted(p.stem for p in paths.PROFILES.glob("*.yaml"))


def preset(name: str):
    source = paths.PROFILES / f"{name}.yaml"
    if not source.exists():
        raise config.ConfigError(f"profile {name!r} does not exist; choose one of {available()} "
                                 f"(files in {paths.PROFILES})")
    return source


def active() -> str | None:
    """The preset params.yaml equals, or None when it holds edits of its own."""
    current = paths.PARAMS.read_text(encoding="utf-8")
    return next((name for name in available()
                 if preset(name).read_text(encoding="utf-8") == current), None)


def use(name: str, force: bool = False) -> str:
    """Make preset ``name`` the active params.yaml; returns what happened, in words."""
    source = preset(name)
    config.load(source)  # a preset that does not validate is never activated
    was = active()
    if was == name:
        return f"params.yaml already is the {name!r} preset"
    if was is None and not force:
        raise config.ConfigError(
            "params.yaml has edits that match no preset in profiles/; save them as "
            "profiles/<name>.yaml (or commit them) first, or pass --force to overwrite them")
    io.write_text(paths.PARAMS, source.read_text(encoding="utf-8"))
    return f"params.yaml is now the {name!r} preset (was {was or 'edited'})"
