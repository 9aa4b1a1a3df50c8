"""Business rules of API_BUSINESS_PARTNER that the EDMX cannot express.

The metadata says which fields exist; S/4 additionally numbers business partners from a number
range, gives the customer role the partner's own number, numbers addresses (the address number
range) and their e-mail addresses, phone and fax numbers and URLs (sequence per address; the
person is empty for an organisation's address, and a URL is valid from 0001-01-01, the only date
the release allows), fills audit fields and derived names, and refuses a partner without a
category. Those rules live here, apart from the generic OData machinery, so they are easy to find
and to extend.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.edm import EntitySet, Navigation
from d365sap.emulators.s4.store import Record, Store

BUSINESS_PARTNER = "A_BusinessPartner"
ADDRESS = "A_BusinessPartnerAddress"
URL_ADDRESS = "A_AddressHomePageURL"
COMMUNICATION = frozenset(
    {"A_AddressEmailAddress", "A_AddressPhoneNumber", "A_AddressFaxNumber", URL_ADDRESS}
)
"""Address-dependent communication: keyed by address, person and sequence number."""
FIRST_VALIDITY = datetime(1, 1, 1)
# Role navigations whose target is numbered like its business partner (Customer = BP number).
ROLE_NUMBER_NAVIGATIONS = {
    (BUSINESS_PARTNER, "to_Customer"): "Customer",
    (BUSINESS_PARTNER, "to_Supplier"): "Supplier",
}
_CATEGORIES = {"1": "person", "2": "organization", "3": "group"}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _set_if_present(
    entity_set: EntitySet, values: dict[str, Any], name: str, value: Any, *, force: bool
) -> None:
    if name in entity_set.properties and (force or values.get(name) is None):
        values[name] = value


_NO_LIMIT = 10**40
"""Above any address number (the column holds at most 10 digits)."""


class Rules:
    """Server-side values and checks applied around every create and update."""

    def __init__(self, store: Store, number_from: int, number_to: int) -> None:
        self.store = store
        self.number_from = number_from
        self.number_to = max(number_from, number_to)

    def link_value(
        self, parent_set: EntitySet, parent: Mapping[str, Any], nav: Navigation, source: str
    ) -> Any:
        """The value a child created through ``nav`` inherits for the join property ``source``."""
        role = ROLE_NUMBER_NAVIGATIONS.get((parent_set.name, nav.name))
        if role == source and parent.get(source) is None:
            return parent.get(parent_set.keys[0])
        return parent.get(source)

    def next_partner_number(self) -> str:
        """Next free number of the internal business partner number range."""
        largest = self.store.largest_number(
            BUSINESS_PARTNER, "BusinessPartner", self.number_from, self.number_to
        )
        candidate = (self.number_from - 1 if largest is None else largest) + 1
        if candidate > self.number_to:
            raise errors.ODataError(
                400,
                "NR/751",
                f"Number range for business partners ({self.number_from}-{self.number_to}) "
                "is exhausted",
            )
        return str(candidate)

    def _next_address_number(self) -> str:
        """Next number of the address number range (addresses of all partners share it)."""
        largest = self.store.largest_number(ADDRESS, "AddressID", 0, _NO_LIMIT)
        return str((largest or 0) + 1)

    def _next_sequence(self, entity_set: EntitySet, values: Mapping[str, Any]) -> str:
        """Next communication sequence number of one address and person."""
        same = {"AddressID": values.get("AddressID"), "Person": values.get("Person")}
        taken = [
            int(r.values["OrdinalNumber"])
            for r in self.store.matching(entity_set.name, same)
            if str(r.values.get("OrdinalNumber")).isdigit()
        ]
        return str(max(taken, default=0) + 1)

    def _address_numbers(self, entity_set: EntitySet, values: dict[str, Any]) -> None:
        if entity_set.name == ADDRESS and not values.get("AddressID"):
            values["AddressID"] = self._next_address_number()
        if entity_set.name not in COMMUNICATION:
            return
        if values.get("Person") is None:
            values["Person"] = ""
        if not values.get("OrdinalNumber"):
            values["OrdinalNumber"] = self._next_sequence(entity_set, values)
        if entity_set.name == URL_ADDRESS:
            if values.get("ValidityStartDate") is None:
                values["ValidityStartDate"] = FIRST_VALIDITY
            if values.get("IsDefaultURLAddress") is None:
                values["IsDefaultURLAddress"] = False

    def prepare_create(self, entity_set: EntitySet, values: dict[str, Any], user: str) -> None:
        """Fill numbers, audit fields, UUIDs and derived names; check the partner category."""
        self._address_numbers(entity_set, values)
        if entity_set.name == BUSINESS_PARTNER:
            if not values.get("BusinessPartner"):
                values["BusinessPartner"] = self.next_partner_number()
            category = values.get("BusinessPartnerCategory")
            if category not in _CATEGORIES:
                raise errors.property_error(
                    400,
                    errors.BP_CATEGORY,
                    "Business partner category is missing or invalid "
                    f"('{category or ''}'; allowed: 1 person, 2 organization, 3 group)",
                    "BusinessPartnerCategory",
                )
            self._partner_names(values)
        now = _now()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        clock = timedelta(hours=now.hour, minutes=now.minute, seconds=now.second)
        _set_if_present(entity_set, values, "CreatedByUser", user, force=False)
        _set_if_present(entity_set, values, "CreationDate", today, force=False)
        _set_if_present(entity_set, values, "CreationTime", clock, force=False)
        for prop in entity_set.properties.values():
            if prop.edm_type == "Edm.Guid" and not prop.creatable and values.get(prop.name) is None:
                values[prop.name] = uuid.uuid4()

    def prepare_update(self, entity_set: EntitySet, values: dict[str, Any], user: str) -> None:
        """Stamp the last-change audit fields and re-derive names."""
        now = _now()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        clock = timedelta(hours=now.hour, minutes=now.minute, seconds=now.second)
        _set_if_present(entity_set, values, "LastChangedByUser", user, force=True)
        _set_if_present(entity_set, values, "LastChangeDate", today, force=True)
        _set_if_present(entity_set, values, "LastChangeTime", clock, force=True)
        if entity_set.name == BUSINESS_PARTNER:
            self._partner_names(values)

    def after_create(
        self, entity_set: EntitySet, record: Record, parent: tuple[EntitySet, Navigation] | None
    ) -> None:
        """Link a new customer/supplier role back to its partner and copy the partner's name."""
        if parent is None:
            return
        parent_set, nav = parent
        role = ROLE_NUMBER_NAVIGATIONS.get((parent_set.name, nav.name))
        if role is None:
            return
        number = record.values[role]
        partner = self.store.get(parent_set.name, (number,))
        if partner is None:
            return
        updated = dict(partner.values)
        updated[role] = number
        self.store.put(parent_set, updated)
        name = partner.values.get("BusinessPartnerName")
        if role == "Customer" and name:
            customer = dict(record.values)
            customer.setdefault("CustomerName", None)
            if customer.get("CustomerName") is None:
                customer["CustomerName"] = str(name)[:80]
                customer["CustomerFullName"] = str(partner.values.get("BusinessPartnerFullName"))
                self.store.put(entity_set, customer)

    @staticmethod
    def _partner_names(values: dict[str, Any]) -> None:
        if values.get("BusinessPartnerCategory") == "1":
            parts = [values.get("FirstName"), values.get("LastName")]
        else:
            parts = [values.get("OrganizationBPName1"), values.get("OrganizationBPName2")]
        name = " ".join(str(p) for p in parts if p)
        if name:
            values["BusinessPartnerFullName"] = name[:81]
            values["BusinessPartnerName"] = name[:81]
