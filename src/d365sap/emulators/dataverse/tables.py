"""The standard Dynamics 365 tables the emulator serves, and :func:`build_schema`.

Names, types, lengths, ranges, required levels, choices and relationship names follow
Microsoft's table reference (account, contact, salesorder, salesorderdetail, product,
transactioncurrency, uom, pricelevel); only the columns an integration with SAP plausibly reads
or writes are modelled. The SAP solution's own tables are in ``sap_tables``.
"""

from __future__ import annotations

import functools
from decimal import Decimal

from d365sap.emulators.dataverse.columns import (
    Cascade,
    Column,
    Required,
    choice,
    customer,
    flag,
    floating,
    lookup,
    money,
    number,
    state,
    status,
    system_columns,
    text,
    when,
    whole,
)
from d365sap.emulators.dataverse.sap_order_columns import order_columns, order_line_columns
from d365sap.emulators.dataverse.sap_tables import sap_tables
from d365sap.emulators.dataverse.schema import AlternateKey, Schema, Table

APP = Required.APPLICATION
SYS = Required.SYSTEM
ACTIVE_INACTIVE = (
    state({0: ("Active", 1), 1: ("Inactive", 2)}),
    status({1: ("Active", 0), 2: ("Inactive", 1)}),
)


def _address(prefix: str) -> tuple[Column, ...]:
    """The address block of accounts and contacts (``address1_*``)."""
    return (
        text(f"{prefix}_line1", "Street 1", 250),
        text(f"{prefix}_line2", "Street 2", 250),
        text(f"{prefix}_line3", "Street 3", 250),
        text(f"{prefix}_postofficebox", "Post Office Box", 20),
        text(f"{prefix}_postalcode", "ZIP/Postal Code", 20),
        text(f"{prefix}_city", "City", 80),
        text(f"{prefix}_stateorprovince", "State/Province", 50),
        text(f"{prefix}_country", "Country/Region", 80),
        floating(f"{prefix}_latitude", "Latitude", -90.0, 90.0),
        floating(f"{prefix}_longitude", "Longitude", -180.0, 180.0),
    )


def _order_address(prefix: str) -> tuple[Column, ...]:
    """Bill-to and ship-to blocks of orders (``billto_*``, ``shipto_*``)."""
    return (
        text(f"{prefix}_name", "Name", 200),
        text(f"{prefix}_contactname", "Contact Name", 150),
        text(f"{prefix}_line1", "Street 1", 250),
        text(f"{prefix}_line2", "Street 2", 250),
        text(f"{prefix}_line3", "Street 3", 250),
        text(f"{prefix}_postalcode", "ZIP/Postal Code", 20),
        text(f"{prefix}_city", "City", 80),
        text(f"{prefix}_stateorprovince", "State/Province", 50),
        text(f"{prefix}_country", "Country/Region", 80),
        text(f"{prefix}_telephone", "Phone", 50),
    )


ACCOUNT = Table(
    logical_name="account",
    entity_set="accounts",
    display_name="Account",
    description=(
        "Business that represents a customer or potential customer. "
        "The company that is billed in business transactions."
    ),
    primary_name="name",
    columns=(
        *system_columns("account"),
        text("name", "Account Name", 160, required=APP),
        text("accountnumber", "Account Number", 20),
        text("description", "Description", 2000, memo=True),
        text("telephone1", "Main Phone", 50),
        text("telephone2", "Other Phone", 50),
        text("fax", "Fax", 50),
        text("emailaddress1", "Email", 100),
        text("websiteurl", "Website", 200),
        *_address("address1"),
        money("revenue", "Annual Revenue", low=Decimal(0), high=Decimal("100000000000000")),
        whole("numberofemployees", "Number of Employees", 0, 1_000_000_000),
        flag("creditonhold", "Credit Hold"),
        choice("accountcategorycode", "Category", {1: "Preferred Customer", 2: "Standard"}),
        choice(
            "customertypecode",
            "Relationship Type",
            {
                1: "Competitor",
                2: "Consultant",
                3: "Customer",
                4: "Investor",
                5: "Partner",
                6: "Influencer",
                7: "Press",
                8: "Prospect",
                9: "Reseller",
                10: "Supplier",
                11: "Vendor",
                12: "Other",
            },
        ),
        lookup("parentaccountid", "Parent Account", "account", "account_parent_account"),
        lookup("primarycontactid", "Primary Contact", "contact", "account_primary_contact"),
        lookup(
            "transactioncurrencyid",
            "Currency",
            "transactioncurrency",
            "transactioncurrency_account",
            cascade=Cascade.RESTRICT,
        ),
        *ACTIVE_INACTIVE,
    ),
    alternate_keys=(AlternateKey("accountnumber", "Account Number", ("accountnumber",)),),
)

