"""Webhook registrations: which endpoint hears about which changes, and how it authenticates.

In Dataverse a webhook is a service endpoint (URL, authentication kind and value) plus one plug-in
step per message on a table, optionally with filtering attributes (Update) and entity images.
The emulator folds both into one :class:`WebhookRegistration`, configured at start-up
(``webhooks.registrations``) or through ``/emulator/webhooks`` while it runs; each one gets a
step id that appears in the context as ``OwningExtension``.

Authentication kinds, as Dataverse sends them: ``HttpHeader`` adds the configured headers,
``WebhookKey`` adds ``code=<key>`` to the query string (the Azure Functions convention) and
``HttpQueryString`` adds the configured query parameters.

Delivery itself (queue, retries, log) is :mod:`webhook_delivery`; the admin routes are at the
end of this module.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from d365sap.emulators.dataverse.events import RowChange
from d365sap.emulators.dataverse.remote_context import Image, Step, attribute_name

if TYPE_CHECKING:
    from d365sap.emulators.dataverse.webhook_delivery import WebhookDispatcher

Message = Literal["Create", "Update", "Delete"]
MASK = "***"


class AuthKind(StrEnum):
    """``serviceendpoint.authtype`` values for webhooks."""

    HTTP_HEADER = "HttpHeader"
    WEBHOOK_KEY = "WebhookKey"
    HTTP_QUERY_STRING = "HttpQueryString"


class ImageSettings(BaseModel):
    """An entity image of the step: ``attributes`` empty means all columns."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["pre", "post"]
    attributes: list[str] = Field(default_factory=list)


class WebhookRegistration(BaseModel):
    """One endpoint registered for some messages on one table."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="GUID; assigned when not given")
    name: str = Field(default="", max_length=160)
    url: str = Field(description="absolute http(s) URL the context is posted to")
    auth: AuthKind = AuthKind.WEBHOOK_KEY
    auth_value: str | dict[str, str] = Field(
        description="WebhookKey: the key; HttpHeader / HttpQueryString: name → value pairs"
    )
    table: str = Field(min_length=1, description="logical name of the table (contact)")
    messages: list[Message] = Field(min_length=1)
    filtering_attributes: list[str] = Field(
        default_factory=list, description="Update only: fire when one of these was set"
    )
    images: list[ImageSettings] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("must be a GUID") from None

    @field_validator("url")
    @classmethod
    def _absolute_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ValueError("must be an absolute http or https URL without a fragment")
        return value

    @field_validator("messages")
    @classmethod
    def _unique(cls, value: list[Message]) -> list[Message]:
        if len(set(value)) != len(value):
            raise ValueError("names a message twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WebhookRegistration:
        if self.auth is AuthKind.WEBHOOK_KEY:
            if not isinstance(self.auth_value, str) or not self.auth_value:
                raise ValueError("auth_value: WebhookKey needs the key as a non-empty string")
        elif not isinstance(self.auth_value, dict) or not self.auth_value:
            raise ValueError(f"auth_value: {self.auth.value} needs name → value pairs")
        elif any(not name for name in self.auth_value):
            raise ValueError("auth_value: names must not be empty")
        if self.filtering_attributes and "Update" not in self.messages:
            raise ValueError("filtering_attributes: only an Update step has filtering attributes")
        messages = set(self.messages)
        for image in self.images:
            if image.kind == "pre" and messages == {"Create"}:
                raise ValueError(f"images: pre image {image.name} does not exist for Create")
            if image.kind == "post" and messages == {"Delete"}:
                raise ValueError(f"images: post image {image.name} does not exist for Delete")
        return self


class WebhookSettings(BaseModel):
    """Registrations at start-up, how deliveries are retried, and who the sender claims to be."""

    model_config = ConfigDict(extra="forbid")

    registrations: list[WebhookRegistration] = Field(default_factory=list)
    retries: int = Field(default=3, ge=0, description="attempts after the first one fails")
    backoff_seconds: float = Field(default=1.0, ge=0, description="wait before the first retry")
    backoff_factor: float = Field(default=2.0, ge=1, description="growth of the wait per retry")
    max_backoff_seconds: float = Field(default=60.0, ge=0)
    retry_on: Literal["any_failure", "gateway_errors"] = Field(
        default="any_failure",
        description="any_failure: non-2xx, timeouts and connection errors; gateway_errors: only "
        "502/503/504, timeouts and connection errors (what Dataverse retries)",
    )
    timeout_seconds: float = Field(default=60.0, gt=0, description="Dataverse waits 60 s")
    workers: int = Field(default=4, ge=1, description="deliveries posted at the same time")
    delivery_log_size: int = Field(default=1000, ge=1, description="deliveries kept in the log")
    verify_tls: bool = Field(default=True, description="check https receivers' certificates")
    organization_id: str = "c2685789-3b56-4285-8bf8-2c581e6e49ca"
    organization_name: str = "emulator"
    organization_domain: str = Field(
        default="emulator.crm.dynamics.com", description="x-ms-dynamics-organization"
    )
    business_unit_id: str = "5c34851c-465c-41da-be87-96926145dd22"


@dataclass(frozen=True)
class Registered:
    """A registration in force, with its ids and its step as the context shows it."""

    registration: WebhookRegistration
    id: str
    step: Step
    created_on: datetime

    def matches(self, change: RowChange) -> bool:
        """Whether ``change`` triggers this registration's step."""
        spec = self.registration
        if change.table != spec.table or change.kind not in spec.messages:
            return False
        if change.kind != "Update" or not spec.filtering_attributes:
            return True
        return bool(_set_attributes(change) & {a.lower() for a in spec.filtering_attributes})

    def view(self) -> dict[str, Any]:
        """The registration as the admin API shows it: secrets masked."""
        data = self.registration.model_dump(mode="json")
        value = data["auth_value"]
        data["auth_value"] = dict.fromkeys(value, MASK) if isinstance(value, dict) else MASK
        data.update(id=self.id, step_id=self.step.step_id, created_on=self.created_on.isoformat())
        return data


