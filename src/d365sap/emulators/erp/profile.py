"""The inbound partner profile: which message types and extensions the emulated ECC takes.

In ECC the inbound partner profile (WE20) binds a message type, optionally with an extension, to
a process code; an IDoc whose MESTYP/CIMTYP pair is not maintained there is not processed. The
emulator refuses such documents outright, naming the control-record field, and accepts the root
element names an IDoc-XML document of these types can carry.
"""

from __future__ import annotations

from collections.abc import Mapping

from d365sap.emulators.erp.schema import BASIC_TYPE, XSD_ROOT
from d365sap.emulators.settings import ErpEmulatorSettings


def accepted_root_names(settings: ErpEmulatorSettings) -> frozenset[str]:
    """Root element names of accepted documents: the XSD's, the basic type, and the extensions."""
    return frozenset({XSD_ROOT, BASIC_TYPE, *(e for e in settings.accepted_extensions if e)})


def _listed(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values) or "none"


def partner_profile_problems(
    control: Mapping[str, str], settings: ErpEmulatorSettings
) -> list[str]:
    """What the partner profile objects to in one control record (empty list: accepted)."""
    problems: list[str] = []
    mestyp = control.get("MESTYP", "").strip()
    if not mestyp:
        problems.append(
            "EDI_DC40-MESTYP: message type is missing, the inbound partner profile needs one of "
            + _listed(settings.accepted_message_types)
        )
    elif mestyp not in settings.accepted_message_types:
        problems.append(
            f"EDI_DC40-MESTYP: message type '{mestyp}' is not maintained in the inbound partner"
            f" profile (accepted: {_listed(settings.accepted_message_types)})"
        )
    cimtyp = control.get("CIMTYP", "").strip()
    if cimtyp not in settings.accepted_extensions:
        what = f"extension '{cimtyp}'" if cimtyp else "an IDoc without extension (CIMTYP)"
        problems.append(
            f"EDI_DC40-CIMTYP: {what} is not maintained in the inbound partner profile"
            f" (accepted: {_listed(settings.accepted_extensions)})"
        )
    return problems
