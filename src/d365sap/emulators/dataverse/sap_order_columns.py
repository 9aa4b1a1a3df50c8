"""Columns SAP's Dynamics solution adds to orders (``salesorder``) and order products.

The package routes an order on its ``erpsystemtype`` and fills eight custom fields of S/4's sales
order from Dynamics (SEED-SPEC §6.4): the order's quote number, opportunity and project flag,
and each line's project flag and opportunity, besides ids and numbers every order has. Dynamics
keeps these in the solution's own columns (prefix ``sap_``), and the outcome in S/4 comes back
to the order: S/4's order number, a status, S/4's message, when, and the d365sap message.
Lengths are those of the S/4 fields the values end up in.
"""

from __future__ import annotations

from d365sap.emulators.dataverse.columns import Column, choice, flag, text, when
from d365sap.emulators.dataverse.sap_tables import ERP_SYSTEM_TYPES

ORDER_STATUSES = {
    100_000_000: "Sent",
    100_000_001: "Created",
    100_000_002: "Failed",
}
"""``sap_orderstatus``: what became of the order in SAP."""


def order_columns() -> tuple[Column, ...]:
    """The solution's columns of ``salesorder``."""
    return (
        choice("sap_erpsystemtype", "ERP System Type", ERP_SYSTEM_TYPES),
        text("sap_quotenumber", "CRM Quote Number", 20),
        text("sap_opportunity", "Project Opportunity", 40),
        flag("sap_projectflag", "Project"),
        text("sap_salesordernumber", "SAP Sales Order", 10),
        choice("sap_orderstatus", "SAP Order Status", ORDER_STATUSES),
        text("sap_ordermessage", "SAP Message", 4000, memo=True),
        when("sap_ordersyncon", "Last Sent to SAP On"),
        text("sap_lastmessageid", "Last d365sap Message ID", 100),
    )


def order_line_columns() -> tuple[Column, ...]:
    """The solution's columns of ``salesorderdetail``."""
    return (
        flag("sap_projectflag", "Project"),
        text("sap_opportunity", "Project Opportunity", 40),
    )
