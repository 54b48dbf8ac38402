"""What the tests share: the repository's paths, the real command in a subprocess, a headless
browser's look at an HTML page, and the small grids the end-to-end tests run."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "tests" / "plugins"
