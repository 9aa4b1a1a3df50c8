"""Masking personal data in payload copies kept for troubleshooting (D14).

The package attached every payload, names and phone numbers included, to its message log. Here
payload logging is optional and, when on, payloads pass through :func:`mask_payload` first.
Values of personal fields (names, street, postcode, city, phone, fax, e-mail, website, owner,
tax numbers) become ``***``; keys, codes and technical values stay readable so a masked payload
is still useful for finding a mapping problem. Empty values and the IDoc "no data" sign ``/``
are kept because they carry no personal data but do explain the behaviour.

A payload that cannot be parsed is not logged at all: masking must never leak by accident.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from d365sap.errors import ValidationError
from d365sap.xmlsafe import local_name, parse_xml

MASK = "***"

# Names that a token rule would miss: CRM address fields and the IDoc's short SAP field names.
_PERSONAL_FIELDS = frozenset(
    {
        # CRM erpaccounts
        "addr1line1",
        "addr1line2",
        "addr1line3",
        "addr1zip",
        # IDoc (E1KNA1M, E1KNVKM, E1KNA11, ...)
        "sortl",
        "stras",
        "pfach",
        "pstlz",
        "pstl2",
        "ort01",
        "ort02",
        "telf1",
        "telf2",
        "telfx",
        "telbx",
        "teltx",
        "telx1",
        "stcd1",
        "stcd2",
        "stcd3",
        "stcd4",
        "stcd5",
        "stceg",
        "knurl",
        "smtp_addr",
        "namev",
        "name_co",
        "gbdat",
        "fiskn",
        # S/4 API_BUSINESS_PARTNER
        "searchterm1",
        "searchterm2",
        "housenumber",
        "birthdate",
        "bpidentificationnumber",
        "taxnumber1",
        "bptaxnumber",
    }
)

# Names the token rule would wrongly catch: the region's name is a code's label, not personal.
_NOT_PERSONAL = frozenset({"addr1spname"})

# Any field whose name contains one of these is personal (CRM and S/4 use long names).
_PERSONAL_TOKENS = (
    "name",
    "street",
    "phone",
    "fax",
    "mail",
    "website",
    "url",
    "owner",
    "city",
    "postal",
    "pobox",
)


def is_personal_field(name: str) -> bool:
    """Whether values of field/element ``name`` are treated as personal data."""
    lowered = name.lower()
    if lowered in _NOT_PERSONAL:
        return False
    return lowered in _PERSONAL_FIELDS or any(token in lowered for token in _PERSONAL_TOKENS)


def mask_payload(text: str, content_type: str) -> str:
    """``text`` (CRM XML, IDoc XML, S/4 JSON) with personal values replaced by ``***``.

    The format is taken from ``content_type`` (``...json`` / ``...xml`` /
    ``application/x-sap.idoc``) and, failing that, from the first character. Unparseable or
    unknown payloads are replaced by a short notice instead of being logged unmasked.
    """
    kind = _kind(text, content_type)
    try:
        if kind == "json":
            return json.dumps(_mask_json(json.loads(text), masked=False), ensure_ascii=False)
        if kind == "xml":
            return _mask_xml(text)
    except (ValidationError, ValueError):
        return f"[payload withheld: {len(text)} characters of unparseable {kind}]"
    return f"[payload withheld: {len(text)} characters of {content_type or 'unknown type'}]"


def _kind(text: str, content_type: str) -> str:
    lowered = content_type.lower()
    if "json" in lowered:
        return "json"
    if "xml" in lowered or "idoc" in lowered:
        return "xml"
    start = text.lstrip()[:1]
    if start in ("{", "["):
        return "json"
    if start == "<":
        return "xml"
    return "other"


def _mask_value(value: str) -> str:
    if not value.strip() or value == "/":
        return value
    return MASK


def _mask_xml(text: str) -> str:
    root = parse_xml(text, what="payload")
    for element in root.iter():
        if not isinstance(element.tag, str) or len(element):
            continue
        if element.text is not None and is_personal_field(local_name(element)):
            element.text = _mask_value(element.text)
    return etree.tostring(root, encoding="unicode")


def _mask_json(value: Any, *, masked: bool) -> Any:
    if isinstance(value, dict):
        return {
            key: _mask_json(item, masked=masked or is_personal_field(str(key)))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_json(item, masked=masked) for item in value]
    if masked and isinstance(value, str):
        return _mask_value(value)
    return value
