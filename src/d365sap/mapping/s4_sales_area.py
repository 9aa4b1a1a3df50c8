"""CRM ``erpaccountdetails`` → S/4HANA Cloud ``A_CustomerSalesArea`` JSON bodies (§2.8, §2.9).

Compared with the package (``mm_CRM_S4HC_Customer`` ∘ ``Map_to_S4`` and ``Crm_to_S4hc`` ∘
``MapToS4_Update``) the bodies keep the same properties and values, with these deliberate fixes:

* D2: ``DeletionIndicator`` follows the shared flag rule and is omitted when the CRM sent no flag;
* D9: keys are stripped, must be non-blank, and numeric customer numbers can be zero-padded;
* D10: the constant empty ``AdditionalCustomerGroup1`` is gone, blank optional properties are
  omitted (so they do not wipe S/4 defaults) unless ``omit_blank_properties`` is off, and the
  ``to_SalesAreaTax`` row is sent only when departure country and tax category are both set
  (or demanded with ``send_tax_row="always"``);
* A2: every value is checked against the property's MaxLength from the API metadata, so an
  over-long value is a 400 naming the CRM field instead of an S/4 error after the fact.

The ``sap_create_*`` values only ever appear in the create body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from d365sap.errors import ValidationError
from d365sap.mapping.canonical import sales_area_from_details, sales_area_key_from_details
from d365sap.mapping.fields import check_max_length, detail_path, org_path
from d365sap.mapping.schemas import edmx_max_lengths
from d365sap.model.crm import ErpAccountDetailsMessage
from d365sap.model.customer import CustomerSalesArea, SalesAreaKey

if TYPE_CHECKING:
    from d365sap.config import S4Settings

SALES_AREA_TYPE = "A_CustomerSalesAreaType"
SALES_AREA_TAX_TYPE = "A_CustomerSalesAreaTaxType"
_SALES_AREA_LABEL = "A_CustomerSalesArea"
_TAX_LABEL = "A_CustomerSalesAreaTax"
TAX_NAVIGATION = "to_SalesAreaTax"


@dataclass(frozen=True)
class S4MappingOptions:
    """The S/4 mapping switches (mirrors :class:`d365sap.config.S4Settings`)."""

    customer_number_padding: int = 0
    omit_blank_properties: bool = True
    send_tax_row: Literal["when_complete", "always"] = "when_complete"

    def __post_init__(self) -> None:
        if not 0 <= self.customer_number_padding <= 10:
            raise ValueError("customer_number_padding must be between 0 and 10")
        if self.send_tax_row not in ("when_complete", "always"):
            raise ValueError("send_tax_row must be 'when_complete' or 'always'")

    @classmethod
    def from_settings(cls, settings: S4Settings) -> S4MappingOptions:
        """The options configured in the ``[s4]`` settings section."""
        return cls(
            customer_number_padding=settings.customer_number_padding,
            omit_blank_properties=settings.omit_blank_properties,
            send_tax_row=settings.send_tax_row,
        )


@dataclass(frozen=True)
class _Property:
    """One optional A_CustomerSalesArea property: its name, CRM source and value."""

    name: str
    source: str
    read: Callable[[CustomerSalesArea], str | bool | None]


_KEY_SOURCES = (
    ("Customer", detail_path("number")),
    ("SalesOrganization", org_path("sap_vkorg")),
    ("DistributionChannel", org_path("sap_vtweg")),
    ("Division", org_path("sap_spart")),
)

_CURRENCY = _Property("Currency", detail_path("currency"), lambda a: a.currency)
_CUSTOMER_GROUP = _Property(
    "CustomerGroup", detail_path("customergroup"), lambda a: a.customer_group
)
_DELETION = _Property("DeletionIndicator", detail_path("deletionflag"), lambda a: a.deletion_flag)
_SALES_GROUP = _Property("SalesGroup", detail_path("salesgroup"), lambda a: a.sales_group)
_SALES_OFFICE = _Property("SalesOffice", detail_path("salesoffice"), lambda a: a.sales_office)
_SALES_DISTRICT = _Property(
    "SalesDistrict", detail_path("salesdistrict"), lambda a: a.sales_district
)

# Create body, in the order of the package's POST schema (§3.5).
_CREATE_PROPERTIES = (
    _CURRENCY,
    _Property(
        "CustomerAccountAssignmentGroup",
        org_path("sap_create_accountassignmentgroup"),
        lambda a: a.create_defaults.account_assignment_group,
    ),
    _CUSTOMER_GROUP,
    _Property(
        "CustomerPaymentTerms",
        org_path("sap_create_paymentterms"),
        lambda a: a.create_defaults.payment_terms,
    ),
    _Property(
        "CustomerPriceGroup",
        org_path("sap_create_pricegroup"),
        lambda a: a.create_defaults.price_group,
    ),
    _Property(
        "IncotermsClassification",
        org_path("sap_create_incoterms"),
        lambda a: a.create_defaults.incoterms_classification,
    ),
    _Property(
        "IncotermsLocation2",
        org_path("sap_create_incotermslocation2"),
        lambda a: a.create_defaults.incoterms_location2,
    ),
    _Property(
        "IncotermsLocation1",
        org_path("sap_create_incotermslocation1"),
        lambda a: a.create_defaults.incoterms_location1,
    ),
    _DELETION,
    _Property(
        "OrderIsBlockedForCustomer",
        org_path("sap_create_orderblock"),
        lambda a: a.create_defaults.order_block,
    ),
    _SALES_GROUP,
    _SALES_OFFICE,
    _Property(
        "ShippingCondition",
        org_path("sap_create_shippingcondition"),
        lambda a: a.create_defaults.shipping_condition,
    ),
    _SALES_DISTRICT,
    _Property(
        "ExchangeRateType",
        org_path("sap_create_exchangeratetype"),
        lambda a: a.create_defaults.exchange_rate_type,
    ),
)

# Update body (§3.6): sales data only, no create defaults, no tax.
_UPDATE_PROPERTIES = (
    _CURRENCY,
    _CUSTOMER_GROUP,
    _DELETION,
    _SALES_GROUP,
    _SALES_OFFICE,
    _SALES_DISTRICT,
)

_TAX_COUNTRY_SOURCE = org_path("sap_create_taxdeparturecountry")
_TAX_CATEGORY_SOURCE = org_path("sap_create_taxcategory")
_TAX_CLASSIFICATION_SOURCE = org_path("sap_create_taxdeterminationcode")


def sales_area_key(message: ErpAccountDetailsMessage, options: S4MappingOptions) -> SalesAreaKey:
    """The normalised key used for the existence check, the PATCH URL and both bodies."""
    key = sales_area_key_from_details(
        message, customer_number_padding=options.customer_number_padding
    )
    _key_properties(key)
    return key


def create_payload(
    message: ErpAccountDetailsMessage, options: S4MappingOptions
) -> dict[str, object]:
    """JSON body for ``POST A_CustomerSalesArea`` (deep insert with ``to_SalesAreaTax``)."""
    area = sales_area_from_details(message, customer_number_padding=options.customer_number_padding)
    body = _key_properties(area.key)
    body.update(_optional_properties(area, _CREATE_PROPERTIES, options))
    tax_row = _tax_row(area, options)
    if tax_row is not None:
        body[TAX_NAVIGATION] = {"results": [tax_row]}
    return body


def update_payload(
    message: ErpAccountDetailsMessage, options: S4MappingOptions
) -> dict[str, object]:
    """JSON body for ``PATCH A_CustomerSalesArea(...)``: sales data, never create defaults."""
    area = sales_area_from_details(message, customer_number_padding=options.customer_number_padding)
    body = _key_properties(area.key)
    body.update(_optional_properties(area, _UPDATE_PROPERTIES, options))
    return body


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _key_properties(key: SalesAreaKey, label: str = _SALES_AREA_LABEL) -> dict[str, object]:
    lengths = edmx_max_lengths(SALES_AREA_TAX_TYPE if label == _TAX_LABEL else SALES_AREA_TYPE)
    values = (key.customer, key.sales_organization, key.distribution_channel, key.division)
    body: dict[str, object] = {}
    for (name, source), value in zip(_KEY_SOURCES, values, strict=True):
        check_max_length(value, lengths[name], target=f"{label}.{name}", source=source)
        body[name] = value
    return body


def _optional_properties(
    area: CustomerSalesArea, properties: tuple[_Property, ...], options: S4MappingOptions
) -> dict[str, object]:
    lengths = edmx_max_lengths(SALES_AREA_TYPE)
    body: dict[str, object] = {}
    for prop in properties:
        value = prop.read(area)
        if value is None:
            continue
        if isinstance(value, str):
            if options.omit_blank_properties and _blank(value):
                continue
            check_max_length(
                value,
                lengths[prop.name],
                target=f"{_SALES_AREA_LABEL}.{prop.name}",
                source=prop.source,
            )
        body[prop.name] = value
    return body


def _tax_row(area: CustomerSalesArea, options: S4MappingOptions) -> dict[str, object] | None:
    tax = area.create_defaults.tax
    country, category = tax.departure_country, tax.tax_category
    if country is None or category is None or _blank(country) or _blank(category):
        if options.send_tax_row == "always":
            missing = _TAX_COUNTRY_SOURCE if _blank(country) else _TAX_CATEGORY_SOURCE
            raise ValidationError(
                missing, "required: the to_SalesAreaTax row is always sent (send_tax_row 'always')"
            )
        return None
    lengths = edmx_max_lengths(SALES_AREA_TAX_TYPE)
    row = _key_properties(area.key, _TAX_LABEL)
    for name, value, source in (
        ("DepartureCountry", country.strip(), _TAX_COUNTRY_SOURCE),
        ("CustomerTaxCategory", category.strip(), _TAX_CATEGORY_SOURCE),
        ("CustomerTaxClassification", tax.tax_classification, _TAX_CLASSIFICATION_SOURCE),
    ):
        if value is None or (options.omit_blank_properties and _blank(value)):
            continue
        check_max_length(value, lengths[name], target=f"{_TAX_LABEL}.{name}", source=source)
        row[name] = value
    return row