CONTACT = Table(
    logical_name="contact",
    entity_set="contacts",
    display_name="Contact",
    description="Person with whom a business unit has a relationship, such as customer, "
    "supplier, and colleague.",
    primary_name="fullname",
    columns=(
        *system_columns("contact"),
        text("firstname", "First Name", 50),
        text("lastname", "Last Name", 50, required=APP),
        text("fullname", "Full Name", 160, read_only=True),
        text("jobtitle", "Job Title", 100),
        text("emailaddress1", "Email", 100),
        text("telephone1", "Business Phone", 50),
        text("mobilephone", "Mobile Phone", 50),
        text("description", "Description", 2000, memo=True),
        *_address("address1"),
        customer(
            "parentcustomerid",
            "Company Name",
            {"account": "contact_customer_accounts", "contact": "contact_customer_contacts"},
            cascade=Cascade.CASCADE,
        ),
        lookup(
            "transactioncurrencyid",
            "Currency",
            "transactioncurrency",
            "transactioncurrency_contact",
            cascade=Cascade.RESTRICT,
        ),
        *ACTIVE_INACTIVE,
    ),
)

TRANSACTION_CURRENCY = Table(
    logical_name="transactioncurrency",
    entity_set="transactioncurrencies",
    display_name="Currency",
    description="Currency in which a financial transaction is carried out.",
    primary_name="currencyname",
    columns=(
        *system_columns("transactioncurrency"),
        text("currencyname", "Currency Name", 100, required=SYS),
        text("isocurrencycode", "Currency Code", 5, required=SYS),
        text("currencysymbol", "Currency Symbol", 10, required=SYS),
        number("exchangerate", "Exchange Rate", "0.0000000001", "100000000000", 10, required=APP),
        whole("currencyprecision", "Currency Precision", 0, 4, required=APP, default=2),
        *ACTIVE_INACTIVE,
    ),
    alternate_keys=(AlternateKey("isocurrencycode", "Currency Code", ("isocurrencycode",)),),
)

UOM = Table(
    logical_name="uom",
    entity_set="uoms",
    display_name="Unit",
    description="Unit of measure.",
    primary_name="name",
    columns=(
        *system_columns("uom"),
        text("name", "Name", 100, required=SYS),
        number("quantity", "Quantity", "0.0000000001", "1000000000", 10),
    ),
    change_tracking=False,
)

PRICE_LEVEL = Table(
    logical_name="pricelevel",
    entity_set="pricelevels",
    display_name="Price List",
    description="Entity that defines pricing levels.",
    primary_name="name",
    columns=(
        *system_columns("pricelevel"),
        text("name", "Name", 100, required=SYS),
        text("description", "Description", 2000, memo=True),
        when("begindate", "Start Date", date_only=True),
        when("enddate", "End Date", date_only=True),
        lookup(
            "transactioncurrencyid",
            "Currency",
            "transactioncurrency",
            "transactioncurrency_pricelevel",
            cascade=Cascade.RESTRICT,
            required=APP,
        ),
        state({0: ("Active", 100001), 1: ("Inactive", 100002)}),
        status({100001: ("Active", 0), 100002: ("Inactive", 1)}),
    ),
    change_tracking=False,
)

