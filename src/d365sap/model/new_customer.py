"""Canonical data of a customer SAP does not know yet (SEED-SPEC §7 G1, G2).

The package could only change customers that SAP already had. A customer without an SAP number
is created instead: general data (names, address, communication) plus one or more sales areas.
The models here hold exactly that, already checked (blank values are ``None``, codes upper
case, lengths not yet: the target mappings check them against SAP's own limits), and carry the
Dataverse row ids so the number SAP assigns can be written back to the right rows.

Once SAP has given the customer a number, :meth:`NewCustomerSalesArea.with_number` turns a sales
area into the :class:`~d365sap.model.customer.CustomerSalesArea` every later update uses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from d365sap.model.customer import CustomerSalesArea, SalesAreaCreateDefaults, SalesAreaKey

SystemType = Literal["S4HC", "ECC"]


class _Canonical(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataverseReferences(_Canonical):
    """The Dataverse rows a new customer was assembled from (ids as GUID strings)."""

    account_id: str = Field(min_length=1)
    erp_account_id: str = Field(min_length=1)
    erp_account_detail_id: str | None = None
    linked_org_id: str | None = None


class CustomerAddress(_Canonical):
    """The customer's standard address. The country is the one value SAP cannot do without."""

    street: str | None = None
    street2: str | None = None
    street3: str | None = None
    po_box: str | None = None
    postal_code: str | None = None
    city: str | None = None
    region: str | None = Field(default=None, description="SAP region key (at most 3 characters)")
    region_name: str | None = Field(
        default=None, description="a region given as a name: kept, not sent (SAP wants the key)"
    )
    country: str = Field(min_length=2, max_length=3, description="ISO 3166 code, upper case")


class NewCustomerGeneral(_Canonical):
    """General data: what S/4 keeps on the business partner and ECC in KNA1."""

    name1: str = Field(min_length=1)
    name2: str | None = None
    name3: str | None = None
    name4: str | None = None
    search_term: str | None = None
    language: str | None = Field(default=None, description="ISO 639-1, upper case")
    address: CustomerAddress
    phone: str | None = None
    fax: str | None = None
    email: str | None = None
    website: str | None = None


class NewCustomerSalesArea(_Canonical):
    """Sales data of the new customer in one sales area (KNVV / ``A_CustomerSalesArea``)."""

    sales_organization: str = Field(min_length=1)
    distribution_channel: str = Field(min_length=1)
    division: str = Field(min_length=1)
    currency: str | None = None
    customer_group: str | None = None
    sales_group: str | None = None
    sales_office: str | None = None
    sales_district: str | None = None
    create_defaults: SalesAreaCreateDefaults = Field(default_factory=SalesAreaCreateDefaults)
    erp_account_detail_id: str | None = None
    linked_org_id: str | None = None

    def label(self) -> str:
        """``1710/10/00``, for messages."""
        return f"{self.sales_organization}/{self.distribution_channel}/{self.division}"

    def with_number(self, customer: str, *, system_type: SystemType) -> CustomerSalesArea:
        """The sales area of the created customer, as every later update sees it."""
        return CustomerSalesArea(
            key=SalesAreaKey(
                customer=customer,
                sales_organization=self.sales_organization,
                distribution_channel=self.distribution_channel,
                division=self.division,
            ),
            currency=self.currency,
            customer_group=self.customer_group,
            sales_group=self.sales_group,
            sales_office=self.sales_office,
            sales_district=self.sales_district,
            deletion_flag=False,
            create_defaults=self.create_defaults,
            erp_system_type=system_type,
            crm_record_id=self.erp_account_detail_id,
            crm_linked_org_id=self.linked_org_id,
        )


class NewCustomer(_Canonical):
    """A customer to be created in one SAP system, with its sales areas."""

    system_type: SystemType
    general: NewCustomerGeneral
    sales_areas: tuple[NewCustomerSalesArea, ...] = ()
    source: DataverseReferences
