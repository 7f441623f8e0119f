"""EPICS macro substitution: ``$(NAME)``, ``${NAME}`` and ``$(NAME=default)``, as macLib expands them.

A macro's value may itself refer to macros; those are expanded when the value is used, and a macro that
refers to itself is an error. A name may be built from other macros (``$($(AXIS)_OFFSET)``). A backslash
keeps the next character from starting a reference (``\\$(X)`` is not expanded) and stays in the text, so
the caller decides what backslashes mean afterwards (a ``.db`` string translates C escapes).

Unlike macLib, an undefined macro is an error rather than a warning: an IOC must not serve a record
called ``$(P)temp``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

_CLOSE = {"(": ")", "{": "}"}


class MacroError(ValueError):
    """A reference that cannot be expanded: undefined, recursive or unterminated."""


def expand(text: str, macros: Mapping[str, str]) -> str:
    """Return ``text`` with every macro reference replaced by its value."""
    if "$" not in text:
        return text
    value, _ = _expand(text, 0, "", macros, ())
    return value


def _expand(text: str, pos: int, stop: str, macros: Mapping[str, str] | None,
            active: tuple[str, ...]) -> tuple[str, int]:
    """Expand from ``pos`` up to the first character in ``stop`` (or the end); return (value, end).

    With ``macros`` None the text is only scanned, to find where it ends.
    """
    special = _SPECIAL[stop]
    out: list[str] = []
    end = len(text)
    while True:
        found = special.search(text, pos)
        if found is None:
            out.append(text[pos:])
            return "".join(out), end
        at = found.start()
        out.append(text[pos:at])
        c = text[at]
        if c in stop:
            return "".join(out), at
        if c == "\\":
            out.append(text[at:at + 2])
            pos = at + 2
        elif text[at + 1:at + 2] in _CLOSE:
            value, pos = _reference(text, at, macros, active)
            out.append(value)
        else:
            out.append(c)
            pos = at + 1


# Where _expand must look, for each set of stop characters it is called with: escapes, "$", the stops.
_SPECIAL = {stop: re.compile("[" + re.escape("\\$" + stop) + "]") for stop in ("", "=)", ")", "=}", "}")}


def _reference(text: str, pos: int, macros: Mapping[str, str] | None,
               active: tuple[str, ...]) -> tuple[str, int]:
    """Expand the reference starting at ``text[pos] == "$"``; return (value, position after it)."""
    close = _CLOSE[text[pos + 1]]
    name, pos = _expand(text, pos + 2, "=" + close, macros, active)
    default_start = None
    if pos < len(text) and text[pos] == "=":
        # A default is only expanded when it is used, so an unused one may name undefined macros.
        default_start = pos + 1
        _, pos = _expand(text, default_start, close, None, active)
    if pos >= len(text):
        raise MacroError(f"unterminated macro reference in {text!r}")
    pos += 1
    if macros is None:
        return "", pos
    if not name:
        raise MacroError(f"empty macro name in {text!r}")
    if name in active:
        chain = " -> ".join((*active[active.index(name):], name))
        raise MacroError(f"macro {name} refers to itself ({chain})")
    if name in macros:
        value, _ = _expand(macros[name], 0, "", macros, (*active, name))
        return value, pos
    if default_start is not None:
        value, _ = _expand(text, default_start, close, macros, active)
        return value, pos
    raise MacroError(f"undefined macro $({name})")


def parse_macros(text: str) -> dict[str, str]:
    """Parse a dbLoadRecords-style definition string, ``"P=IOC:,R=m1"``, into a dict.

    Whitespace around names and values is dropped; a value in double or single quotes keeps commas,
    ``=`` and spaces; a backslash escapes the next character.
    """
    macros: dict[str, str] = {}
    for item in _split_unquoted(text, ","):
        if not item.strip():
            continue
        name, eq, value = _partition_unquoted(item, "=")
        name = _unquote(name.strip())
        if not eq or not name:
            raise MacroError(f"macro definition {item.strip()!r} is not NAME=VALUE")
        macros[name] = _unquote(value.strip())
    return macros


def _split_unquoted(text: str, sep: str) -> list[str]:
    parts, start, quote, pos = [], 0, "", 0
    while pos < len(text):
        c = text[pos]
        if c == "\\":
            pos += 1
        elif quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c == sep:
            parts.append(text[start:pos])
            start = pos + 1
        pos += 1
    if quote:
        raise MacroError(f"unbalanced {quote} in macro definitions {text!r}")
    parts.append(text[start:])
    return parts


def _partition_unquoted(text: str, sep: str) -> tuple[str, str, str]:
    head, *tail = _split_unquoted(text, sep)
    return (head, sep, sep.join(tail)) if tail else (head, "", "")


def _unquote(text: str) -> str:
    """Drop quote characters and escaping backslashes, as macParseDefns does."""
    out, quote, pos = [], "", 0
    while pos < len(text):
        c = text[pos]
        if c == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if quote and c == quote:
            quote = ""
        elif not quote and c in "\"'":
            quote = c
        else:
            out.append(c)
        pos += 1
    return "".join(out)