PRODUCT = Table(
    logical_name="product",
    entity_set="products",
    display_name="Product",
    description="Information about products and their pricing information.",
    primary_name="name",
    columns=(
        *system_columns("product"),
        text("name", "Name", 100, required=APP),
        text("productnumber", "Product ID", 100, required=SYS),
        text("description", "Description", 2000, memo=True),
        money("price", "List Price", low=Decimal(0), high=Decimal("1000000000000")),
        money("standardcost", "Standard Cost", low=Decimal(0), high=Decimal("1000000000000")),
        whole("quantitydecimal", "Decimals Supported", 0, 5, required=APP, default=0),
        choice(
            "producttypecode",
            "Product Type",
            {1: "Sales Inventory", 2: "Miscellaneous Charges", 3: "Services", 4: "Flat Fees"},
            default=1,
        ),
        choice(
            "productstructure",
            "Product Structure",
            {1: "Product", 2: "Product Family", 3: "Product Bundle"},
            default=1,
        ),
        lookup("defaultuomid", "Default Unit", "uom", "unit_of_measurement_products"),
        lookup("pricelevelid", "Default Price List", "pricelevel", "price_level_products"),
        lookup(
            "transactioncurrencyid",
            "Currency",
            "transactioncurrency",
            "transactioncurrency_product",
            cascade=Cascade.RESTRICT,
        ),
        state({0: ("Active", 1), 1: ("Retired", 2), 2: ("Draft", 0), 3: ("Under Revision", 3)}),
        status({1: ("Active", 0), 2: ("Retired", 1), 0: ("Draft", 2), 3: ("Under Revision", 3)}),
    ),
    alternate_keys=(AlternateKey("productnumber", "Product ID", ("productnumber",)),),
)

_ZERO = Decimal(0)
_TRILLION = Decimal("1000000000000")

