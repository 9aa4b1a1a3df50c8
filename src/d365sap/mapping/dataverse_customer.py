"""Dataverse rows → the package's customer messages and the canonical model of a new customer.

The native customer flow reads what SAP's package received as XML straight from Dataverse: the
account, its ERP account (``sap_erpaccount``), the ERP account detail (``sap_erpaccountdetail``)
and the linked ERP organisation (``sap_linkederporg``), as the Web API serves them (lookups as
``_<column>_value``, choices as integers, booleans as JSON booleans). From them this module builds

* the package's own messages (:func:`details_message`, :func:`accounts_message`), so a customer
  SAP already knows goes through exactly the mappings, routing and fixes of the XML flow;
* a :class:`~d365sap.model.new_customer.NewCustomer` (:func:`new_customer`) for a customer
  without an SAP number, which is created instead (G1, G2).

Rules every function shares:

* the rows must belong together (the detail's lookups point at the given ERP account, account
  and organisation); a mismatch is refused naming the lookup column;
* a column missing from a row means "not read" (the element is left out); a column that is null
  means "empty in Dynamics" (an empty element, as Dynamics' XML export sends it);
* a text column holding a non-text value, or a country that is no ISO code, is refused naming
  ``<table>.<column>``; a region longer than SAP's 3-character key is taken as a region name and
  not sent (SAP needs the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from d365sap.errors import ValidationError
from d365sap.mapping.routing import (
    S4HC_SYSTEM_TYPE,
    Route,
    RouteDecision,
    decide_route,
)
from d365sap.model.crm import (
    ErpAccount,
    ErpAccountDetail,
    ErpAccountDetailsMessage,
    ErpAccountsMessage,
    LinkedErpOrg,
)
from d365sap.model.customer import SalesAreaCreateDefaults, SalesAreaTaxDefaults
from d365sap.model.new_customer import (
    CustomerAddress,
    DataverseReferences,
    NewCustomer,
    NewCustomerGeneral,
    NewCustomerSalesArea,
    SystemType,
)

ACCOUNT = "account"
ERP_ACCOUNT = "sap_erpaccount"
DETAIL = "sap_erpaccountdetail"
ORG = "sap_linkederporg"
SYSTEM_TYPES: Mapping[int, SystemType] = {100_000_000: "S4HC", 100_000_001: "ECC"}
"""``sap_erpsystemtype`` option values of SAP's Dynamics solution and the package's labels."""
REGION_KEY_LENGTH = 3

Row = Mapping[str, object]


@dataclass(frozen=True)
class CustomerRows:
    """The rows of one customer as read from Dataverse.

    ``detail`` and ``org`` are the ERP account detail and its linked ERP organisation; without a
    detail, ``org`` is the ERP account's own linked organisation (or None: general data only).
    """

    account: Row
    erp_account: Row
    detail: Row | None = None
    org: Row | None = None


def column(table: str, name: str) -> str:
    """How errors name a Dataverse column: ``sap_linkederporg.sap_vkorg``."""
    return f"{table}.{name}"


def _raw(row: Row, table: str, name: str) -> str | None:
    """A text column as Dynamics' XML export has it: missing → None, null → ``""``."""
    if name not in row:
        return None
    value = row[name]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(column(table, name), f"text expected, got {value!r}")
    return value


def _value(row: Row, table: str, name: str) -> str | None:
    """A text column stripped; missing, null or blank → None."""
    raw = _raw(row, table, name)
    if raw is None or not raw.strip():
        return None
    return raw.strip()


def _row_id(row: Row, table: str, name: str) -> str:
    value = _value(row, table, name)
    if value is None:
        raise ValidationError(column(table, name), "the row has no id")
    return value.lower()


def _lookup(row: Row, table: str, name: str) -> str | None:
    value = _value(row, table, f"_{name}_value")
    return value.lower() if value is not None else None


def _check_link(row: Row, table: str, name: str, target_id: str, what: str) -> None:
    linked = _lookup(row, table, name)
    if linked != target_id:
        raise ValidationError(
            column(table, f"_{name}_value"),
            f"points at {linked or 'nothing'}, not at the {what} {target_id} read with it",
        )


