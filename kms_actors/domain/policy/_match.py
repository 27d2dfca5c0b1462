"""String matchers: IAM's wildcards, ARN matching and policy variables.

Matchers are compiled once per policy value; the plain cases (no wildcard, a lone ``*``, a
trailing ``*``) become a comparison, a constant or ``startswith`` instead of a regex.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final

from kms_actors.domain.policy._context import RequestContext

Matcher = Callable[[str], bool]

# A literal "*" or "?" inside a glob (from ${*}, ${?} or a substituted variable). The private
# use code points cannot occur in a key policy, whose characters stop at U+00FF.
LITERAL_STAR: Final = "\ue000"
LITERAL_QMARK: Final = "\ue001"
_UNESCAPE: Final = str.maketrans({LITERAL_STAR: "*", LITERAL_QMARK: "?"})
_ESCAPE: Final = str.maketrans({"*": LITERAL_STAR, "?": LITERAL_QMARK})
_VARIABLE: Final = re.compile(r"\$\{([^}]*)\}")
_KEY: Final = re.compile(r"[A-Za-z0-9-]+:[\w:/.+=@-]+")


def _always(_: str) -> bool:
    return True


@functools.lru_cache(maxsize=1024)
def glob(pattern: str) -> Matcher:
    """Return a case-sensitive matcher for ``pattern`` (``*`` any run, ``?`` one character)."""
    if pattern == "*":
        return _always
    if "*" not in pattern and "?" not in pattern:
        return pattern.translate(_UNESCAPE).__eq__
    head = pattern[:-1]
    if pattern.endswith("*") and "*" not in head and "?" not in head:
        prefix = head.translate(_UNESCAPE)
        return lambda value: value.startswith(prefix)
    regex = re.compile(_regex(pattern), re.DOTALL)
    return lambda value: regex.fullmatch(value) is not None


def _regex(pattern: str) -> str:
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char.translate(_UNESCAPE)))
    return "".join(parts)


@functools.lru_cache(maxsize=1024)
def arn(pattern: str) -> Matcher:
    """Return an ArnLike matcher: each of the six colon-separated parts is globbed on its own.

    A pattern that is not six parts long (``*`` for instance) is globbed as a whole.
    """
    parts = pattern.split(":", 5)
    if len(parts) != 6 or pattern == "*":
        return glob(pattern)
    if "*" not in pattern and "?" not in pattern:
        return pattern.translate(_UNESCAPE).__eq__
    segments = tuple(glob(part) for part in parts)

    def match(value: str) -> bool:
        values = value.split(":", 5)
        return len(values) == 6 and all(m(v) for m, v in zip(segments, values, strict=True))

    return match


class Template:
    """A policy value with variables (``${aws:username}``), rendered per request.

    ``${*}``, ``${?}`` and ``${$}`` stand for a literal ``*``, ``?`` and ``$``; a variable may
    carry a default, ``${aws:username, 'nobody'}``. A variable whose key is absent (and has no
    default) or is multivalued makes the whole value unresolvable: it then matches nothing.
    """

    __slots__ = ("_parts", "text")

    def __init__(self, text: str, parts: tuple[str | tuple[str, str | None], ...]) -> None:
        self.text = text
        self._parts = parts

    def render(self, ctx: RequestContext, *, for_glob: bool) -> str | None:
        """Return the value for ``ctx``; in a glob, substituted text matches literally."""
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part if for_glob else part.translate(_UNESCAPE))
                continue
            key, default = part
            value = ctx.lookup(key)
            if isinstance(value, str):
                text = value
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = str(value)
            elif value is None and default is not None:
                text = default
            else:
                return None
            out.append(text.translate(_ESCAPE) if for_glob else text)
        return "".join(out)


def template(text: str, *, for_glob: bool) -> str | Template:
    """Parse policy variables in ``text``; return plain text when it has none.

    For a glob the plain text keeps ``${*}`` and ``${?}`` as literal-character markers.
    """
    if "${" not in text:
        return text
    parts: list[str | tuple[str, str | None]] = []
    last = 0
    for found in _VARIABLE.finditer(text):
        parts.append(text[last : found.start()])
        last = found.end()
        parts.append(_variable(found[1], found[0]))
    parts.append(text[last:])
    merged: list[str | tuple[str, str | None]] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    if all(isinstance(part, str) for part in merged):
        plain = "".join(p for p in merged if isinstance(p, str))
        return plain if for_glob else plain.translate(_UNESCAPE)
    return Template(text, tuple(merged))


def _variable(inner: str, whole: str) -> str | tuple[str, str | None]:
    # Anything that is not a well-formed variable stays literal text, as IAM leaves it.
    body = inner.strip()
    if body in ("*", "?"):
        return LITERAL_STAR if body == "*" else LITERAL_QMARK
    if body == "$":
        return "$"
    key, comma, rest = body.partition(",")
    key = key.strip()
    if not _KEY.fullmatch(key):
        return whole
    if not comma:
        return (key.lower(), None)
    rest = rest.strip()
    if len(rest) >= 2 and rest[0] == rest[-1] == "'":
        return (key.lower(), rest[1:-1])
    return whole