def _set_attributes(change: RowChange) -> set[str]:
    """Attributes the operation set: named by the store, or whose value changed."""
    names = {attribute_name(c).lower() for c in change.changed_columns}
    before, after = change.before or {}, change.after or {}
    names |= {attribute_name(c).lower() for c, v in after.items() if before.get(c, v) != v}
    names |= {attribute_name(c).lower() for c in after if c not in before}
    return names


class RegistrationError(ValueError):
    """A registration the registry refuses: ``field`` names the offending member."""

    def __init__(self, field: str, message: str, given: object) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.given = given


class WebhookRegistry:
    """Registrations in force, checked against the tables the emulator knows (thread-safe).

    ``tables`` maps each table's logical name to its attributes' logical names; without it any
    table and attribute is accepted.
    """

    def __init__(self, tables: Mapping[str, Iterable[str]] | None = None) -> None:
        self._tables = {t: frozenset(a) for t, a in tables.items()} if tables is not None else None
        self._lock = threading.Lock()
        self._registered: dict[str, Registered] = {}

    def _check(self, spec: WebhookRegistration) -> None:
        if self._tables is None:
            return
        columns = self._tables.get(spec.table)
        if columns is None:
            known = ", ".join(sorted(self._tables))
            raise RegistrationError("table", f"no table {spec.table}; one of {known}", spec.table)
        for member in ("filtering_attributes", "images"):
            for name in _attribute_names(spec, member):
                if name not in columns:
                    message = f"table {spec.table} has no attribute {name}"
                    raise RegistrationError(member, message, name)

    def add(self, spec: WebhookRegistration) -> Registered:
        """Register ``spec``; raises :class:`RegistrationError` for an unknown table or column."""
        self._check(spec)
        images = [Image(i.name, tuple(i.attributes)) for i in spec.images]
        kinds = [i.kind for i in spec.images]
        registration_id = spec.id or str(uuid.uuid4())
        step = Step(
            step_id=str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessageprocessingstep:{registration_id}")
            ),
            pre_images=tuple(i for i, k in zip(images, kinds, strict=True) if k == "pre"),
            post_images=tuple(i for i, k in zip(images, kinds, strict=True) if k == "post"),
        )
        registered = Registered(spec, registration_id, step, datetime.now(UTC))
        with self._lock:
            if registration_id in self._registered:
                raise RegistrationError("id", f"a webhook {registration_id} exists", spec.id)
            self._registered[registration_id] = registered
        return registered

    def remove(self, registration_id: str) -> bool:
        """Unregister; False when there was no such registration."""
        with self._lock:
            return self._registered.pop(registration_id.lower(), None) is not None

    def clear(self) -> None:
        """Unregister everything."""
        with self._lock:
            self._registered.clear()

    def all(self) -> list[Registered]:
        """The registrations, oldest first."""
        with self._lock:
            return list(self._registered.values())

    def matching(self, change: RowChange) -> list[Registered]:
        """The registrations ``change`` triggers."""
        return [registered for registered in self.all() if registered.matches(change)]


