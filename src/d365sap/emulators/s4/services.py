"""The OData services the S/4HANA Cloud emulator hosts, and which of them a path belongs to.

One EDMX-driven machinery serves every service; what differs per service is named here: its
path below ``/sap/opu/odata/sap/``, its packaged EDMX, the ``application`` block SAP Gateway
writes into its error bodies, and whether clients may write to it. API_BUSINESS_PARTNER is the
one d365sap writes to. API_SALES_ORDER_SRV shows the orders the SOAP service
SalesOrderBulkRequest_In created, and API_PRODUCT_SRV the product master those orders are
checked against; both are read-only from outside, because in the emulated scenario nothing
but S/4 itself writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

ODATA_PREFIX = "/sap/opu/odata/sap/"


@dataclass(frozen=True)
class ServiceSpec:
    """One OData v2 service: name, EDMX, Gateway's application block, writability."""

    name: str
    edmx_resource: str
    component_id: str
    read_only: bool

    @property
    def root(self) -> str:
        """``/sap/opu/odata/sap/<NAME>/``."""
        return f"{ODATA_PREFIX}{self.name}/"

    @property
    def application(self) -> MappingProxyType[str, Any]:
        """``innererror.application`` of the service's error bodies."""
        return MappingProxyType(
            {
                "component_id": self.component_id,
                "service_namespace": "/SAP/",
                "service_id": self.name,
                "service_version": "0001",
            }
        )

    def owns(self, path: str) -> bool:
        """Whether ``path`` is the service root (with or without ``/``) or below it."""
        return path == self.root.rstrip("/") or path.startswith(self.root)


BUSINESS_PARTNER = ServiceSpec(
    "API_BUSINESS_PARTNER", "edmx/API_BUSINESS_PARTNER.edmx", "LO-MD-BP", read_only=False
)
SALES_ORDER = ServiceSpec(
    "API_SALES_ORDER_SRV", "edmx/API_SALES_ORDER_SRV.edmx", "SD-SLS-SO", read_only=True
)
PRODUCT = ServiceSpec("API_PRODUCT_SRV", "edmx/API_PRODUCT_SRV.edmx", "LO-MD-PRD", read_only=True)
SERVICES: tuple[ServiceSpec, ...] = (BUSINESS_PARTNER, SALES_ORDER, PRODUCT)


def service_for(path: str) -> ServiceSpec | None:
    """The hosted service ``path`` belongs to, or None."""
    for spec in SERVICES:
        if spec.owns(path):
            return spec
    return None
