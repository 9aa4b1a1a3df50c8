"""Strict parsing of the inbound CRM XML into :mod:`d365sap.model.crm` models.

The package accepted anything XPath could walk over and failed later (HTTP 500) or silently
mis-mapped. Here the message is checked up front, so every problem becomes a 400 that names the
element:

* the root must be the unqualified ``erpaccountdetails`` or ``erpaccounts``;
* ``linkederporg``, ``erpaccountdetail`` and ``erpaccount`` must occur exactly once (A6: the
  package would misalign several of them);
* unknown or repeated child elements, elements nested inside a value, stray text between
  elements and attributes (other than ``xsi:*``) are rejected;
* values stay strings, whatever numeric type the package's schemas claim (A2), and an absent
  element (``None``) stays distinguishable from an empty one (``""``).
"""

from __future__ import annotations

from collections import Counter

from lxml import etree
from pydantic import BaseModel

from d365sap.errors import ValidationError
from d365sap.model.crm import (
    ErpAccount,
    ErpAccountDetail,
    ErpAccountDetailsMessage,
    ErpAccountsMessage,
    LinkedErpOrg,
)
from d365sap.xmlsafe import parse_xml

__all__ = [
    "ErpAccount",
    "ErpAccountDetail",
    "ErpAccountDetailsMessage",
    "ErpAccountsMessage",
    "LinkedErpOrg",
    "parse_customer_message",
]

_XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
_ROOTS = ("erpaccountdetails", "erpaccounts")


def parse_customer_message(body: bytes | str) -> ErpAccountDetailsMessage | ErpAccountsMessage:
    """Parse an inbound customer message; raise :class:`ValidationError` naming the field."""
    root = parse_xml(body, what="body")
    name = _plain_name(root)
    if name not in _ROOTS:
        found = root.tag if isinstance(root.tag, str) else repr(root.tag)
        raise ValidationError(
            "body",
            f"root element '{found}' is not supported; expected 'erpaccountdetails' or "
            "'erpaccounts' without a namespace",
        )
    _check_container(root, name)
    if name == "erpaccounts":
        children = _single_children(root, name, ("erpaccount",))
        return ErpAccountsMessage(
            erpaccount=ErpAccount(
                **_leaves(children["erpaccount"], ErpAccount, name + "/erpaccount")
            )
        )
    children = _single_children(root, name, ("linkederporg", "erpaccountdetail"))
    return ErpAccountDetailsMessage(
        linkederporg=LinkedErpOrg(
            **_leaves(children["linkederporg"], LinkedErpOrg, name + "/linkederporg")
        ),
        erpaccountdetail=ErpAccountDetail(
            **_leaves(children["erpaccountdetail"], ErpAccountDetail, name + "/erpaccountdetail")
        ),
    )


def _plain_name(element: etree._Element) -> str | None:
    """The tag if it is an unqualified element name, else None (namespaced or not an element)."""
    tag = element.tag
    if not isinstance(tag, str) or tag.startswith("{"):
        return None
    return tag


def _check_attributes(element: etree._Element, path: str) -> None:
    for attribute in element.attrib:
        if not str(attribute).startswith("{" + _XSI_NAMESPACE + "}"):
            raise ValidationError(path, f"unexpected attribute '{attribute!s}'")


def _check_container(element: etree._Element, path: str) -> None:
    """A structural element: attributes and non-blank text between children are not allowed."""
    _check_attributes(element, path)
    if element.text is not None and element.text.strip():
        raise ValidationError(path, "unexpected text; only child elements are allowed here")
    for child in element:
        if child.tail is not None and child.tail.strip():
            raise ValidationError(path, "unexpected text; only child elements are allowed here")


def _child_path(parent_path: str, child: etree._Element) -> tuple[str, str]:
    name = _plain_name(child)
    if name is None:
        shown = child.tag if isinstance(child.tag, str) else repr(child.tag)
        raise ValidationError(f"{parent_path}/{shown}", "unknown element (namespaced)")
    return name, f"{parent_path}/{name}"


def _single_children(
    root: etree._Element, root_path: str, expected: tuple[str, ...]
) -> dict[str, etree._Element]:
    """The structural children of the root, each required exactly once."""
    found: dict[str, list[etree._Element]] = {name: [] for name in expected}
    for child in root:
        name, path = _child_path(root_path, child)
        if name not in found:
            raise ValidationError(path, "unknown element")
        found[name].append(child)
    result: dict[str, etree._Element] = {}
    for name, elements in found.items():
        path = f"{root_path}/{name}"
        if not elements:
            raise ValidationError(path, "element missing, exactly one expected")
        if len(elements) > 1:
            raise ValidationError(
                path, f"element occurs {len(elements)} times, exactly one is supported"
            )
        _check_container(elements[0], path)
        result[name] = elements[0]
    return result


def _leaves(element: etree._Element, model: type[BaseModel], path: str) -> dict[str, str]:
    """The value children of ``element``, checked against the fields of ``model``."""
    allowed = model.model_fields
    counts: Counter[str] = Counter()
    values: dict[str, str] = {}
    for child in element:
        name, child_path = _child_path(path, child)
        if name not in allowed:
            raise ValidationError(child_path, "unknown element")
        counts[name] += 1
        if counts[name] > 1:
            raise ValidationError(child_path, "element occurs more than once")
        if len(child):
            raise ValidationError(child_path, "a text value is expected, found child elements")
        _check_attributes(child, child_path)
        values[name] = child.text or ""
    return values
