"""A new customer → one deep insert on S/4HANA Cloud's ``A_BusinessPartner`` (SEED-SPEC §7 G1).

The package could only add a sales area to a customer S/4 already had. Here a customer without
an SAP number is created in one request, as API_BUSINESS_PARTNER expects it:

* ``A_BusinessPartner``: category, grouping (which decides the number range), names, search term,
  language, and ``BusinessPartnerIDByExtSystem``: a 20-character reference derived from the
  Dataverse account id, so a create whose answer was lost can be found again instead of
  creating the partner twice;
* ``to_BusinessPartnerRole``: the configured roles (by default FLCU00 and FLCU01: without the
  customer roles S/4 keeps no customer data);
* ``to_BusinessPartnerAddress``: the standard address with ``to_EmailAddress``,
  ``to_PhoneNumber``, ``to_FaxNumber`` and ``to_URLAddress``;
* ``to_Customer`` → ``to_CustomerSalesArea`` (→ ``to_SalesAreaTax``): the sales areas with the
  same properties as the package's sales-area create (§2.8).

Numbers are left out: S/4 draws the partner number from the grouping's range and gives the
customer the same number. Every property and navigation used is checked against the packaged
EDMX (a test walks the body), and every value against its MaxLength: the error names the S/4
property and the Dataverse column it came from. Blank values are not sent.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from d365sap.config_create import S4CreateSettings
from d365sap.errors import ValidationError
from d365sap.mapping.fields import check_max_length
from d365sap.mapping.schemas import edmx_max_lengths
from d365sap.model.new_customer import NewCustomer, NewCustomerGeneral, NewCustomerSalesArea

PARTNER_SET = "A_BusinessPartner"
EXTERNAL_REFERENCE = "BusinessPartnerIDByExtSystem"
REFERENCE_LENGTH = 20
ORGANIZATION = "2"
FIRST_VALIDITY = "/Date(-62135596800000)/"
"""0001-01-01, the only validity start S/4 allows for home page URLs (see the EDMX quickinfo)."""

_ACCOUNT = "account"
_ERP_ACCOUNT = "sap_erpaccount"
_DETAIL = "sap_erpaccountdetail"
_ORG = "sap_linkederporg"


def external_reference(account_id: str) -> str:
    """The partner's ``BusinessPartnerIDByExtSystem``: 20 characters derived from the account id.

    The Dataverse GUID (36 characters) does not fit the 20-character field, so its SHA-256 is
    written in base32 and cut to 20 characters (100 bits): the same account always gives the
    same reference, and two accounts practically never share one.
    """
    digest = hashlib.sha256(account_id.strip().lower().encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii")[:REFERENCE_LENGTH]


@dataclass(frozen=True)
class _Prop:
    """One optional property: its name, the Dataverse column behind it, how to read it."""

    name: str
    source: str
    read: Callable[[NewCustomerSalesArea], str | None]


def _defaults(name: str) -> str:
    return f"{_ORG}.sap_create_{name}"


_SALES_AREA_PROPERTIES = (
    _Prop("Currency", f"{_DETAIL}.sap_currency", lambda a: a.currency),
    _Prop(
        "CustomerAccountAssignmentGroup",
        _defaults("accountassignmentgroup"),
        lambda a: a.create_defaults.account_assignment_group,
    ),
    _Prop("CustomerGroup", f"{_DETAIL}.sap_customergroup", lambda a: a.customer_group),
    _Prop(
        "CustomerPaymentTerms", _defaults("paymentterms"), lambda a: a.create_defaults.payment_terms
    ),
    _Prop("CustomerPriceGroup", _defaults("pricegroup"), lambda a: a.create_defaults.price_group),
    _Prop(
        "IncotermsClassification",
        _defaults("incoterms"),
        lambda a: a.create_defaults.incoterms_classification,
    ),
    _Prop(
        "IncotermsLocation2",
        _defaults("incotermslocation2"),
        lambda a: a.create_defaults.incoterms_location2,
    ),
    _Prop(
        "IncotermsLocation1",
        _defaults("incotermslocation1"),
        lambda a: a.create_defaults.incoterms_location1,
    ),
    _Prop(
        "OrderIsBlockedForCustomer",
        _defaults("orderblock"),
        lambda a: a.create_defaults.order_block,
    ),
    _Prop("SalesGroup", f"{_DETAIL}.sap_salesgroup", lambda a: a.sales_group),
    _Prop("SalesOffice", f"{_DETAIL}.sap_salesoffice", lambda a: a.sales_office),
    _Prop(
        "ShippingCondition",
        _defaults("shippingcondition"),
        lambda a: a.create_defaults.shipping_condition,
    ),
    _Prop("SalesDistrict", f"{_DETAIL}.sap_salesdistrict", lambda a: a.sales_district),
    _Prop(
        "ExchangeRateType",
        _defaults("exchangeratetype"),
        lambda a: a.create_defaults.exchange_rate_type,
    ),
)


class _Body:
    """Collects the properties of one entity, checking each against its EDMX MaxLength."""

    def __init__(self, entity_type: str, label: str) -> None:
        self.lengths = edmx_max_lengths(entity_type)
        self.label = label
        self.values: dict[str, object] = {}

    def put(self, name: str, value: str | bool | None, source: str) -> None:
        if name not in self.lengths:
            raise LookupError(f"{self.label} has no property {name}")
        if value is None:
            return
        if isinstance(value, str):
            check_max_length(
                value, self.lengths[name], target=f"{self.label}.{name}", source=source
            )
        self.values[name] = value


def business_partner_payload(
    customer: NewCustomer, settings: S4CreateSettings, *, send_tax_row: str = "when_complete"
) -> dict[str, object]:
    """The JSON body of ``POST A_BusinessPartner`` creating ``customer`` with its sales areas."""
    if customer.system_type != "S4HC":
        raise ValueError(f"a business partner is created in S4HC, not {customer.system_type}")
    general = customer.general
    partner = _Body("A_BusinessPartnerType", PARTNER_SET)
    partner.put("BusinessPartnerCategory", settings.business_partner_category, "[s4.create]")
    partner.put("BusinessPartnerGrouping", settings.business_partner_grouping, "[s4.create]")
    _names(partner, general, settings.business_partner_category)
    partner.put("SearchTerm1", general.search_term, f"{_ERP_ACCOUNT}.sap_searchname")
    language = general.language or settings.default_language
    partner.put("Language", language, f"{_ERP_ACCOUNT}.sap_language")
    partner.put("CorrespondenceLanguage", language, f"{_ERP_ACCOUNT}.sap_language")
    partner.put(
        EXTERNAL_REFERENCE, external_reference(customer.source.account_id), f"{_ACCOUNT}.accountid"
    )
    body = partner.values
    body["to_BusinessPartnerRole"] = {
        "results": [_role(role) for role in settings.roles],
    }
    body["to_BusinessPartnerAddress"] = {"results": [_address(general, language)]}
    customer_part = _Body("A_CustomerType", "A_Customer")
    customer_part.put("CustomerAccountGroup", settings.customer_account_group, "[s4.create]")
    customer_body = customer_part.values
    customer_body["to_CustomerSalesArea"] = {
        "results": [_sales_area(area, send_tax_row) for area in customer.sales_areas]
    }
    body["to_Customer"] = customer_body
    return body


def _names(partner: _Body, general: NewCustomerGeneral, category: str) -> None:
    names = (general.name1, general.name2, general.name3, general.name4)
    if category == ORGANIZATION:
        for index, name in enumerate(names, start=1):
            source = f"{_ERP_ACCOUNT}.sap_name{index}" + (" / account.name" if index == 1 else "")
            partner.put(f"OrganizationBPName{index}", name, source)
        return
    partner.put("LastName", general.name1, f"{_ERP_ACCOUNT}.sap_name1 / account.name")
    partner.put("FirstName", general.name2, f"{_ERP_ACCOUNT}.sap_name2")


def _role(role: str) -> dict[str, object]:
    body = _Body("A_BusinessPartnerRoleType", "A_BusinessPartnerRole")
    body.put("BusinessPartnerRole", role, "[s4.create] roles")
    return body.values


def _address(general: NewCustomerGeneral, language: str) -> dict[str, object]:
    address = general.address
    body = _Body("A_BusinessPartnerAddressType", "A_BusinessPartnerAddress")
    for name, value, source in (
        ("Country", address.country, "address1_country"),
        ("Region", address.region, "address1_stateorprovince"),
        ("CityName", address.city, "address1_city"),
        ("PostalCode", address.postal_code, "address1_postalcode"),
        ("StreetName", address.street, "address1_line1"),
        ("StreetSuffixName", address.street2, "address1_line2"),
        ("AdditionalStreetSuffixName", address.street3, "address1_line3"),
        ("POBox", address.po_box, "address1_postofficebox"),
    ):
        body.put(name, value, f"{_ACCOUNT}.{source}")
    body.put("Language", language, f"{_ERP_ACCOUNT}.sap_language")
    values = body.values
    if general.email is not None:
        email = _Body("A_AddressEmailAddressType", "A_AddressEmailAddress")
        email.put("OrdinalNumber", "1", "")
        email.put("IsDefaultEmailAddress", True, "")
        email.put("EmailAddress", general.email, f"{_ACCOUNT}.emailaddress1")
        values["to_EmailAddress"] = {"results": [email.values]}
    if general.phone is not None:
        phone = _Body("A_AddressPhoneNumberType", "A_AddressPhoneNumber")
        phone.put("OrdinalNumber", "1", "")
        phone.put("DestinationLocationCountry", address.country, f"{_ACCOUNT}.address1_country")
        phone.put("IsDefaultPhoneNumber", True, "")
        phone.put("PhoneNumber", general.phone, f"{_ACCOUNT}.telephone1")
        values["to_PhoneNumber"] = {"results": [phone.values]}
    if general.fax is not None:
        fax = _Body("A_AddressFaxNumberType", "A_AddressFaxNumber")
        fax.put("OrdinalNumber", "1", "")
        fax.put("FaxCountry", address.country, f"{_ACCOUNT}.address1_country")
        fax.put("IsDefaultFaxNumber", True, "")
        fax.put("FaxNumber", general.fax, f"{_ACCOUNT}.fax")
        values["to_FaxNumber"] = {"results": [fax.values]}
    if general.website is not None:
        url = _Body("A_AddressHomePageURLType", "A_AddressHomePageURL")
        url.put("OrdinalNumber", "1", "")
        url.put("ValidityStartDate", FIRST_VALIDITY, "")
        url.put("IsDefaultURLAddress", True, "")
        url.put("WebsiteURL", general.website, f"{_ACCOUNT}.websiteurl")
        values["to_URLAddress"] = {"results": [url.values]}
    return values


def _sales_area(area: NewCustomerSalesArea, send_tax_row: str) -> dict[str, object]:
    body = _Body("A_CustomerSalesAreaType", "A_CustomerSalesArea")
    body.put("SalesOrganization", area.sales_organization, f"{_ORG}.sap_vkorg")
    body.put("DistributionChannel", area.distribution_channel, f"{_ORG}.sap_vtweg")
    body.put("Division", area.division, f"{_ORG}.sap_spart")
    for prop in _SALES_AREA_PROPERTIES:
        body.put(prop.name, prop.read(area), prop.source)
    values = body.values
    tax = _tax_row(area, send_tax_row)
    if tax is not None:
        values["to_SalesAreaTax"] = {"results": [tax]}
    return values


def _tax_row(area: NewCustomerSalesArea, send_tax_row: str) -> dict[str, object] | None:
    tax = area.create_defaults.tax
    if tax.departure_country is None or tax.tax_category is None:
        if send_tax_row == "always":
            missing = "taxdeparturecountry" if tax.departure_country is None else "taxcategory"
            raise ValidationError(
                _defaults(missing),
                "required: the to_SalesAreaTax row is always sent (send_tax_row 'always')",
            )
        return None
    body = _Body("A_CustomerSalesAreaTaxType", "A_CustomerSalesAreaTax")
    body.put("DepartureCountry", tax.departure_country, _defaults("taxdeparturecountry"))
    body.put("CustomerTaxCategory", tax.tax_category, _defaults("taxcategory"))
    body.put("CustomerTaxClassification", tax.tax_classification, _defaults("taxdeterminationcode"))
    return body.values
