"""Customer account groups and their number ranges, as ECC's customizing (OBD2, XDN1) has them.

An account group (KNA1-KTOKD) decides how a new customer gets its number: from an internal
range, where SAP draws the next free number and the sender leaves KUNNR empty, or from an
external range, where the sender chooses KUNNR and SAP only checks that it lies in the range.
Numeric numbers are compared after ALPHA conversion (zero-padded to 10 digits), as SAP does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from d365sap.emulators.erp.customers import alpha_in


class AccountGroup(BaseModel):
    """One customer account group with its number range."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=4, pattern=r"^[A-Z0-9]+$")
    numbering: Literal["internal", "external"]
    range_from: str = Field(min_length=1, max_length=10, pattern=r"^[0-9]+$")
    range_to: str = Field(min_length=1, max_length=10, pattern=r"^[0-9]+$")

    @model_validator(mode="after")
    def _ordered(self) -> AccountGroup:
        if int(self.range_from) > int(self.range_to):
            raise ValueError(f"account group {self.name}: range_from is greater than range_to")
        return self

    @property
    def label(self) -> str:
        """``0001 (internal 0000100000-0000199999)``, for status messages."""
        return (
            f"{self.name} ({self.numbering} {alpha_in(self.range_from)}-{alpha_in(self.range_to)})"
        )

    def contains(self, kunnr: str) -> bool:
        """Whether ``kunnr`` (either format) lies in this group's range."""
        value = alpha_in(kunnr)
        return value.isdigit() and alpha_in(self.range_from) <= value <= alpha_in(self.range_to)

    def next_number(self, taken: Iterable[str]) -> str | None:
        """The next free internal number after the highest one taken in the range; None: full."""
        in_range = [int(k) for k in taken if self.contains(k)]
        candidate = max(in_range, default=int(self.range_from) - 1) + 1
        if candidate > int(self.range_to):
            return None
        return alpha_in(str(candidate))


def default_account_groups() -> list[AccountGroup]:
    """0001 sold-to party with internal numbers (the seed's customers lie in its range), and
    ZEXT with external numbers, for senders that choose the number themselves."""
    return [
        AccountGroup(name="0001", numbering="internal", range_from="100000", range_to="199999"),
        AccountGroup(name="ZEXT", numbering="external", range_from="900000", range_to="999999"),
    ]
