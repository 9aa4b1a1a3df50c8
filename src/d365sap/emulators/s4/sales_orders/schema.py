"""The project's schema of SalesOrderBulkRequest and the check of every request against it.

``resources/xsd/SalesOrderBulkRequest_In.xsd`` imports the custom-field schema by its file name;
both are read from the package (a resolver serves the import, so the check works from a wheel or
a zip as well). lxml's messages are rewritten so each names the element by its path in the
message (``SalesOrderBulkRequest/SalesOrder[1]/Item[2]/RequestedQuantity``) and, for
attributes, the attribute (``SalesOrder[1]/@actionCode``).
"""

from __future__ import annotations

import copy
import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from lxml import etree

MESSAGE_NS = "http://sap.com/xi/SD-SLS"
CUSTOM_FIELDS_NS = "http://SAPCustomFields.com/YY1_"
ROOT_ELEMENT = "SalesOrderBulkRequest"
XSD_RESOURCE = "xsd/SalesOrderBulkRequest_In.xsd"
YY1_XSD_RESOURCE = "xsd/SalesOrderBulkRequest_In_YY1.xsd"
_ELEMENT = re.compile(r"^Element '(?:\{[^}]*\})?([^']*)'(?:, attribute '([^']*)')?:\s*")
_STEP = re.compile(r"^(?:[\w.-]+:)?([\w.-]+)(\[\d+\])?$")
_SHOWN = 40
"""Characters of a rejected value quoted back at most."""
_LIMIT = 20
"""Problems reported per request at most (the first ones in document order)."""


@dataclass(frozen=True)
class SchemaProblem:
    """One schema violation: where (element path, line) and what."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class _PackagedSchemas(etree.Resolver):
    """Serves the custom-field schema when the main schema imports it by file name."""

    # lxml passes a context the stubs do not declare.
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        if system_url.rsplit("/", 1)[-1] == YY1_XSD_RESOURCE.rsplit("/", 1)[-1]:
            return self.resolve_string(_resource(YY1_XSD_RESOURCE), context, base_url=system_url)
        return None


def _resource(name: str) -> bytes:
    return resources.files("d365sap.resources").joinpath(name).read_bytes()


def _steps(path: str) -> list[tuple[str, str]]:
    """The (name, ``[n]`` or "") steps of libxml2's XPath, prefixes dropped."""
    steps: list[tuple[str, str]] = []
    for step in path.strip("/").split("/"):
        match = _STEP.match(step)
        steps.append((match.group(1), match.group(2) or "") if match else (step, ""))
    return steps


def _value_at(document: etree._Element, steps: list[tuple[str, str]]) -> str | None:
    """The text of the element the steps lead to, if there is exactly such an element."""
    xpath = "/" + "/".join(f"*[local-name()='{name}']{index}" for name, index in steps)
    try:
        found = document.getroottree().xpath(xpath)
    except etree.XPathError:
        return None
    if isinstance(found, list) and len(found) == 1 and isinstance(found[0], etree._Element):
        text = found[0].text
        return None if text is None else text.strip()
    return None


def _shown(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "…"


class SalesOrderSchema:
    """The compiled schema; :meth:`problems` checks one ``SalesOrderBulkRequest`` element."""

    def __init__(self) -> None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        parser.resolvers.add(_PackagedSchemas())
        document = etree.fromstring(_resource(XSD_RESOURCE), parser, base_url=XSD_RESOURCE)
        self._xsd = etree.XMLSchema(etree.ElementTree(document))
        self._lock = threading.Lock()

    def problems(self, payload: etree._Element) -> list[SchemaProblem]:
        """Every violation in ``payload`` (the body's element), in document order."""
        document = copy.deepcopy(payload)
        with self._lock:
            valid = self._xsd.validate(document)
            entries = list(cast(Iterable[Any], self._xsd.error_log))
        if valid:
            return []
        found: list[SchemaProblem] = []
        for entry in entries[:_LIMIT]:
            match = _ELEMENT.match(entry.message)
            element = match.group(1) if match else ROOT_ELEMENT
            attribute = match.group(2) if match else None
            text = entry.message[match.end() :].strip() if match else entry.message.strip()
            steps = _steps(entry.path) if entry.path else [(element, "")]
            path = "/".join(name + index for name, index in steps)
            if attribute:
                path += f"/@{attribute}"
            elif "[facet" in text:
                value = _value_at(document, steps)
                if value is not None:
                    text = f"value '{_shown(value)}': {text}"
            found.append(SchemaProblem(path, entry.line, text))
        return found


@functools.cache
def packaged_schema() -> SalesOrderSchema:
    """The schema, compiled once per process."""
    return SalesOrderSchema()