def _check_rows(rows: CustomerRows) -> None:
    """The rows must describe one customer: every lookup points at the row read with it."""
    account_id = _row_id(rows.account, ACCOUNT, "accountid")
    erp_account_id = _row_id(rows.erp_account, ERP_ACCOUNT, "sap_erpaccountid")
    _check_link(rows.erp_account, ERP_ACCOUNT, "sap_accountid", account_id, "account")
    if rows.detail is not None:
        _check_link(rows.detail, DETAIL, "sap_erpaccountid", erp_account_id, "ERP account")
        _check_link(rows.detail, DETAIL, "sap_accountid", account_id, "account")
        if rows.org is None:
            raise ValidationError(
                column(DETAIL, "_sap_linkederporgid_value"), "the linked ERP organization is needed"
            )
        org_id = _row_id(rows.org, ORG, "sap_linkederporgid")
        _check_link(rows.detail, DETAIL, "sap_linkederporgid", org_id, "linked ERP organization")
    elif rows.org is not None:
        org_id = _row_id(rows.org, ORG, "sap_linkederporgid")
        _check_link(rows.erp_account, ERP_ACCOUNT, "sap_linkederporgid", org_id, "organization")


def system_type_of(org: Row | None) -> str | None:
    """``S4HC``/``ECC`` for the organisation's ``sap_erpsystemtype``; another value as text."""
    if org is None or org.get("sap_erpsystemtype") is None:
        return None
    value = org["sap_erpsystemtype"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(column(ORG, "sap_erpsystemtype"), f"option value expected: {value!r}")
    return SYSTEM_TYPES.get(value, str(value))


def details_message(rows: CustomerRows) -> ErpAccountDetailsMessage:
    """The package's ``erpaccountdetails`` message for the detail and its organisation."""
    _check_rows(rows)
    detail, org = rows.detail, rows.org
    if detail is None or org is None:
        raise ValidationError(column(DETAIL, "sap_erpaccountdetailid"), "no ERP account detail")
    flag = detail.get("sap_deletionflag")
    if flag is not None and not isinstance(flag, bool):
        raise ValidationError(column(DETAIL, "sap_deletionflag"), f"yes/no expected: {flag!r}")
    org_fields = {
        name: _raw(org, ORG, name) for name in LinkedErpOrg.model_fields if name.startswith("sap_")
    }
    return ErpAccountDetailsMessage(
        linkederporg=LinkedErpOrg(
            id=_row_id(org, ORG, "sap_linkederporgid"),
            name=_raw(org, ORG, "sap_name"),
            erpsystemtype=system_type_of(org),
            **org_fields,
        ),
        erpaccountdetail=ErpAccountDetail(
            id=_row_id(detail, DETAIL, "sap_erpaccountdetailid"),
            erpaccountid=_lookup(detail, DETAIL, "sap_erpaccountid"),
            accountid=_lookup(detail, DETAIL, "sap_accountid"),
            number=_number_text(rows),
            deletionflag=None if flag is None else ("1" if flag else "0"),
            customergroup=_raw(detail, DETAIL, "sap_customergroup"),
            salesdistrict=_raw(detail, DETAIL, "sap_salesdistrict"),
            salesoffice=_raw(detail, DETAIL, "sap_salesoffice"),
            salesgroup=_raw(detail, DETAIL, "sap_salesgroup"),
            currency=_raw(detail, DETAIL, "sap_currency"),
        ),
    )


def accounts_message(rows: CustomerRows) -> ErpAccountsMessage:
    """The package's ``erpaccounts`` message: the ERP account's general data."""
    _check_rows(rows)
    account, erp = rows.account, rows.erp_account
    region = _raw(account, ACCOUNT, "address1_stateorprovince")
    is_key = region is not None and len(region.strip()) <= REGION_KEY_LENGTH
    country = _raw(account, ACCOUNT, "address1_country")
    if country is not None and country.strip():
        country = _country(country, column(ACCOUNT, "address1_country"))
    name1 = _raw(erp, ERP_ACCOUNT, "sap_name1")
    if name1 is not None and not name1.strip():
        name1 = _raw(account, ACCOUNT, "name")
    return ErpAccountsMessage(
        erpaccount=ErpAccount(
            id=_row_id(erp, ERP_ACCOUNT, "sap_erpaccountid"),
            accountid=_row_id(account, ACCOUNT, "accountid"),
            number=_number_text(rows),
            name1=name1,
            name2=_raw(erp, ERP_ACCOUNT, "sap_name2"),
            name3=_raw(erp, ERP_ACCOUNT, "sap_name3"),
            name4=_raw(erp, ERP_ACCOUNT, "sap_name4"),
            searchname=_raw(erp, ERP_ACCOUNT, "sap_searchname"),
            addr1line1=_raw(account, ACCOUNT, "address1_line1"),
            addr1line2=_raw(account, ACCOUNT, "address1_line2"),
            addr1line3=_raw(account, ACCOUNT, "address1_line3"),
            addr1pobox=_raw(account, ACCOUNT, "address1_postofficebox"),
            addr1zip=_raw(account, ACCOUNT, "address1_postalcode"),
            addr1city=_raw(account, ACCOUNT, "address1_city"),
            addr1spcode=region if is_key else None,
            addr1spname=None if is_key else region,
            addr1ctry=country,
            phone1=_raw(account, ACCOUNT, "telephone1"),
            email1=_raw(account, ACCOUNT, "emailaddress1"),
            fax=_raw(account, ACCOUNT, "fax"),
            website=_raw(account, ACCOUNT, "websiteurl"),
            langiso2=_raw(erp, ERP_ACCOUNT, "sap_language"),
            custgroup=_raw(erp, ERP_ACCOUNT, "sap_custgroup"),
        )
    )


def route_rows(rows: CustomerRows) -> RouteDecision:
    """The package's routing for the rows: a detail like ``erpaccountdetails``, else general data.

    General data goes to SAP ERP like ``erpaccounts`` (non-blank ERP account id), except for an
    ERP account linked to an S/4HANA Cloud organisation: the package would send it to ECC anyway
    (G3); here it is discarded with that reason.
    """
    if rows.detail is not None:
        return decide_route(details_message(rows))
    if system_type_of(rows.org) == S4HC_SYSTEM_TYPE:
        return RouteDecision(
            Route.DISCARD, "general data of an ERP account linked to S/4HANA Cloud (G3)"
        )
    return decide_route(accounts_message(rows))


def customer_number(rows: CustomerRows) -> str | None:
    """The SAP customer number the rows carry, or None: the customer has to be created.

    The detail's ``sap_number``, its written-back ``sap_sapcustomernumber`` and the ERP
    account's ``sap_number`` must agree where they are set.
    """
    found: list[tuple[str, str]] = []
    candidates = [(rows.erp_account, ERP_ACCOUNT, "sap_number")]
    if rows.detail is not None:
        candidates[:0] = [
            (rows.detail, DETAIL, "sap_number"),
            (rows.detail, DETAIL, "sap_sapcustomernumber"),
        ]
    for row, table, name in candidates:
        value = _value(row, table, name)
        if value is not None:
            found.append((column(table, name), value))
    for field, value in found[1:]:
        if _same_number(value, found[0][1]):
            continue
        raise ValidationError(
            field, f"customer number {value!r} differs from {found[0][1]!r} in {found[0][0]}"
        )
    return found[0][1] if found else None


def _same_number(first: str, second: str) -> bool:
    if first.isdigit() and second.isdigit():
        return int(first) == int(second)
    return first == second


def _number_text(rows: CustomerRows) -> str | None:
    number = customer_number(rows)
    if number is not None:
        return number
    table, row = (
        (DETAIL, rows.detail) if rows.detail is not None else (ERP_ACCOUNT, rows.erp_account)
    )
    return _raw(row, table, "sap_number")


def _country(value: str, field: str) -> str:
    code = value.strip().upper()
    if not (2 <= len(code) <= 3 and code.isascii() and code.isalpha()):
        raise ValidationError(
            field, f"{value!r} is not a country code; SAP needs the ISO 3166 code (e.g. DE, US)"
        )
    return code


def _language(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if not (len(code) == 2 and code.isascii() and code.isalpha()):
        raise ValidationError(field, f"{value!r} is not an ISO 639-1 language code (e.g. EN, DE)")
    return code


def new_customer(rows: CustomerRows) -> NewCustomer:
    """The canonical new customer: general data, the detail's sales area, the row ids.

    The target system is the organisation's ``sap_erpsystemtype`` (S4HC or ECC); a customer
    flagged for deletion in Dynamics is not created.
    """
    _check_rows(rows)
    label = system_type_of(rows.org)
    system = next((s for s in SYSTEM_TYPES.values() if s == label), None)
    if system is None:
        raise ValidationError(
            column(ORG, "sap_erpsystemtype"),
            f"a customer can be created in S4HC or ECC, not in {label or 'no system'}",
        )
    detail = rows.detail
    areas = () if detail is None else (_new_sales_area(detail, rows.org or {}),)
    return NewCustomer(
        system_type=system,
        general=_new_general(rows),
        sales_areas=areas,
        source=DataverseReferences(
            account_id=_row_id(rows.account, ACCOUNT, "accountid"),
            erp_account_id=_row_id(rows.erp_account, ERP_ACCOUNT, "sap_erpaccountid"),
            erp_account_detail_id=None
            if detail is None
            else _row_id(detail, DETAIL, "sap_erpaccountdetailid"),
            linked_org_id=None
            if rows.org is None
            else _row_id(rows.org, ORG, "sap_linkederporgid"),
        ),
    )


def _new_general(rows: CustomerRows) -> NewCustomerGeneral:
    account, erp = rows.account, rows.erp_account
    name1 = _value(erp, ERP_ACCOUNT, "sap_name1") or _value(account, ACCOUNT, "name")
    if name1 is None:
        raise ValidationError(
            column(ERP_ACCOUNT, "sap_name1"), "blank, and the account has no name either"
        )
    country_field = column(ACCOUNT, "address1_country")
    country = _value(account, ACCOUNT, "address1_country")
    if country is None:
        raise ValidationError(country_field, "required to create a customer in SAP")
    region = _value(account, ACCOUNT, "address1_stateorprovince")
    is_key = region is not None and len(region) <= REGION_KEY_LENGTH
    return NewCustomerGeneral(
        name1=name1,
        name2=_value(erp, ERP_ACCOUNT, "sap_name2"),
        name3=_value(erp, ERP_ACCOUNT, "sap_name3"),
        name4=_value(erp, ERP_ACCOUNT, "sap_name4"),
        search_term=_value(erp, ERP_ACCOUNT, "sap_searchname"),
        language=_language(
            _value(erp, ERP_ACCOUNT, "sap_language"), column(ERP_ACCOUNT, "sap_language")
        ),
        address=CustomerAddress(
            street=_value(account, ACCOUNT, "address1_line1"),
            street2=_value(account, ACCOUNT, "address1_line2"),
            street3=_value(account, ACCOUNT, "address1_line3"),
            po_box=_value(account, ACCOUNT, "address1_postofficebox"),
            postal_code=_value(account, ACCOUNT, "address1_postalcode"),
            city=_value(account, ACCOUNT, "address1_city"),
            region=region.upper() if region is not None and is_key else None,
            region_name=None if is_key else region,
            country=_country(country, country_field),
        ),
        phone=_value(account, ACCOUNT, "telephone1"),
        fax=_value(account, ACCOUNT, "fax"),
        email=_value(account, ACCOUNT, "emailaddress1"),
        website=_value(account, ACCOUNT, "websiteurl"),
    )


def _required_key(org: Row, name: str) -> str:
    value = _value(org, ORG, name)
    if value is None:
        raise ValidationError(column(ORG, name), "required to create the customer's sales area")
    return value


def _new_sales_area(detail: Row, org: Row) -> NewCustomerSalesArea:
    if detail.get("sap_deletionflag") is True:
        raise ValidationError(
            column(DETAIL, "sap_deletionflag"),
            "set, and SAP does not know the customer: it is not created flagged for deletion",
        )

    def create(name: str) -> str | None:
        return _value(org, ORG, f"sap_create_{name}")

    return NewCustomerSalesArea(
        sales_organization=_required_key(org, "sap_vkorg"),
        distribution_channel=_required_key(org, "sap_vtweg"),
        division=_required_key(org, "sap_spart"),
        currency=_value(detail, DETAIL, "sap_currency"),
        customer_group=_value(detail, DETAIL, "sap_customergroup"),
        sales_group=_value(detail, DETAIL, "sap_salesgroup"),
        sales_office=_value(detail, DETAIL, "sap_salesoffice"),
        sales_district=_value(detail, DETAIL, "sap_salesdistrict"),
        create_defaults=SalesAreaCreateDefaults(
            account_assignment_group=create("accountassignmentgroup"),
            order_block=create("orderblock"),
            shipping_condition=create("shippingcondition"),
            incoterms_classification=create("incoterms"),
            incoterms_location1=create("incotermslocation1"),
            incoterms_location2=create("incotermslocation2"),
            payment_terms=create("paymentterms"),
            exchange_rate_type=create("exchangeratetype"),
            price_group=create("pricegroup"),
            tax=SalesAreaTaxDefaults(
                departure_country=create("taxdeparturecountry"),
                tax_category=create("taxcategory"),
                tax_classification=create("taxdeterminationcode"),
            ),
        ),
        erp_account_detail_id=_row_id(detail, DETAIL, "sap_erpaccountdetailid"),
        linked_org_id=_row_id(org, ORG, "sap_linkederporgid"),
    )
