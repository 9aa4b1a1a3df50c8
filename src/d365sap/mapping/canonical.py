"""CRM messages → canonical customer models (:mod:`d365sap.model.customer`).

This is where the input rules that every target shares are applied once: keys are stripped and
must be non-blank (D9, G2), the customer number is optionally zero-padded (D9) and the deletion
flag is read by the single D2 rule. Everything else is carried over verbatim.
"""

from __future__ import annotations

from d365sap.mapping.fields import (
    account_path,
    detail_path,
    org_path,
    pad_customer_number,
    required_key,
)
from d365sap.mapping.flags import parse_deletion_flag
from d365sap.model.crm import ErpAccountDetailsMessage, ErpAccountsMessage
from d365sap.model.customer import (
    CustomerGeneralData,
    CustomerSalesArea,
    SalesAreaCreateDefaults,
    SalesAreaKey,
    SalesAreaTaxDefaults,
)


def sales_area_key_from_details(
    message: ErpAccountDetailsMessage, *, customer_number_padding: int = 0
) -> SalesAreaKey:
    """The sales-area key: number, sap_vkorg, sap_vtweg, sap_spart (stripped, non-blank)."""
    org = message.linkederporg
    number = required_key(message.erpaccountdetail.number, detail_path("number"))
    return SalesAreaKey(
        customer=pad_customer_number(number, customer_number_padding),
        sales_organization=required_key(org.sap_vkorg, org_path("sap_vkorg")),
        distribution_channel=required_key(org.sap_vtweg, org_path("sap_vtweg")),
        division=required_key(org.sap_spart, org_path("sap_spart")),
    )


def sales_area_from_details(
    message: ErpAccountDetailsMessage, *, customer_number_padding: int = 0
) -> CustomerSalesArea:
    """Canonical sales data of an ``erpaccountdetails`` message."""
    org = message.linkederporg
    detail = message.erpaccountdetail
    return CustomerSalesArea(
        key=sales_area_key_from_details(message, customer_number_padding=customer_number_padding),
        currency=detail.currency,
        customer_group=detail.customergroup,
        sales_group=detail.salesgroup,
        sales_office=detail.salesoffice,
        sales_district=detail.salesdistrict,
        deletion_flag=parse_deletion_flag(detail.deletionflag, detail_path("deletionflag")),
        create_defaults=SalesAreaCreateDefaults(
            account_assignment_group=org.sap_create_accountassignmentgroup,
            order_block=org.sap_create_orderblock,
            shipping_condition=org.sap_create_shippingcondition,
            incoterms_classification=org.sap_create_incoterms,
            incoterms_location1=org.sap_create_incotermslocation1,
            incoterms_location2=org.sap_create_incotermslocation2,
            payment_terms=org.sap_create_paymentterms,
            exchange_rate_type=org.sap_create_exchangeratetype,
            price_group=org.sap_create_pricegroup,
            tax=SalesAreaTaxDefaults(
                departure_country=org.sap_create_taxdeparturecountry,
                tax_category=org.sap_create_taxcategory,
                tax_classification=org.sap_create_taxdeterminationcode,
            ),
        ),
        erp_system_type=org.erpsystemtype,
        crm_record_id=detail.id,
        crm_erp_account_id=detail.erpaccountid,
        crm_account_id=detail.accountid,
        crm_linked_org_id=org.id,
        crm_linked_org_name=org.name,
    )


def general_data_from_accounts(message: ErpAccountsMessage) -> CustomerGeneralData:
    """Canonical general data of an ``erpaccounts`` message (number stripped, non-blank)."""
    account = message.erpaccount
    return CustomerGeneralData(
        number=required_key(account.number, account_path("number")),
        name1=account.name1,
        name2=account.name2,
        name3=account.name3,
        name4=account.name4,
        search_name=account.searchname,
        street=account.addr1line1,
        street2=account.addr1line2,
        street3=account.addr1line3,
        po_box=account.addr1pobox,
        postal_code=account.addr1zip,
        city=account.addr1city,
        region=account.addr1spcode,
        region_name=account.addr1spname,
        country=account.addr1ctry,
        phone=account.phone1,
        fax=account.fax,
        email=account.email1,
        website=account.website,
        language_iso2=account.langiso2,
        language_iso3=account.langiso3,
        customer_group=account.custgroup,
        owner=account.owner,
        crm_record_id=account.id,
        crm_account_id=account.accountid,
    )
