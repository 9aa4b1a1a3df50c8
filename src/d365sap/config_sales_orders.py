"""Settings of the sales order flow, mounted as ``[sales_orders]`` (docs/sales-order-flow.md).

A Dynamics order that is submitted goes to S/4HANA Cloud's asynchronous SOAP service
SalesOrderBulkRequest_In (communication scenario SAP_COM_0288); S/4's confirmation, pushed or
found by polling API_SALES_ORDER_SRV, is written back to the order. Everything the package left to
its (missing) mapping is configuration here: constants of the S/4 order, value maps for units and
products, which Dynamics columns feed the eight YY1 custom fields, where the outcome is written
back, how orders are packed into bulk messages and how long an order waits for its customer.

Secrets follow the rest of the configuration: the SOAP user's password comes from the
environment (``D365SAP_SALES_ORDERS__PASSWORD``), ``password_env`` or ``password_file``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from d365sap.config_base import SecretRef
from d365sap.config_base import Section as _Section

_COLUMN = r"^([a-z_][a-z0-9_]{0,99})?$"
_REQUIRED_COLUMN = r"^[a-z_][a-z0-9_]{0,99}$"


class OrderColumns(_Section):
    """Which Dynamics columns of ``salesorder`` and ``salesorderdetail`` feed the S/4 order.

    The defaults are the columns of SAP's Dynamics solution as the Dataverse emulator has them
    (``sap_*``); an empty name leaves that custom field out.
    """

    erp_system_type: str = Field(
        default="sap_erpsystemtype",
        pattern=_COLUMN,
        description="choice column naming the order's SAP system (label S4HC); empty: every "
        "order is for S/4HANA Cloud",
    )
    quote_number: str = Field(default="sap_quotenumber", pattern=_COLUMN)
    opportunity: str = Field(default="sap_opportunity", pattern=_COLUMN)
    project_flag: str = Field(default="sap_projectflag", pattern=_COLUMN)
    line_project_flag: str = Field(default="sap_projectflag", pattern=_COLUMN)
    line_opportunity: str = Field(default="sap_opportunity", pattern=_COLUMN)


class OrderStatusValues(_Section):
    """Option values of the order's SAP status choice column."""

    sent: int = 100_000_000
    created: int = 100_000_001
    failed: int = 100_000_002

    @model_validator(mode="after")
    def _distinct(self) -> OrderStatusValues:
        if len({self.sent, self.created, self.failed}) != 3:
            raise ValueError("the three status values must differ")
        return self


class OrderWriteBackSettings(_Section):
    """Where the outcome is written on the Dynamics order; an empty column name leaves it out."""

    enabled: bool = Field(
        default=True, description="write the outcome back to the Dataverse salesorder row"
    )
    on_sent: bool = Field(
        default=True, description="also record 'sent' when S/4 has acknowledged the order"
    )
    sales_order_column: str = Field(default="sap_salesordernumber", pattern=_COLUMN)
    status_column: str = Field(default="sap_orderstatus", pattern=_COLUMN)
    message_column: str = Field(default="sap_ordermessage", pattern=_COLUMN)
    synced_on_column: str = Field(default="sap_ordersyncon", pattern=_COLUMN)
    message_id_column: str = Field(default="sap_lastmessageid", pattern=_COLUMN)
    message_max_length: int = Field(
        default=4000, ge=50, le=1_048_576, description="longer texts are cut to fit the column"
    )
    status_values: OrderStatusValues = Field(default_factory=OrderStatusValues)


class ODataEndpoint(SecretRef):
    """API_SALES_ORDER_SRV, read to find orders S/4 created (polling, checks)."""

    base_url: str = "http://127.0.0.1:18081/sap/opu/odata/sap/API_SALES_ORDER_SRV"
    user: str | None = Field(default=None, description="unset: the SOAP user and its password")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class ConfirmationSettings(_Section):
    """How d365sap learns what S/4 made of an order it acknowledged."""

    channel: Literal["poll", "push"] = Field(
        default="poll",
        description="push: S/4's confirmations arrive at POST /sap/SalesOrderConfirmation; "
        "poll: API_SALES_ORDER_SRV is read for the orders sent",
    )
    role: str = Field(
        default="SalesOrderConfirmation.send",
        min_length=1,
        description="role an [inbound] user needs to push confirmations",
    )
    max_body_kb: int = Field(default=1024, ge=4, le=65536)
    poll_interval_seconds: float = Field(default=30.0, ge=0.05, le=86_400)
    poll_after_seconds: float = Field(
        default=0.0, ge=0, description="poll: how long after sending an order is first looked for"
    )
    poll_chunk: int = Field(
        default=20, ge=1, le=100, description="orders looked up per API_SALES_ORDER_SRV request"
    )
    deadline_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="an order neither confirmed nor found this long after sending is reported "
        "failed (after one last look in S/4)",
    )


