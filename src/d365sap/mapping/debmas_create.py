"""A new customer → a DEBMAS07 IDoc that creates it in SAP ERP (SEED-SPEC §7 G2).

The package's IDocs can only change a customer: they carry no account group and leave every
field they do not map as ``/``. Creating one needs more, and this mapping sends it:

* E1KNA1M with the account group (KTOKD, from ``[erp.create] account_group``) and the general
  data (names, search term, address, phone, fax, language). KUNNR is the number drawn from the
  configured external range, or left out so that SAP numbers the customer from the group's
  internal range and reports the number in the IDoc status (see
  :mod:`d365sap.connectors.idoc_status`);
* Z1ZAKNA1 with the Dataverse ERP account id, as the package's erpaccounts IDoc has it;
* one E1KNVVM per sales area with the sales data and the create defaults of the linked ERP
  organisation (currency, account assignment group, payment terms, price group, incoterms,
  order block, shipping condition, exchange rate type), and E1KNVIM with the tax
  classification when departure country and tax category are set.

Fields without a value are left out (a new customer has nothing to keep, so ``/`` would say
nothing); the search term, when the ERP account has none, is made from the name. The incoterms
location goes to INCO2_L (70 characters) and, when it fits, to the older INCO2 (28) as well.
Field order, lengths and the control record work as for the change IDocs.
"""

from __future__ import annotations

from lxml import etree

from d365sap.config import IdocControlSettings
from d365sap.config_create import ErpCreateSettings
from d365sap.errors import ValidationError
from d365sap.mapping.idoc_builder import IdocValue, add_segment, idoc_document, serialize_idoc
from d365sap.model.new_customer import NewCustomer, NewCustomerSalesArea

SEARCH_TERM_LENGTH = 10
INCO2_LENGTH = 28
_ACCOUNT = "account"
_ERP_ACCOUNT = "sap_erpaccount"
_DETAIL = "sap_erpaccountdetail"
_ORG = "sap_linkederporg"


def search_term(name: str) -> str:
    """A search term made from a name: letters and digits, upper case, at most 10 characters."""
    return "".join(c for c in name.upper() if c.isalnum())[:SEARCH_TERM_LENGTH]


def check_customer_number(kunnr: str | None, settings: ErpCreateSettings) -> str | None:
    """``kunnr`` as the IDoc carries it: required in, and only with, an external number range."""
    numbers = settings.number_range
    if numbers is None:
        if kunnr is not None:
            raise ValidationError(
                "E1KNA1M-KUNNR",
                f"customer number {kunnr!r} given, but SAP numbers new customers itself "
                "([erp.create] has no number_range)",
            )
        return None
    if kunnr is None or not kunnr.strip():
        raise ValidationError(
            "E1KNA1M-KUNNR", "a number from [erp.create] number_range is required to create"
        )
    value = kunnr.strip()
    if not numbers.contains(value):
        raise ValidationError(
            "E1KNA1M-KUNNR",
            f"{value} is outside [erp.create] number_range {numbers.from_}-{numbers.to}",
        )
    return value


