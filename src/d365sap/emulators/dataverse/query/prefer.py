"""The ``Prefer`` request header (RFC 7240) as Dataverse reads it.

``Prefer: odata.maxpagesize=50, odata.include-annotations="OData.Community.Display.V1.
FormattedValue,Microsoft.Dynamics.CRM.*", return=representation`` — preferences are
comma-separated, but a quoted value may contain commas. Unknown preferences are ignored, as
the RFC asks; a malformed ``odata.maxpagesize`` is ignored too (not applied, not echoed).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

MAX_PAGE_SIZE = 5000
"""Dataverse never returns more rows in one page; a larger ``odata.maxpagesize`` means this."""


@dataclass(frozen=True)
class Preferences:
    """The preferences the emulator acts on."""

    max_page_size: int | None = None
    include_annotations: tuple[str, ...] = ()
    return_representation: bool = False
    track_changes: bool = False
    continue_on_error: bool = False

    @property
    def page_size(self) -> int:
        """Rows per page: the requested size, at most :data:`MAX_PAGE_SIZE`."""
        if self.max_page_size is None:
            return MAX_PAGE_SIZE
        return min(self.max_page_size, MAX_PAGE_SIZE)

    def wants_annotation(self, term: str) -> bool:
        """Whether ``odata.include-annotations`` asks for ``term`` (``*`` patterns, ``-`` to
        exclude)."""
        included = False
        for pattern in self.include_annotations:
            if pattern.startswith("-"):
                if fnmatchcase(term, pattern[1:]):
                    return False
            elif fnmatchcase(term, pattern):
                included = True
        return included

    def applied(self, *, page_size: bool = False, annotations: bool = False) -> str | None:
        """A ``Preference-Applied`` value for the preferences the caller honoured."""
        parts: list[str] = []
        if page_size and self.max_page_size is not None:
            parts.append(f"odata.maxpagesize={self.page_size}")
        if annotations and self.include_annotations:
            parts.append(f'odata.include-annotations="{",".join(self.include_annotations)}"')
        if self.track_changes:
            parts.append("odata.track-changes")
        return ",".join(parts) or None


def _split(header: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_prefer(header: str | None) -> Preferences:
    """Parse one ``Prefer`` header value (several headers may be joined with commas)."""
    if not header:
        return Preferences()
    max_page_size: int | None = None
    annotations: tuple[str, ...] = ()
    representation = track = continue_on_error = False
    for part in _split(header):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        value = value.split(";")[0].strip().strip('"')
        if name == "odata.maxpagesize":
            if value.isdigit() and int(value) > 0:
                max_page_size = int(value)
        elif name == "odata.include-annotations":
            annotations = tuple(a.strip() for a in value.split(",") if a.strip())
        elif name == "return":
            representation = value.lower() == "representation"
        elif name == "odata.track-changes":
            track = True
        elif name == "odata.continue-on-error":
            continue_on_error = value.lower() != "false"
    return Preferences(max_page_size, annotations, representation, track, continue_on_error)
