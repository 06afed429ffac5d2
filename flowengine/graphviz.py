"""Graphviz's ``dot`` turned into a function: DOT text in, SVG out. Used by ``flowengine graph --format
svg`` and by the dashboard (in a worker thread, its drawings cached per flow version).

``dot`` is a separate program (Debian's ``graphviz`` package), found on the PATH unless a path is given.
Its output is trimmed to the ``<svg>`` element itself (no XML prolog, DOCTYPE or comments), ready to be
placed inside an HTML page; Graphviz escapes the text it was given, and ``flow.graph`` escapes what it
gives Graphviz.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from flowengine.errors import GraphvizError

TIMEOUT = 10.0  # seconds: a flow of a few dozen states takes ~20 ms
MAX_SVG = 8 * 1024 * 1024  # bytes of output accepted
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
INSTALL_HINT = "install Graphviz (Debian/Ubuntu: apt-get install graphviz) so that `dot` is on the PATH"


def find_dot(binary: str | None = None) -> str:
    """The ``dot`` program to run: ``binary`` if given, else the one on the PATH."""
    found = shutil.which(binary or "dot")
    if found is None:
        raise GraphvizError(f"Graphviz's `{binary or 'dot'}` was not found: {INSTALL_HINT}")
    return found


def render_svg(dot_source: str, binary: str | None = None, timeout: float = TIMEOUT) -> str:
    """The SVG drawing of ``dot_source``, as an ``<svg>`` element; ``GraphvizError`` saying why not."""
    program = find_dot(binary)
    try:
        done = subprocess.run(
            [program, "-Tsvg"], input=dot_source.encode(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"Graphviz took longer than {timeout:g} s to draw the flow") from None
    except OSError as exc:
        raise GraphvizError(f"Graphviz could not be run ({program}): {exc.strerror or exc}") from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[:3]
        raise GraphvizError(f"Graphviz failed (exit {done.returncode}): {' '.join(why) or 'no message'}")
    if len(done.stdout) > MAX_SVG:
        raise GraphvizError(f"Graphviz's drawing is larger than {MAX_SVG} bytes")
    return svg_element(done.stdout.decode("utf-8", errors="replace"))


def svg_element(document: str) -> str:
    """Only the ``<svg>...</svg>`` element of a Graphviz SVG document, its comments removed."""
    start, end = document.find("<svg"), document.rfind("</svg>")
    if start < 0 or end < start:
        raise GraphvizError("Graphviz's output holds no <svg> element")
    return _COMMENT.sub("", document[start : end + len("</svg>")])
