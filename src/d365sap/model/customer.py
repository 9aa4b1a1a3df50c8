"""Canonical customer data, independent of any wire format.

The inbound CRM messages (:mod:`d365sap.model.crm`) are translated into these models once; the
S/4HANA Cloud and IDoc mappings read from here. Keys are already normalised (stripped, non-blank,
optionally zero-padded, D9) and the deletion flag is already a tri-state boolean (D2), so no
target mapping re-implements those rules. All other values are kept verbatim as ``str | None``:
``None`` means "the CRM did not send it" and ``""`` means "the CRM sent it empty", a difference
the targets honour (omit vs. clear, §2.0).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Canonical(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SalesAreaKey(_Canonical):
    """Customer number plus sales area: the key of S/4 ``A_CustomerSalesArea`` and ECC KNVV."""

    customer: str = Field(min_length=1)
    sales_organization: str = Field(min_length=1)
    distribution_channel: str = Field(min_length=1)
    division: str = Field(min_length=1)

    def label(self) -> str:
        """Compact form for logs and messages, e.g. ``17100001/1710/10/00``."""
        return "/".join(
            (self.customer, self.sales_organization, self.distribution_channel, self.division)
        )

    def __str__(self) -> str:
        return self.label()


class SalesAreaTaxDefaults(_Canonical):
    """Tax classification proposed for a new sales area (S/4 ``to_SalesAreaTax``)."""

    departure_country: str | None = None
    tax_category: str | None = None
    tax_classification: str | None = None


class SalesAreaCreateDefaults(_Canonical):
    """Values the CRM proposes for a *new* sales area only (``sap_create_*``).

    They are never applied to an existing record: the ERP owns them after creation (§2.9).
    """

    account_assignment_group: str | None = None
    order_block: str | None = None
    shipping_condition: str | None = None
    incoterms_classification: str | None = None
    incoterms_location1: str | None = None
    incoterms_location2: str | None = None
    payment_terms: str | None = None
    exchange_rate_type: str | None = None
    price_group: str | None = None
    tax: SalesAreaTaxDefaults = Field(default_factory=SalesAreaTaxDefaults)


class CustomerSalesArea(_Canonical):
    """Sales data of one customer in one sales area (from ``erpaccountdetails``)."""

    key: SalesAreaKey
    currency: str | None = None
    customer_group: str | None = None
    sales_group: str | None = None
    sales_office: str | None = None
    sales_district: str | None = None
    deletion_flag: bool | None = Field(
        default=None, description="True: mark for deletion; None: the CRM did not say"
    )
    create_defaults: SalesAreaCreateDefaults = Field(default_factory=SalesAreaCreateDefaults)
    erp_system_type: str | None = None
    crm_record_id: str | None = Field(default=None, description="erpaccountdetail/id")
    crm_erp_account_id: str | None = Field(
        default=None, description="erpaccountdetail/erpaccountid"
    )
    crm_account_id: str | None = Field(default=None, description="erpaccountdetail/accountid")
    crm_linked_org_id: str | None = Field(default=None, description="linkederporg/id")
    crm_linked_org_name: str | None = Field(default=None, description="linkederporg/name")


class CustomerGeneralData(_Canonical):
    """General (central) customer data (from ``erpaccounts``).

    Fields the package never maps (street 2/3, PO box, region name, e-mail, website, ISO-3
    language, customer group, owner; G4) are kept so a later mapping can use them without
    touching the parser.
    """

    number: str = Field(min_length=1)
    name1: str | None = None
    name2: str | None = None
    name3: str | None = None
    name4: str | None = None
    search_name: str | None = None
    street: str | None = None
    street2: str | None = None
    street3: str | None = None
    po_box: str | None = None
    postal_code: str | None = None
    city: str | None = None
    region: str | None = None
    region_name: str | None = None
    country: str | None = None
    phone: str | None = None
    fax: str | None = None
    email: str | None = None
    website: str | None = None
    language_iso2: str | None = None
    language_iso3: str | None = None
    customer_group: str | None = None
    owner: str | None = None
    crm_record_id: str | None = Field(default=None, description="erpaccount/id")
    crm_account_id: str | None = Field(default=None, description="erpaccount/accountid")