SALES_ORDER = Table(
    logical_name="salesorder",
    entity_set="salesorders",
    display_name="Order",
    description="Quote that has been accepted.",
    primary_name="name",
    columns=(
        *system_columns("salesorder"),
        text("name", "Name", 300, required=APP),
        text(
            "ordernumber",
            "Order ID",
            100,
            required=SYS,
            create_only=True,
            description="Shows the order number for customer reference and to use in search. "
            "The number cannot be modified.",
        ),
        customer(
            "customerid",
            "Customer",
            {"account": "order_customer_accounts", "contact": "order_customer_contacts"},
            cascade=Cascade.RESTRICT,
            required=APP,
        ),
        lookup(
            "pricelevelid",
            "Price List",
            "pricelevel",
            "price_level_orders",
            cascade=Cascade.RESTRICT,
            required=APP,
        ),
        lookup(
            "transactioncurrencyid",
            "Currency",
            "transactioncurrency",
            "transactioncurrency_salesorder",
            cascade=Cascade.RESTRICT,
            required=APP,
        ),
        flag("ispricelocked", "Prices Locked"),
        money("totalamount", "Total Amount"),
        money("totalamountlessfreight", "Total Pre-Freight Amount"),
        money("totaldiscountamount", "Total Discount Amount"),
        money("totallineitemamount", "Total Detail Amount"),
        money("totaltax", "Total Tax"),
        money("discountamount", "Order Discount Amount", low=_ZERO, high=_TRILLION),
        money("freightamount", "Freight Amount", low=_ZERO, high=_TRILLION),
        number("discountpercentage", "Order Discount (%)", "0", "100", 2),
        text("emailaddress", "Email Address", 100),
        text("description", "Description", 2000, memo=True),
        when("requestdeliveryby", "Requested Delivery Date", date_only=True),
        when("datefulfilled", "Date Fulfilled", date_only=True),
        when("submitdate", "Date Submitted", date_only=True),
        *_order_address("billto"),
        *_order_address("shipto"),
        flag("willcall", "Ship To", yes="Will Call", no="Address"),
        choice(
            "paymenttermscode",
            "Payment Terms",
            {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"},
        ),
        choice(
            "shippingmethodcode",
            "Shipping Method",
            {
                1: "Airborne",
                2: "DHL",
                3: "FedEx",
                4: "UPS",
                5: "Postal Mail",
                6: "Full Load",
                7: "Will Call",
            },
        ),
        choice("freighttermscode", "Freight Terms", {1: "FOB", 2: "No Charge"}),
        *order_columns(),
        state(
            {
                0: ("Active", 1),
                1: ("Submitted", 3),
                2: ("Canceled", 4),
                3: ("Fulfilled", 100001),
                4: ("Invoiced", 100003),
            }
        ),
        status(
            {
                1: ("New", 0),
                2: ("Pending", 0),
                3: ("In Progress", 1),
                4: ("No Money", 2),
                100001: ("Complete", 3),
                100002: ("Partial", 3),
                100003: ("Invoiced", 4),
            }
        ),
    ),
    alternate_keys=(AlternateKey("ordernumber", "Order ID", ("ordernumber",)),),
)

SALES_ORDER_DETAIL = Table(
    logical_name="salesorderdetail",
    entity_set="salesorderdetails",
    display_name="Order Product",
    description="Line item in a sales order.",
    primary_name="salesorderdetailname",
    columns=(
        *system_columns("salesorderdetail"),
        text("salesorderdetailname", "Name", 500, required=APP),
        lookup(
            "salesorderid",
            "Order",
            "salesorder",
            "order_details",
            cascade=Cascade.CASCADE,
            required=SYS,
        ),
        lookup(
            "productid",
            "Existing Product",
            "product",
            "product_order_details",
            cascade=Cascade.RESTRICT,
        ),
        flag("isproductoverridden", "Select Product", yes="Write In", no="Existing"),
        text("productdescription", "Write-In Product", 500),
        number("quantity", "Quantity", "-100000000000", "100000000000", 5, required=APP),
        number("quantityshipped", "Quantity Shipped", "-1000000000", "1000000000", 5),
        money("priceperunit", "Price Per Unit"),
        flag("ispriceoverridden", "Pricing", yes="Override Price", no="Use Default"),
        money("baseamount", "Amount", read_only=True),
        money("extendedamount", "Extended Amount", read_only=True),
        money("manualdiscountamount", "Manual Discount", low=_ZERO, high=_TRILLION),
        money("tax", "Tax", low=Decimal("-1000000000000"), high=Decimal("1000000000000")),
        lookup("uomid", "Unit", "uom", "unit_of_measurement_order_details"),
        whole("lineitemnumber", "Line Item Number", 0, 1_000_000_000),
        whole("sequencenumber", "Sequence Number"),
        when("requestdeliveryby", "Requested Delivery Date", date_only=True),
        text("description", "Description", 2000, memo=True),
        choice(
            "producttypecode",
            "Product type",
            {
                1: "Product",
                2: "Bundle",
                3: "Required Bundle Product",
                4: "Optional Bundle Product",
                5: "Project-based Service",
            },
            required=SYS,
            default=1,
        ),
        lookup(
            "transactioncurrencyid",
            "Currency",
            "transactioncurrency",
            "transactioncurrency_salesorderdetail",
            cascade=Cascade.RESTRICT,
        ),
        *order_line_columns(),
    ),
)

STANDARD_TABLES = (
    ACCOUNT,
    CONTACT,
    SALES_ORDER,
    SALES_ORDER_DETAIL,
    PRODUCT,
    PRICE_LEVEL,
    UOM,
    TRANSACTION_CURRENCY,
)


@functools.cache
def build_schema() -> Schema:
    """The emulated environment's schema (built once per process; immutable)."""
    return Schema((*STANDARD_TABLES, *sap_tables()))
