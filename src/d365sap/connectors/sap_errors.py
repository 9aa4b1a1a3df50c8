"""Reading SAP's error replies so the caller sees S/4's own text, not a bare status code (D5)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lxml import etree

from d365sap.xmlsafe import local_name


@dataclass(frozen=True)
class SapErrorDetail:
    """The message, code and details of an OData v2 error body."""

    code: str = ""
    message: str = ""
    details: tuple[str, ...] = field(default_factory=tuple)

    def text(self) -> str:
        """One line: the main message, then details that add something."""
        extra = [d for d in self.details if d and d != self.message]
        parts = [self.message or self.code or "no message"]
        if extra:
            parts.append("; ".join(extra))
        return " | ".join(parts)


def parse_odata_error(body: bytes, content_type: str) -> SapErrorDetail:
    """Parse ``{"error":{"code","message":{"value"},"innererror":{"errordetails":[…]}}}``.

    Falls back to the Atom/XML error form and finally to the raw text.
    """
    text = body.decode("utf-8", "replace").strip()
    if "json" in content_type or text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return SapErrorDetail(message=text[:500])
        error = document.get("error", {}) if isinstance(document, dict) else {}
        message = error.get("message", "")
        value = message.get("value", "") if isinstance(message, dict) else str(message)
        details = []
        inner = error.get("innererror", {})
        if isinstance(inner, dict):
            for item in inner.get("errordetails", []) or []:
                if isinstance(item, dict):
                    target = item.get("propertyref") or item.get("target") or ""
                    msg = str(item.get("message", ""))
                    details.append(f"{target}: {msg}" if target and target not in msg else msg)
        return SapErrorDetail(
            code=str(error.get("code", "")), message=value, details=tuple(details)
        )
    if text.startswith("<"):
        try:
            root = etree.fromstring(
                text.encode(), etree.XMLParser(resolve_entities=False, no_network=True)
            )
        except etree.XMLSyntaxError:
            return SapErrorDetail(message=text[:500])
        code = message = ""
        for node in root.iter():
            if not isinstance(node.tag, str):
                continue
            name = local_name(node)
            if name == "code" and not code:
                code = (node.text or "").strip()
            elif name in {"message", "faultstring"} and not message:
                message = (node.text or "").strip()
        return SapErrorDetail(code=code, message=message or text[:500])
    return SapErrorDetail(message=text[:500])
