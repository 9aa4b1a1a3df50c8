"""Client for S/4HANA Cloud OData v2 services (API_BUSINESS_PARTNER and friends).

SAP guards modifying requests with a CSRF token bound to the session cookie. The client keeps
token, cookies and connection together: it fetches a token once per session before the first
modifying request and, when S/4 answers ``403`` with ``x-csrf-token: Required`` (token expired),
fetches a new one and repeats the request once. Replies are returned with their ETag so updates
can be made conditional with ``If-Match``.

:meth:`S4ODataClient.create_business_partner` creates a customer S/4 does not know yet (one deep
insert on ``A_BusinessPartner``) and returns the numbers S/4 assigned;
:meth:`S4ODataClient.find_business_partner` finds a partner by its external reference, so a create
whose answer was lost is recognised on the next attempt instead of creating the partner twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2

from d365sap.connectors.base import (
    ConnectorClient,
    classify_status,
    client_kwargs,
    transport_error,
)
from d365sap.connectors.odata_v2 import any_eq_filter, entity_path, eq_filter
from d365sap.connectors.sap_errors import parse_odata_error
from d365sap.errors import PermanentError, TransientError

CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class ODataReply:
    """A successful reply: status, the entity or entities under ``d``, the ETag, the raw body."""

    status: int
    entity: dict[str, Any] | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    etag: str | None = None
    raw: bytes = b""


@dataclass(frozen=True)
class CreatedBusinessPartner:
    """A business partner S/4 created: its number, its customer number and sales areas."""

    business_partner: str
    customer: str | None
    sales_areas: tuple[tuple[str, str, str], ...] = ()
    """(SalesOrganization, DistributionChannel, Division) of each sales area created with it."""
    etag: str | None = None
    raw: bytes = b""


def _results(value: Any) -> list[dict[str, Any]]:
    """The entities of an inline to-many navigation (``{"results": [...]}`` or a list)."""
    if isinstance(value, dict):
        value = value.get("results")
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def created_partner(
    entity: dict[str, Any], *, etag: str | None, raw: bytes
) -> CreatedBusinessPartner:
    """Read the numbers from the 201 reply of a deep insert on ``A_BusinessPartner``."""
    number = entity.get("BusinessPartner")
    if not isinstance(number, str) or not number:
        raise PermanentError(f"S/4HANA Cloud: no BusinessPartner in the reply: {raw[:200]!r}")
    customer_part = entity.get("to_Customer")
    customer = entity.get("Customer")
    areas: list[tuple[str, str, str]] = []
    if isinstance(customer_part, dict) and "__deferred" not in customer_part:
        customer = customer_part.get("Customer") or customer
        for area in _results(customer_part.get("to_CustomerSalesArea")):
            areas.append(
                (
                    str(area.get("SalesOrganization", "")),
                    str(area.get("DistributionChannel", "")),
                    str(area.get("Division", "")),
                )
            )
    return CreatedBusinessPartner(
        business_partner=number,
        customer=customer if isinstance(customer, str) and customer else None,
        sales_areas=tuple(areas),
        etag=etag,
        raw=raw,
    )


def _is_create_conflict(status: int, message: str) -> bool:
    """S/4 answers 400 (not 409) when a create meets an existing key."""
    lowered = message.lower()
    return status == 400 and ("already exist" in lowered or "duplicate" in lowered)


class S4ODataClient(ConnectorClient):
    """An OData v2 session with one S/4HANA Cloud service."""

    system = "S/4HANA Cloud"

    def __init__(
        self,
        base_url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
        verify: bool = True,
        cert: tuple[str, str] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        auth = httpx2.BasicAuth(user, password or "") if user else None
        self._client = httpx2.AsyncClient(
            auth=auth,
            headers={"Accept": "application/json"},
            **client_kwargs(timeout=timeout, verify=verify, cert=cert, transport=transport),
        )
        self._token: str | None = None
        self._token_lock = asyncio.Lock()
        self.csrf_fetches = 0

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` below the service root."""
        return f"{self.base_url}/{path.lstrip('/')}"

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx2.HTTPError as exc:
            raise transport_error(self.system, exc) from exc

    def _fail(self, response: httpx2.Response) -> Exception:
        detail = parse_odata_error(response.content, response.headers.get("content-type", ""))
        return classify_status(
            self.system, response, detail.text(), is_conflict=_is_create_conflict
        )

    async def fetch_csrf_token(self, *, stale: str | None = None) -> str:
        """Fetch a CSRF token and session cookie, unless another task already replaced ``stale``."""
        async with self._token_lock:
            if self._token is not None and self._token != stale:
                return self._token
            response = await self._send("GET", self.url(""), headers={CSRF_HEADER: "Fetch"})
            if response.status_code >= 400:
                raise self._fail(response)
            token = response.headers.get(CSRF_HEADER)
            if not token or token.lower() == "required":
                raise PermanentError(
                    f"{self.system}: no CSRF token in the reply to a token fetch", status=403
                )
            self._token = token
            self.csrf_fetches += 1
            return token

    async def _modify(
        self, method: str, path: str, *, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> httpx2.Response:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        token = self._token or await self.fetch_csrf_token()
        for attempt in (1, 2):
            request_headers = {
                **headers,
                CSRF_HEADER: token,
                "Content-Type": "application/json",
            }
            response = await self._send(
                method, self.url(path), content=content, headers=request_headers
            )
            csrf_required = (
                response.status_code == 403
                and response.headers.get(CSRF_HEADER, "").lower() == "required"
            )
            if not csrf_required:
                return response
            if attempt == 2:
                raise TransientError(
                    f"{self.system}: CSRF token rejected again after a refetch",
                    status=403,
                    backend_message=response.text[:500],
                )
            token = await self.fetch_csrf_token(stale=token)
        raise AssertionError("unreachable")

    async def query(
        self,
        entity_set: str,
        *,
        equals: Mapping[str, str] | None = None,
        any_of: Sequence[Mapping[str, str]] | None = None,
        select: list[str] | None = None,
        top: int | None = None,
    ) -> ODataReply:
        """GET a collection filtered on equality of the given properties (``equals``), or on
        any of several such sets (``any_of``, or-ed)."""
        if equals and any_of:
            raise ValueError("query takes equals or any_of, not both")
        params: dict[str, str] = {}
        if select:
            params["$select"] = ",".join(select)
        if equals:
            params["$filter"] = eq_filter(equals)
        elif any_of:
            params["$filter"] = any_eq_filter(any_of)
        if top is not None:
            params["$top"] = str(top)
        response = await self._send("GET", self.url(entity_set), params=params)
        if response.status_code != 200:
            raise self._fail(response)
        try:
            document = response.json()
            results = document["d"]["results"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(
                f"{self.system}: unexpected reply to GET {entity_set}: {response.text[:200]}",
                status=response.status_code,
            ) from exc
        if not isinstance(results, list):
            raise PermanentError(f"{self.system}: 'd.results' is not a list", status=200)
        return ODataReply(status=200, entities=results, raw=response.content)

    async def read(self, entity_set: str, keys: Mapping[str, str]) -> ODataReply:
        """GET one entity by key; its ETag comes with it."""
        response = await self._send("GET", self.url(entity_path(entity_set, keys)))
        if response.status_code != 200:
            raise self._fail(response)
        entity = response.json().get("d", {})
        etag = response.headers.get("etag") or entity.get("__metadata", {}).get("etag")
        return ODataReply(status=200, entity=entity, etag=etag, raw=response.content)

    async def create(self, entity_set: str, body: Mapping[str, Any]) -> ODataReply:
        """POST a new entity (deep insert allowed); expects ``201 Created``."""
        response = await self._modify("POST", entity_set, body=body, headers={})
        if response.status_code != 201:
            raise self._fail(response)
        entity: dict[str, Any] | None = None
        try:
            entity = response.json().get("d")
        except ValueError:
            entity = None
        etag = response.headers.get("etag")
        if etag is None and entity:
            etag = entity.get("__metadata", {}).get("etag")
        return ODataReply(status=201, entity=entity, etag=etag, raw=response.content)

    async def update(
        self,
        entity_set: str,
        keys: Mapping[str, str],
        body: Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> ODataReply:
        """PATCH the keyed entity, conditional on ``etag`` when one is known."""
        headers = {"If-Match": etag} if etag else {}
        response = await self._modify(
            "PATCH", entity_path(entity_set, keys), body=body, headers=headers
        )
        if response.status_code not in (200, 204):
            raise self._fail(response)
        return ODataReply(
            status=response.status_code, etag=response.headers.get("etag"), raw=response.content
        )

    async def create_business_partner(self, body: Mapping[str, Any]) -> CreatedBusinessPartner:
        """POST a deep insert on ``A_BusinessPartner``; the partner and customer numbers S/4 gave.

        CSRF handling and error classification are those of :meth:`create`: a 400 with S/4's
        message is permanent, 5xx/429 and connection failures are transient.
        """
        reply = await self.create("A_BusinessPartner", body)
        if reply.entity is None:
            raise PermanentError(
                f"{self.system}: the reply to POST A_BusinessPartner holds no entity",
                status=reply.status,
            )
        return created_partner(reply.entity, etag=reply.etag, raw=reply.raw)

    async def find_business_partner(self, external_reference: str) -> CreatedBusinessPartner | None:
        """The partner whose ``BusinessPartnerIDByExtSystem`` is ``external_reference``, if any."""
        reply = await self.query(
            "A_BusinessPartner",
            equals={"BusinessPartnerIDByExtSystem": external_reference},
            select=["BusinessPartner", "Customer"],
        )
        if not reply.entities:
            return None
        if len(reply.entities) > 1:
            numbers = ", ".join(str(e.get("BusinessPartner")) for e in reply.entities)
            raise PermanentError(
                f"{self.system}: business partners {numbers} share the external reference "
                f"{external_reference}",
                status=409,
            )
        return created_partner(reply.entities[0], etag=None, raw=reply.raw)