def create_idoc(
    customer: NewCustomer,
    control: IdocControlSettings,
    settings: ErpCreateSettings,
    *,
    kunnr: str | None = None,
) -> bytes:
    """The DEBMAS07 IDoc creating ``customer`` (KUNNR: ``kunnr`` or empty, see module doc)."""
    if customer.system_type != "ECC":
        raise ValueError(f"a DEBMAS IDoc is sent to ECC, not {customer.system_type}")
    number = check_customer_number(kunnr, settings)
    general = customer.general
    address = general.address
    values = {
        "KUNNR": IdocValue(number, "[erp.create] number_range"),
        "KTOKD": IdocValue(settings.account_group, "[erp.create] account_group"),
        "LAND1": IdocValue(address.country, f"{_ACCOUNT}.address1_country"),
        "NAME1": IdocValue(general.name1, f"{_ERP_ACCOUNT}.sap_name1 / {_ACCOUNT}.name"),
        "NAME2": IdocValue(general.name2, f"{_ERP_ACCOUNT}.sap_name2"),
        "NAME3": IdocValue(general.name3, f"{_ERP_ACCOUNT}.sap_name3"),
        "NAME4": IdocValue(general.name4, f"{_ERP_ACCOUNT}.sap_name4"),
        "ORT01": IdocValue(address.city, f"{_ACCOUNT}.address1_city"),
        "PFACH": IdocValue(address.po_box, f"{_ACCOUNT}.address1_postofficebox"),
        "PSTLZ": IdocValue(address.postal_code, f"{_ACCOUNT}.address1_postalcode"),
        "REGIO": IdocValue(address.region, f"{_ACCOUNT}.address1_stateorprovince"),
        "SORTL": IdocValue(
            general.search_term or search_term(general.name1), f"{_ERP_ACCOUNT}.sap_searchname"
        ),
        "STRAS": IdocValue(address.street, f"{_ACCOUNT}.address1_line1"),
        "TELF1": IdocValue(general.phone, f"{_ACCOUNT}.telephone1"),
        "TELFX": IdocValue(general.fax, f"{_ACCOUNT}.fax"),
        "SPRAS_ISO": IdocValue(general.language, f"{_ERP_ACCOUNT}.sap_language"),
    }
    root, idoc = idoc_document(control)
    e1kna1m = add_segment(idoc, "E1KNA1M", values, msgfn=control.msgfn, default=None)
    add_segment(
        e1kna1m,
        "Z1ZAKNA1",
        {"ZZ_ID": IdocValue(customer.source.erp_account_id, f"{_ERP_ACCOUNT}.sap_erpaccountid")},
        default=None,
    )
    for area in customer.sales_areas:
        _sales_area(e1kna1m, area, control)
    return serialize_idoc(root)


def _short(location: str | None) -> str | None:
    """INCO2 (28 characters) only when the location fits; INCO2_L (70) always carries it."""
    return location if location is not None and len(location) <= INCO2_LENGTH else None


def _defaults(name: str) -> str:
    return f"{_ORG}.sap_create_{name}"


def _sales_area(
    parent: etree._Element, area: NewCustomerSalesArea, control: IdocControlSettings
) -> None:
    create = area.create_defaults
    values = {
        "VKORG": IdocValue(area.sales_organization, f"{_ORG}.sap_vkorg"),
        "VTWEG": IdocValue(area.distribution_channel, f"{_ORG}.sap_vtweg"),
        "SPART": IdocValue(area.division, f"{_ORG}.sap_spart"),
        "AUFSD": IdocValue(create.order_block, _defaults("orderblock")),
        "KDGRP": IdocValue(area.customer_group, f"{_DETAIL}.sap_customergroup"),
        "BZIRK": IdocValue(area.sales_district, f"{_DETAIL}.sap_salesdistrict"),
        "KONDA": IdocValue(create.price_group, _defaults("pricegroup")),
        "INCO1": IdocValue(create.incoterms_classification, _defaults("incoterms")),
        "INCO2": IdocValue(_short(create.incoterms_location1), _defaults("incotermslocation1")),
        "VSBED": IdocValue(create.shipping_condition, _defaults("shippingcondition")),
        "WAERS": IdocValue(area.currency, f"{_DETAIL}.sap_currency"),
        "KTGRD": IdocValue(create.account_assignment_group, _defaults("accountassignmentgroup")),
        "ZTERM": IdocValue(create.payment_terms, _defaults("paymentterms")),
        "VKGRP": IdocValue(area.sales_group, f"{_DETAIL}.sap_salesgroup"),
        "VKBUR": IdocValue(area.sales_office, f"{_DETAIL}.sap_salesoffice"),
        "KURST": IdocValue(create.exchange_rate_type, _defaults("exchangeratetype")),
        "INCO2_L": IdocValue(create.incoterms_location1, _defaults("incotermslocation1")),
        "INCO3_L": IdocValue(create.incoterms_location2, _defaults("incotermslocation2")),
    }
    segment = add_segment(parent, "E1KNVVM", values, msgfn=control.msgfn, default=None)
    tax = create.tax
    if tax.departure_country is not None and tax.tax_category is not None:
        add_segment(
            segment,
            "E1KNVIM",
            {
                "ALAND": IdocValue(tax.departure_country, _defaults("taxdeparturecountry")),
                "TATYP": IdocValue(tax.tax_category, _defaults("taxcategory")),
                "TAXKD": IdocValue(tax.tax_classification, _defaults("taxdeterminationcode")),
            },
            msgfn=control.msgfn,
            default=None,
        )
