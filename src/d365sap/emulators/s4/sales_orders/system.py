"""The sales order part of one emulated S/4 system, wired together once per app.

It reads customers from API_BUSINESS_PARTNER and products from API_PRODUCT_SRV, writes orders to
API_SALES_ORDER_SRV, and owns what belongs to the SOAP service: schema, message log, worker,
confirmation sender and web service error log.
"""

from __future__ import annotations

import httpx2

from d365sap.emulators.s4.hosting import ODataHost
from d365sap.emulators.s4.sales_orders.confirmation import ConfirmationSender
from d365sap.emulators.s4.sales_orders.creation import OrderBook
from d365sap.emulators.s4.sales_orders.endpoint import SalesOrderEndpoint
from d365sap.emulators.s4.sales_orders.error_log import WebServiceErrorLog
from d365sap.emulators.s4.sales_orders.inbound import SalesOrderInbound
from d365sap.emulators.s4.sales_orders.masterdata import MasterData
from d365sap.emulators.s4.sales_orders.schema import packaged_schema
from d365sap.emulators.settings import S4EmulatorSettings


class SalesOrderSystem:
    """Master data lookups, order book, inbound worker, confirmations, error log, endpoint."""

    def __init__(
        self,
        settings: S4EmulatorSettings,
        partners: ODataHost,
        products: ODataHost,
        orders: ODataHost,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        own = settings.sales_orders
        self.master = MasterData(partners.store, products.store)
        self.book = OrderBook(orders, self.master, own)
        business_system = f"{settings.sap_system_id}CLNT{settings.sap_client}"
        self.sender = ConfirmationSender(
            own.confirmation,
            business_system,
            log_size=4 * own.message_log_size,
            transport=transport,
        )
        self.inbound = SalesOrderInbound(
            self.book, self.sender, own.processing_delay_seconds, own.message_log_size
        )
        self.error_log = WebServiceErrorLog(own.message_log_size)
        self.endpoint = SalesOrderEndpoint(
            settings, packaged_schema(), self.inbound, self.error_log
        )

    def reset(self) -> None:
        """Forget messages, confirmations and logged errors (orders go with their store)."""
        self.inbound.reset()
        self.error_log.clear()