class SalesOrderSettings(SecretRef):
    """``[sales_orders]``: Dynamics orders to S/4HANA Cloud (SEED-SPEC §6)."""

    enabled: bool = Field(default=True, description="run the sales order flow in this service")
    soap_url: str = Field(
        default="http://127.0.0.1:18081/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in",
        description="SalesOrderBulkRequest_In of the SAP_COM_0288 arrangement",
    )
    user: str = Field(default="S4_COMM_USER", min_length=1, description="communication user")
    timeout_seconds: float = Field(default=60.0, gt=0)
    verify_tls: bool = True
    odata: ODataEndpoint = Field(default_factory=ODataEndpoint)
    queue: str = Field(
        default="sales_orders",
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="engine queue of the orders; give it a runtime.concurrency of at least "
        "bulk_size, or bulks stay small",
    )
    poll_submitted: bool = Field(
        default=False,
        description="read the change tracking of salesorders inside `d365sap serve` for orders "
        "that became Submitted (interval and first pass as [dataverse_triggers])",
    )
    sender_business_system: str = Field(default="D365", min_length=1, max_length=60)
    recipient_business_system: str | None = Field(default=None, min_length=1, max_length=60)
    # constants of the S/4 order
    order_type: str = Field(default="OR", min_length=1, max_length=4)
    customer_purchase_order_type: str | None = Field(default=None, min_length=1, max_length=4)
    sales_group: str | None = Field(default=None, min_length=1, max_length=3)
    sales_office: str | None = Field(default=None, min_length=1, max_length=4)
    shipping_condition: str | None = Field(default=None, min_length=1, max_length=2)
    payment_terms: str | None = Field(default=None, min_length=1, max_length=4)
    plant: str | None = Field(default=None, min_length=1, max_length=4, description="per item")
    sold_to_function: Literal["AG", "SP"] = Field(
        default="AG", description="partner function of the sold-to party (AG German, SP English)"
    )
    item_number_step: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="item numbers when the lines have no unique line item numbers",
    )
    price_condition_type: str | None = Field(
        default=None,
        min_length=1,
        max_length=4,
        description="send each line's price per unit as this condition (e.g. PPR0); unset: S/4 "
        "prices the order",
    )
    # value maps
    units: dict[str, str] = Field(
        default_factory=lambda: {"Each": "EA", "Hour": "HUR"},
        description="Dynamics unit name -> ISO unit code S/4 takes as unitCode",
    )
    default_unit: str | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description="unitCode of lines without a unit; unset: no unitCode (S/4 takes the "
        "product's sales unit)",
    )
    products: dict[str, str] = Field(
        default_factory=dict,
        description="Dynamics product number -> S/4 product; others are sent as they are",
    )
    products_strict: bool = Field(
        default=False, description="refuse products that are not in the products map"
    )
    columns: OrderColumns = Field(default_factory=OrderColumns)
    sales_area: str | None = Field(
        default=None,
        pattern=r"^[^/]{1,4}/[^/]{1,2}/[^/]{1,2}$",
        description="SalesOrganization/DistributionChannel/Division to order in when the "
        "customer has several synchronised sales areas",
    )
    # packing
    bulk_size: int = Field(default=20, ge=1, le=1000, description="orders per bulk message at most")
    bulk_max_kb: int = Field(default=2048, ge=16, le=65536, description="bulk message size at most")
    bulk_window_ms: float = Field(
        default=25.0,
        ge=0,
        le=10_000,
        description="how long the first order of a bulk waits for others to join it",
    )
    # the customer
    customer_wait_seconds: float = Field(
        default=900.0,
        ge=0,
        description="how long an order waits for its customer to be synchronised before failing",
    )
    customer_retry_seconds: float = Field(
        default=30.0, gt=0, description="how often a waiting order looks again"
    )
    write_back: OrderWriteBackSettings = Field(default_factory=OrderWriteBackSettings)
    confirmation: ConfirmationSettings = Field(default_factory=ConfirmationSettings)

    @field_validator("soap_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("units")
    @classmethod
    def _unit_codes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, code in value.items():
            if not name.strip():
                raise ValueError("a unit name must not be empty")
            if not 1 <= len(code) <= 3 or not code.isalnum():
                raise ValueError(f"unit {name!r}: {code!r} is not an ISO unit code (1-3 letters)")
        return value

    @field_validator("products")
    @classmethod
    def _product_numbers(cls, value: dict[str, str]) -> dict[str, str]:
        for number, product in value.items():
            if not number.strip():
                raise ValueError("a product number must not be empty")
            if not 1 <= len(product) <= 40:
                raise ValueError(f"product {number!r}: {product!r} must be 1-40 characters")
        return value

    @property
    def bulk_max_bytes(self) -> int:
        return self.bulk_max_kb * 1024

    def odata_credentials(self) -> tuple[str, str | None]:
        """User and password for API_SALES_ORDER_SRV (the SOAP ones unless set apart)."""
        if self.odata.user:
            return self.odata.user, self.odata.secret()
        return self.user, self.secret()

    def all_secret_problems(self) -> list[tuple[str, str]]:
        """Secret sources of the section that cannot be read."""
        return self.secret_problems("sales_orders") + self.odata.secret_problems(
            "sales_orders.odata"
        )
