"""Where the Hydra config groups live, and which search spaces they offer."""

from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def available_spaces() -> list[str]:
    """Names of the search spaces in conf/space/."""
    return sorted(path.stem for path in (CONF_DIR / "space").glob("*.yaml"))
