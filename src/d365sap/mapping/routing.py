"""Where an inbound customer message goes: the §1.2 decision table, nothing more.

The package's routers compare exactly (case-sensitive, untrimmed), so ``s4hc`` or ``ECC `` are
discarded; that behaviour is kept on purpose because the CRM configuration decides the target.
What changes is the explanation (D3): a discard carries the real reason instead of "Sales
Organization X is unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from d365sap.model.crm import ErpAccountDetailsMessage, ErpAccountsMessage

S4HC_SYSTEM_TYPE = "S4HC"
ECC_SYSTEM_TYPE = "ECC"


class Route(StrEnum):
    """The four outcomes of the routing table."""

    S4HC = "s4hc"
    ERP_ACCOUNT = "erp_account"
    ERP_ACCOUNT_DETAIL = "erp_account_detail"
    DISCARD = "discarded"


@dataclass(frozen=True)
class RouteDecision:
    """The chosen route and a human-readable reason (used for logs and discard responses)."""

    route: Route
    reason: str


def decide_route(message: ErpAccountDetailsMessage | ErpAccountsMessage) -> RouteDecision:
    """Apply the §1.2 table in order: S4HC, non-blank erpaccount id, ECC, else discard."""
    system_type = _system_type(message)
    account_id = message.erpaccount.id if isinstance(message, ErpAccountsMessage) else None
    if system_type == S4HC_SYSTEM_TYPE:
        return RouteDecision(Route.S4HC, f"erpsystemtype '{S4HC_SYSTEM_TYPE}'")
    if account_id is not None and account_id.strip() != "":
        return RouteDecision(Route.ERP_ACCOUNT, f"erpaccount id '{account_id.strip()}'")
    if system_type == ECC_SYSTEM_TYPE:
        return RouteDecision(Route.ERP_ACCOUNT_DETAIL, f"erpsystemtype '{ECC_SYSTEM_TYPE}'")
    return RouteDecision(Route.DISCARD, _discard_reason(message, system_type))


def _system_type(message: ErpAccountDetailsMessage | ErpAccountsMessage) -> str | None:
    if isinstance(message, ErpAccountDetailsMessage):
        return message.linkederporg.erpsystemtype
    return None


def _discard_reason(
    message: ErpAccountDetailsMessage | ErpAccountsMessage, system_type: str | None
) -> str:
    if isinstance(message, ErpAccountsMessage):
        if message.erpaccount.id is None:
            return "erpaccounts message without erpaccount id"
        return "erpaccounts message with a blank erpaccount id"
    if system_type is None:
        return "no erpsystemtype and no erpaccount id"
    return f"unsupported erpsystemtype '{system_type}' and no erpaccount id"
