"""Config copies with settings replaced: what --set KEY=VALUE does in the quality scripts."""

from __future__ import annotations

import os


def with_settings(cfg: str, settings: list[str], work: str) -> str:
    """A copy of cfg with each section.KEY = VALUE set (replaced where the key is there)."""
    if not settings:
        return cfg
    wanted: dict[str, dict[str, str]] = {}
    for s in settings:
        key, value = s.split("=", 1)
        section, name = key.strip().split(".", 1)
        wanted.setdefault(section, {})[name.strip()] = value.strip()
    with open(cfg) as f:
        lines = f.read().splitlines()
    out, section = [], ""

    def flush(sec: str):
        out.extend(f"{k} = {v}" for k, v in wanted.pop(sec, {}).items())

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            flush(section)
            section = stripped[1:-1]
        elif "=" in stripped and not stripped.startswith("#") and section in wanted:
            name = stripped.split("=", 1)[0].strip()
            if name in wanted[section]:
                out.append(f"{name} = {wanted[section].pop(name)}")
                continue
        out.append(line)
    flush(section)
    for sec, extra in wanted.items():
        out.append(f"[{sec}]")
        out.extend(f"{k} = {v}" for k, v in extra.items())
    path = os.path.join(work, os.path.basename(cfg))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path