def _attribute_names(spec: WebhookRegistration, member: str) -> list[str]:
    if member == "filtering_attributes":
        return [attribute_name(a).lower() for a in spec.filtering_attributes]
    return [attribute_name(a).lower() for image in spec.images for a in image.attributes]


def _unprocessable(field: str, message: str, given: object) -> JSONResponse:
    """FastAPI's own 422 shape, as the other admin routes answer."""
    detail = [{"type": "value_error", "loc": ["body", field], "msg": message, "input": given}]
    return JSONResponse({"detail": detail}, status_code=422)


def webhook_router(registry: WebhookRegistry, dispatcher: WebhookDispatcher) -> APIRouter:
    """``/emulator/webhooks``: list, register, unregister; ``/deliveries``: the delivery log."""
    router = APIRouter(prefix="/emulator/webhooks", tags=["emulator"])

    @router.get("")
    def registrations() -> dict[str, Any]:
        """Registrations in force (authentication values masked)."""
        return {"webhooks": [registered.view() for registered in registry.all()]}

    @router.post("", status_code=201, response_model=None)
    def register(spec: WebhookRegistration) -> dict[str, Any] | JSONResponse:
        """Register an endpoint; it hears about changes committed from now on."""
        try:
            return registry.add(spec).view()
        except RegistrationError as error:
            return _unprocessable(error.field, error.message, error.given)

    @router.delete("", status_code=204)
    def unregister_all() -> Response:
        """Remove every registration (deliveries under way still finish)."""
        registry.clear()
        return Response(status_code=204)

    @router.get("/deliveries")
    def deliveries(
        status: str | None = Query(default=None, description="only deliveries in this status"),
    ) -> dict[str, Any]:
        """Every delivery kept, oldest first: status, attempts, last error."""
        return {"deliveries": dispatcher.deliveries(status)}

    @router.get("/deliveries/{delivery_id}", response_model=None)
    def delivery(delivery_id: str) -> dict[str, Any] | JSONResponse:
        """One delivery with the headers (secrets masked) and the context it posts."""
        found = dispatcher.delivery(delivery_id)
        if found is None:
            return JSONResponse({"detail": f"no delivery {delivery_id}"}, status_code=404)
        return found

    @router.delete("/deliveries")
    def clear_deliveries() -> dict[str, Any]:
        """Forget finished deliveries; those still under way stay."""
        dispatcher.forget_finished()
        return {"deliveries": dispatcher.deliveries(None)}

    @router.delete("/{registration_id}", status_code=204, response_model=None)
    def unregister(registration_id: str) -> Response | JSONResponse:
        """Remove one registration."""
        if not registry.remove(registration_id):
            return JSONResponse({"detail": f"no webhook {registration_id}"}, status_code=404)
        return Response(status_code=204)

    return router
