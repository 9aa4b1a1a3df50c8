"""Checking a DEBMAS07 IDoc against SAP's packaged XSD before it is sent (used by dry runs).

The packaged ``ERP_ZZ_DEBMAS.xsd`` was generated for one extension: it names the document root
``ZZ_DEBMAS`` and fixes ``EDI_DC40-CIMTYP`` to ``ZZ_DEBMAS``. Both are partner-profile choices in
SAP (configured here in ``[erp.control]``), not part of the segment structure, so an IDoc built
with another root (``DEBMAS07``) or extension (``ZZ_DEBMAS_WILO360``) is still judged by the XSD
for everything else: segment and field order, mandatory control fields, maximum lengths,
``IDOCTYP`` = DEBMAS07. To do that each ``IDOC`` is copied under a ``ZZ_DEBMAS`` root and its
CIMTYP is checked for SAP's own limit (CHAR 30) and then given the value the XSD expects. The
original document is never changed.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import cast

from lxml import etree

from d365sap.errors import ValidationError
from d365sap.xmlsafe import parse_xml

XSD_RESOURCE = "xsd/ERP_ZZ_DEBMAS.xsd"
CIMTYP_MAX_LENGTH = 30
"""EDIDC-CIMTYP is CHAR 30 in SAP's control record."""
_XSD = "{http://www.w3.org/2001/XMLSchema}"
_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class IdocProblem:
    """One schema violation: ``SEGMENT-FIELD`` (or the segment) and what is wrong."""

    field: str
    message: str


class IdocSchema:
    """A compiled IDoc XSD with the root name and fixed CIMTYP it was generated for."""

    def __init__(self, xsd: bytes) -> None:
        schema_root = parse_xml(xsd, what=XSD_RESOURCE)
        root_declaration = schema_root.find(f"{_XSD}element")
        if root_declaration is None:
            raise LookupError(f"{XSD_RESOURCE} declares no root element")
        self.root_name = str(root_declaration.get("name"))
        cimtyp = next(
            (e for e in schema_root.iter(f"{_XSD}element") if e.get("name") == "CIMTYP"), None
        )
        self.fixed_cimtyp = cimtyp.get("fixed") if cimtyp is not None else None
        self._schema = etree.XMLSchema(schema_root)
        # lxml keeps the error log on the schema object: one validation at a time.
        self._lock = threading.Lock()

    def problems(self, document: bytes) -> list[IdocProblem]:
        """Every violation in ``document`` (any root name, one or more IDOCs); empty if valid."""
        try:
            root = parse_xml(document, what="IDoc")
        except ValidationError as error:
            return [IdocProblem("IDoc", error.reason)]
        idocs = [child for child in root if isinstance(child.tag, str) and child.tag == "IDOC"]
        if not idocs:
            return [IdocProblem(root.tag if isinstance(root.tag, str) else "IDoc", "no IDOC")]
        found: list[IdocProblem] = []
        for number, idoc in enumerate(idocs, start=1):
            prefix = f"IDOC {number}: " if len(idocs) > 1 else ""
            for problem in self._check_one(idoc):
                found.append(IdocProblem(problem.field, prefix + problem.message))
        return found

    def _check_one(self, idoc: etree._Element) -> list[IdocProblem]:
        wrapper = etree.Element(self.root_name)
        clone = copy.deepcopy(idoc)
        clone.tail = None
        wrapper.append(clone)
        found = self._normalise_cimtyp(clone)
        with self._lock:
            valid = self._schema.validate(wrapper)
            log = cast("Iterable[etree._LogEntry]", self._schema.error_log)
            entries = [] if valid else list(log)
        for entry in entries:
            problem = IdocProblem(_field_of(entry.path), entry.message)
            if problem not in found:
                found.append(problem)
        return found

    def _normalise_cimtyp(self, idoc: etree._Element) -> list[IdocProblem]:
        """Check CIMTYP by SAP's rule, then give it the value this XSD was generated with."""
        if self.fixed_cimtyp is None:
            return []
        control = idoc.find("EDI_DC40")
        if control is None:
            return []  # the schema reports the missing control record
        cimtyp = control.find("CIMTYP")
        if cimtyp is None:
            idoctyp = control.find("IDOCTYP")
            if idoctyp is None:
                return []  # reported by the schema
            cimtyp = etree.Element("CIMTYP")
            idoctyp.addnext(cimtyp)
        value = cimtyp.text or ""
        cimtyp.text = self.fixed_cimtyp
        if len(value) > CIMTYP_MAX_LENGTH:
            return [
                IdocProblem(
                    "EDI_DC40-CIMTYP",
                    f"{len(value)} characters, at most {CIMTYP_MAX_LENGTH} allowed",
                )
            ]
        return []


def _field_of(path: str | None) -> str:
    """``/ZZ_DEBMAS/IDOC/E1KNA1M[1]/NAME1`` → ``E1KNA1M-NAME1``; a segment stays a segment."""
    if not path:
        return "IDoc"
    steps = [_INDEX.sub("", step) for step in path.split("/") if step]
    meaningful = steps[2:] if len(steps) > 2 else steps[-1:]
    if len(meaningful) >= 2 and _is_segment(meaningful[-2]):
        if _is_segment(meaningful[-1]):
            return meaningful[-1]
        return f"{meaningful[-2]}-{meaningful[-1]}"
    return meaningful[-1]


def _is_segment(name: str) -> bool:
    """IDoc segment names start with E1, E2, Z1 (extensions) or are the control record."""
    return name == "EDI_DC40" or name[:2] in ("E1", "E2", "Z1", "Z2")


@lru_cache(maxsize=1)
def debmas_schema() -> IdocSchema:
    """The packaged DEBMAS07 schema, compiled once per process."""
    return IdocSchema(files("d365sap.resources").joinpath(XSD_RESOURCE).read_bytes())


def validate_debmas(document: bytes) -> list[IdocProblem]:
    """Violations of the packaged DEBMAS07 XSD in ``document``; empty when SAP would accept it."""
    return debmas_schema().problems(document)
