"""Settings for creating customers that SAP does not know yet (SEED-SPEC §7 G1, G2).

SAP's package can only change customers that already exist. d365sap also creates them: in
S/4HANA Cloud as a business partner with the customer role and sales-area data (one deep insert
on ``A_BusinessPartner``), in SAP ERP with a DEBMAS IDoc carrying general and sales-area data.
What SAP needs for that and the CRM does not hold (business partner category, grouping, roles,
the ERP account group and where customer numbers come from) is configuration, kept here and
mounted as ``[s4.create]`` and ``[erp.create]`` in :mod:`d365sap.config`.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from d365sap.config_base import Section as _Section

_CODE = r"^[A-Z0-9_]+$"


class S4CreateSettings(_Section):
    """How a new customer is created in S/4HANA Cloud (``POST A_BusinessPartner``)."""

    business_partner_category: str = Field(
        default="2",
        pattern=r"^[12]$",
        description="1 person, 2 organization (a Dynamics account is an organization)",
    )
    business_partner_grouping: str = Field(
        default="BP02",
        min_length=1,
        max_length=4,
        pattern=_CODE,
        description="BP grouping; it decides the number range (BP02: internal numbers)",
    )
    roles: list[str] = Field(
        default_factory=lambda: ["FLCU00", "FLCU01"],
        min_length=1,
        description="BP roles created with the partner: FLCU00 customer (financials), "
        "FLCU01 customer (sales)",
    )
    customer_account_group: str | None = Field(
        default=None,
        max_length=4,
        pattern=_CODE,
        description="A_Customer.CustomerAccountGroup; unset: S/4 derives it from the grouping",
    )
    default_language: str = Field(
        default="EN",
        pattern=r"^[A-Z]{2}$",
        description="BP language when the ERP account has none (ISO 639-1, upper case)",
    )

    @model_validator(mode="after")
    def _roles_are_codes(self) -> S4CreateSettings:
        for role in self.roles:
            if not role or len(role) > 6 or not role.replace("_", "").isalnum():
                raise ValueError(f"roles: {role!r} is not a BP role code (at most 6 characters)")
        if len(set(self.roles)) != len(self.roles):
            raise ValueError("roles: each role may be listed once")
        return self


class CustomerNumberRange(_Section):
    """An external customer number range: d365sap chooses the number, SAP checks it.

    Bounds are compared after SAP's ALPHA conversion (numeric values zero-padded to 10), so
    ``from_ = "900000"`` and ``"0000900000"`` mean the same.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, max_length=10, pattern=r"^[0-9]+$")
    to: str = Field(min_length=1, max_length=10, pattern=r"^[0-9]+$")

    @model_validator(mode="after")
    def _ordered(self) -> CustomerNumberRange:
        if int(self.from_) > int(self.to):
            raise ValueError("from must not be greater than to")
        return self

    def contains(self, number: str) -> bool:
        """Whether ``number`` (any zero padding) lies in the range."""
        value = number.strip()
        return value.isdigit() and int(self.from_) <= int(value) <= int(self.to)

    def number(self, offset: int) -> str:
        """The ``offset``-th number of the range (0: the first), as SAP shows it (no zeros).

        The caller draws ``offset`` from a durable counter, so a number is never handed out
        twice; an offset past the end of the range is refused rather than wrapped around.
        """
        if offset < 0:
            raise ValueError("offset must not be negative")
        value = int(self.from_) + offset
        if value > int(self.to):
            raise ValueError(f"customer number range {self.from_}-{self.to} is exhausted")
        return str(value)


class ErpCreateSettings(_Section):
    """How a new customer is created in SAP ERP (DEBMAS IDoc with KNA1 and KNVV data)."""

    account_group: str = Field(
        default="0001",
        min_length=1,
        max_length=4,
        pattern=_CODE,
        description="KTOKD of new customers; in SAP it decides the number range",
    )
    number_range: CustomerNumberRange | None = Field(
        default=None,
        description="external numbers chosen by d365sap; unset: SAP numbers internally and "
        "reports the number in the IDoc status",
    )
    status_attempts: int = Field(
        default=5, ge=1, le=60, description="IDoc status reads before giving up for this try"
    )
    status_interval_seconds: float = Field(
        default=1.0, ge=0, description="pause between IDoc status reads while SAP posts"
    )
