"""The in-memory customer master of the emulated ECC: KNA1, its Z1ZAKNA1 append, and KNVV.

Only what a DEBMAS IDoc of this interface can change is kept: general data (every E1KNA1M field),
the customer-specific fields of extension segment Z1ZAKNA1, and the sales areas (every E1KNVVM
field) keyed by sales organisation, distribution channel and division. The column lists come from
the IDoc schema, so the master and the segments can never disagree about a field.

The classes here hold no lock; :class:`~d365sap.emulators.erp.state.ErpState` serialises access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from d365sap.emulators.erp.schema import DebmasSchema

SalesAreaKey = tuple[str, str, str]
"""(VKORG, VTWEG, SPART)."""
SALES_AREA_KEYS = ("VKORG", "VTWEG", "SPART")
_NOT_STORED = ("MSGFN",)
"""Segment fields that steer processing and are not table columns."""


def alpha_in(kunnr: str) -> str:
    """SAP's ALPHA input conversion: numeric numbers are zero-padded to 10, others kept as given."""
    value = kunnr.strip()
    return value.zfill(10) if value.isdigit() and len(value) <= 10 else value


def alpha_out(kunnr: str) -> str:
    """ALPHA output conversion: leading zeros of a numeric number are dropped for display."""
    return (kunnr.lstrip("0") or "0") if kunnr.isdigit() else kunnr


@dataclass(frozen=True)
class MasterLayout:
    """Columns (with their maximum lengths) of KNA1, Z1ZAKNA1 and KNVV, in segment order."""

    kna1: Mapping[str, int | None]
    z1zakna1: Mapping[str, int | None]
    knvv: Mapping[str, int | None]

    @classmethod
    def from_schema(cls, schema: DebmasSchema) -> MasterLayout:
        """Derive the columns from segments E1KNA1M, Z1ZAKNA1 and E1KNVVM."""

        def columns(segment: str) -> dict[str, int | None]:
            spec = schema.segment(segment)
            return {
                m.name: m.max_length
                for m in spec.members
                if not m.is_segment and m.name not in _NOT_STORED
            }

        return cls(columns("E1KNA1M"), columns("Z1ZAKNA1"), columns("E1KNVVM"))


@dataclass
class SalesArea:
    """One KNVV row; ``fields`` holds every KNVV column including the three keys."""

    fields: dict[str, str]

    @property
    def key(self) -> SalesAreaKey:
        """(VKORG, VTWEG, SPART) of this row."""
        return (self.fields["VKORG"], self.fields["VTWEG"], self.fields["SPART"])

    @property
    def deletion_flag(self) -> bool:
        """KNVV-LOEVM: the sales area is flagged for deletion."""
        return self.fields.get("LOEVM") == "X"

    def to_json(self) -> dict[str, Any]:
        """The row as the admin API shows it."""
        vkorg, vtweg, spart = self.key
        return {
            "vkorg": vkorg,
            "vtweg": vtweg,
            "spart": spart,
            "deletion_flag": self.deletion_flag,
            "knvv": dict(self.fields),
        }


@dataclass
class Customer:
    """One customer: the KNA1 row (with KUNNR in internal format), its Z fields and sales areas."""

    kna1: dict[str, str]
    z1zakna1: dict[str, str]
    sales_areas: dict[SalesAreaKey, SalesArea] = field(default_factory=dict)
    changed_by_idocs: list[str] = field(default_factory=list)

    @property
    def kunnr(self) -> str:
        """KNA1-KUNNR in internal (ALPHA-converted) format."""
        return self.kna1["KUNNR"]

    def clone(self) -> Customer:
        """A copy a posting can change and drop without touching the master.

        The rows are copied; the sales areas are shared and copied on write by the posting
        (:func:`~d365sap.emulators.erp.posting` replaces an area before changing it), so a
        customer with thousands of sales areas is not deep-copied for every IDoc.
        """
        return Customer(
            kna1=dict(self.kna1),
            z1zakna1=dict(self.z1zakna1),
            sales_areas=dict(self.sales_areas),
            changed_by_idocs=list(self.changed_by_idocs),
        )

    def to_json(self) -> dict[str, Any]:
        """The customer as the admin API shows it."""
        return {
            "kunnr": self.kunnr,
            "kunnr_external": alpha_out(self.kunnr),
            "deletion_flag": self.kna1.get("LOEVM") == "X",
            "kna1": dict(self.kna1),
            "z1zakna1": dict(self.z1zakna1),
            "sales_areas": [area.to_json() for _, area in sorted(self.sales_areas.items())],
            "changed_by_idocs": list(self.changed_by_idocs),
        }


def blank_customer(layout: MasterLayout, kunnr: str) -> Customer:
    """A customer with every column initial (``""``), as a fresh KNA1 row would be."""
    kna1 = dict.fromkeys(layout.kna1, "")
    kna1["KUNNR"] = alpha_in(kunnr)
    return Customer(kna1=kna1, z1zakna1=dict.fromkeys(layout.z1zakna1, ""))


def blank_sales_area(layout: MasterLayout, key: SalesAreaKey) -> SalesArea:
    """A KNVV row with every column initial apart from its key."""
    fields = dict.fromkeys(layout.knvv, "")
    fields.update(zip(SALES_AREA_KEYS, key, strict=True))
    return SalesArea(fields)


class CustomerMaster:
    """Customers by internal customer number."""

    def __init__(self, customers: Iterable[Customer] = ()) -> None:
        self._rows: dict[str, Customer] = {}
        for customer in customers:
            self.replace(customer.clone())

    def get(self, kunnr: str) -> Customer | None:
        """The customer numbered ``kunnr`` (either format), or None."""
        return self._rows.get(alpha_in(kunnr))

    def replace(self, customer: Customer) -> None:
        """Store ``customer`` under its number, replacing any earlier version."""
        self._rows[customer.kunnr] = customer

    def all(self) -> list[Customer]:
        """Every customer, ordered by number."""
        return [self._rows[k] for k in sorted(self._rows)]
