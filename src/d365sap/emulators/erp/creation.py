"""Creating a customer from a DEBMAS IDoc: account group, number, mandatory fields, the message.

ECC's DEBMAS inbound creates a customer it does not know when the IDoc names an account group
(E1KNA1M-KTOKD). The group's number range decides the number: internal ranges draw the next
free number (KUNNR must be empty), external ranges take the sender's KUNNR if it lies in the
range. Name and country are required for every customer (address management refuses an address
without them); other customizing (field status of the group) is not checked.

The posted IDoc reports the new number the way SAP does, in its status 53 record: message F2 172
"Customer &1 has been created for sales area &2 &3 &4" when the IDoc carried sales areas, else F2
247 "Customer &1 has been created", with the customer number (internal format) as parameter 1.
"""

from __future__ import annotations

from collections.abc import Mapping

from d365sap.emulators.erp.customers import (
    Customer,
    CustomerMaster,
    MasterLayout,
    alpha_in,
    blank_customer,
)
from d365sap.emulators.erp.idoc import NO_DATA, Segment
from d365sap.emulators.erp.numbering import AccountGroup
from d365sap.emulators.erp.registry import SapMessage

CREATED_WITH_SALES_AREA = ("F2", "172", "Customer &1 has been created for sales area &2 &3 &4")
CREATED = ("F2", "247", "Customer &1 has been created")
_REQUIRED = (("NAME1", "a name"), ("LAND1", "a country"))


class PostingError(Exception):
    """An application error: the IDoc ends in status 51 with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _given(segment: Segment, name: str) -> str | None:
    value = segment.fields.get(name)
    return None if value in (None, "", NO_DATA) else value


def create_customer(
    general: Segment,
    kunnr: str | None,
    master: CustomerMaster,
    layout: MasterLayout,
    groups: Mapping[str, AccountGroup],
) -> Customer:
    """A new, still empty customer numbered by its account group; PostingError if it cannot be.

    ``kunnr`` is E1KNA1M-KUNNR in internal format (None when empty); the caller has already
    found that no customer has it.
    """
    group_name = _given(general, "KTOKD")
    if group_name is None:
        if kunnr is None:
            raise PostingError("E1KNA1M-KUNNR: customer number is missing")
        raise PostingError(f"Customer {general.fields.get('KUNNR', '').strip()} does not exist")
    group = groups.get(group_name)
    if group is None:
        known = ", ".join(sorted(groups)) or "none"
        raise PostingError(
            f"E1KNA1M-KTOKD: account group {group_name} is not defined (defined: {known})"
        )
    for name, what in _REQUIRED:
        if _given(general, name) is None:
            raise PostingError(f"E1KNA1M-{name}: {what} is required to create a customer")
    number = _number(group, kunnr, master)
    customer = blank_customer(layout, number)
    customer.kna1["KTOKD"] = group.name
    return customer


def _number(group: AccountGroup, kunnr: str | None, master: CustomerMaster) -> str:
    if group.numbering == "internal":
        if kunnr is not None:
            raise PostingError(
                f"E1KNA1M-KUNNR: customer {kunnr} does not exist, and account group "
                f"{group.label} assigns numbers itself: leave KUNNR empty to create one"
            )
        number = group.next_number(c.kunnr for c in master.all())
        if number is None:
            raise PostingError(f"Number range of account group {group.label} is exhausted")
        return number
    if kunnr is None:
        raise PostingError(
            f"E1KNA1M-KUNNR: account group {group.label} needs the customer number from the sender"
        )
    if not group.contains(kunnr):
        raise PostingError(
            f"E1KNA1M-KUNNR: customer number {kunnr} is not in the number range of account "
            f"group {group.label}"
        )
    return alpha_in(kunnr)


def created_message(customer: Customer, general: Segment) -> SapMessage:
    """F2 172 with the first sales area, or F2 247 without one."""
    areas = general.children_named("E1KNVVM")
    if areas:
        first = areas[0].fields
        keys = (first.get("VKORG", ""), first.get("VTWEG", ""), first.get("SPART", ""))
        msgid, msgno, template = CREATED_WITH_SALES_AREA
        return SapMessage(msgid, msgno, "S", (customer.kunnr, *keys), template)
    msgid, msgno, template = CREATED
    return SapMessage(msgid, msgno, "S", (customer.kunnr,), template)
