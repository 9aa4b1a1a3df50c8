"""The key registry: which SAP customer a Dataverse record became, in every target system.

A native flow creating customers from Dataverse must never create a second customer because a
message was retried, redelivered or processed by two workers. The registry holds, per target
system (``s4hc``, ``ecc``, …) and Dataverse account, one entry for the customer itself (no sales
area) and one per sales area (vkorg/vtweg/spart, with the ERP account detail it came from), and
the SAP keys they got: the S/4 business partner and customer number, or the ECC customer number
(KUNNR).

The flow writes the entry **before** the target write:

1. :meth:`KeyRegistry.reserve` (``reserved``, naming the message): a new entry is
   ``reserved``; the same message asking again (a retry) gets ``retry`` with the same entry; a
   different message sees ``in_progress`` (another message owns the creation: try later) or
   ``confirmed`` (the customer exists: update it instead of creating it);
2. the write to SAP;
3. :meth:`KeyRegistry.confirm` with the numbers SAP gave (``confirmed``).

``retry`` means an earlier attempt of this message may have written to SAP before it was cut
off: look the customer up in SAP before creating it. Unique constraints make two reservations of
one record, or two records claiming one SAP customer and sales area, impossible even across
processes. Methods are synchronous; async callers use ``MessageStore.call``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Result,
    and_,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from d365sap.engine.runtime import DbHandle
from d365sap.engine.store import MessageStore
from d365sap.engine.xref_sql import (
    BY_KEY,
    CONFIRM,
    CONFIRMED,
    OF_ACCOUNT,
    REGISTRY,
    RESERVED,
    reserve_statement,
)
from d365sap.errors import ConflictError, NotFoundError, ValidationError

Outcome = Literal["reserved", "retry", "in_progress", "confirmed"]


def _text(value: str | None, field: str, limit: int, *, required: bool = True) -> str:
    cleaned = (value or "").strip()
    if required and not cleaned:
        raise ValidationError(field, "must not be empty")
    if len(cleaned) > limit:
        raise ValidationError(field, f"at most {limit} characters, got {len(cleaned)}")
    return cleaned


def _record_id(value: str, field: str) -> str:
    """A Dataverse row id, lower case like Dataverse writes GUIDs."""
    cleaned = _text(value, field, 64)
    try:
        return str(uuid.UUID(cleaned))
    except ValueError:
        raise ValidationError(field, f"{value!r} is not a GUID") from None


@dataclass(frozen=True)
class SalesArea:
    """Sales organisation, distribution channel and division (vkorg/vtweg/spart)."""

    sales_org: str
    distribution_channel: str
    division: str

    def __post_init__(self) -> None:
        for name in ("sales_org", "distribution_channel", "division"):
            object.__setattr__(self, name, _text(getattr(self, name), f"sales_area.{name}", 10))


@dataclass(frozen=True)
class RecordKey:
    """One record of the registry.

    ``sales_area`` ``None`` is the customer itself (general data, the business partner);
    otherwise the sales area of that customer, with ``detail_id`` the ERP account detail it
    comes from.
    """

    target_system: str
    account_id: str
    sales_area: SalesArea | None = None
    detail_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_system", _text(self.target_system, "target_system", 32))
        object.__setattr__(self, "account_id", _record_id(self.account_id, "account_id"))
        if self.detail_id is not None:
            if self.sales_area is None:
                raise ValidationError("detail_id", "an ERP account detail needs its sales area")
            object.__setattr__(self, "detail_id", _record_id(self.detail_id, "detail_id"))

    def columns(self) -> dict[str, str]:
        """The key's columns (an empty sales area for the customer itself)."""
        area = self.sales_area
        return {
            "target_system": self.target_system,
            "account_id": self.account_id,
            "sales_org": area.sales_org if area else "",
            "distribution_channel": area.distribution_channel if area else "",
            "division": area.division if area else "",
        }

    def where(self) -> ColumnElement[bool]:
        """The SQL condition naming this record."""
        return and_(*(REGISTRY.c[name] == value for name, value in self.columns().items()))

    def parameters(self) -> dict[str, str]:
        """The values of :data:`BY_KEY`'s parameters for this record."""
        return {f"key_{name}": value for name, value in self.columns().items()}


@dataclass(frozen=True)
class KeyEntry:
    """A registry entry as stored."""

    target_system: str
    account_id: str
    detail_id: str | None
    sales_area: SalesArea | None
    business_partner: str | None
    customer: str | None
    state: str
    reserved_by: str
    reserved_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    updated_at: datetime

    @property
    def key(self) -> RecordKey:
        """The record this entry is about."""
        return RecordKey(self.target_system, self.account_id, self.sales_area, self.detail_id)


@dataclass(frozen=True)
class Reservation:
    """The answer to :meth:`KeyRegistry.reserve`; ``mine`` when this message may write."""

    outcome: Outcome
    entry: KeyEntry

    @property
    def mine(self) -> bool:
        """This message owns the creation (a new reservation or its own earlier one)."""
        return self.outcome in ("reserved", "retry")


def _entry(row: Any) -> KeyEntry:
    area = None
    if row.sales_org or row.distribution_channel or row.division:
        area = SalesArea(row.sales_org, row.distribution_channel, row.division)
    return KeyEntry(
        target_system=row.target_system,
        account_id=row.account_id,
        detail_id=row.detail_id,
        sales_area=area,
        business_partner=row.business_partner,
        customer=row.customer,
        state=row.state,
        reserved_by=row.reserved_by,
        reserved_at=row.reserved_at,
        confirmed_by=row.confirmed_by,
        confirmed_at=row.confirmed_at,
        updated_at=row.updated_at,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _reservation_values(
    key: RecordKey, message: str, customer: str | None, business_partner: str | None
) -> dict[str, Any]:
    """The columns of a new reservation of ``key`` by ``message``."""
    now = _now()
    return {
        **key.columns(),
        "detail_id": key.detail_id,
        "business_partner": _text(business_partner, "business_partner", 20, required=False) or None,
        "customer": _text(customer, "customer", 20, required=False) or None,
        "state": RESERVED,
        "reserved_by": message,
        "reserved_at": now,
        "confirmed_by": None,
        "confirmed_at": None,
        "updated_at": now,
    }


def _confirm_values(
    key: RecordKey, message: str, customer: str | None, partner: str | None, now: datetime
) -> dict[str, Any]:
    """The parameters of :data:`CONFIRM` for ``key``."""
    return {
        **key.parameters(),
        "message": message,
        "new_customer": customer,
        "new_partner": partner,
        "now": now,
    }


def _rowcount(result: Result[Any]) -> int:
    """Rows a DML statement touched (inserts that met a conflict count 0)."""
    return int(cast(CursorResult[Any], result).rowcount)


class KeyRegistry:
    """The key registry in the message store's database.

    The hot path (reserve, confirm, lookups) runs on :meth:`MessageStore.fast` and
    :meth:`MessageStore.read` with statements built once: a new customer takes one transaction
    to reserve and one to confirm, whatever the number of its sales areas.
    """

    def __init__(self, store: MessageStore) -> None:
        self.store = store
        self.reserve_statement = reserve_statement(store.engine.dialect.name)

    # Writing -------------------------------------------------------------------------------

    def reserve(
        self,
        key: RecordKey,
        message_id: str,
        *,
        customer: str | None = None,
        business_partner: str | None = None,
    ) -> Reservation:
        """Reserve ``key`` for ``message_id`` before writing to the target (idempotent).

        ``customer``/``business_partner`` may be given when the number is chosen before the
        write (an ECC customer number from Dataverse). Raises :class:`ConflictError` when the
        detail is registered for another record or the SAP customer for another account.
        """
        message = _text(message_id, "message_id", 64)
        values = _reservation_values(key, message, customer, business_partner)
        with self.store.fast() as conn:
            return self._reserve_in(conn, key, values)

    def reserve_creation(
        self, key: RecordKey, areas: Sequence[RecordKey], message_id: str, *, customer: str | None
    ) -> tuple[Reservation, list[Reservation]]:
        """Reserve a customer and, when the creation is this message's, its sales areas.

        One transaction: a conflict on any of them leaves none reserved. The sales areas are
        not reserved when the customer is confirmed already or another message creates it.
        """
        message = _text(message_id, "message_id", 64)
        with self.store.fast() as conn:
            first = self._reserve_in(conn, key, _reservation_values(key, message, customer, None))
            if not first.mine:
                return first, []
            rest = [
                self._reserve_in(conn, area, _reservation_values(area, message, None, None))
                for area in areas
            ]
        return first, rest

    def _reserve_in(self, conn: DbHandle, key: RecordKey, values: dict[str, Any]) -> Reservation:
        inserted = conn.execute(self.reserve_statement, values).first()
        if inserted is not None:
            return Reservation("reserved", _entry(inserted))
        row = conn.execute(BY_KEY, key.parameters()).first()
        if row is None:
            raise self._conflict(conn, key, values)
        entry = _entry(row)
        if key.detail_id is not None and entry.detail_id not in (None, key.detail_id):
            raise ConflictError(
                f"key registry: {key.target_system} sales area of account {key.account_id} is "
                f"registered for ERP account detail {entry.detail_id}, not {key.detail_id}"
            )
        if entry.state == CONFIRMED:
            return Reservation("confirmed", entry)
        if entry.reserved_by == values["reserved_by"]:
            return Reservation("retry", entry)
        return Reservation("in_progress", entry)

    @staticmethod
    def _conflict(conn: DbHandle, key: RecordKey, values: dict[str, Any]) -> ConflictError:
        """Why an insert did nothing although the record has no entry."""
        if key.detail_id is not None:
            other = conn.execute(
                select(REGISTRY).where(
                    REGISTRY.c.target_system == key.target_system,
                    REGISTRY.c.detail_id == key.detail_id,
                )
            ).first()
            if other is not None:
                return ConflictError(
                    f"key registry: ERP account detail {key.detail_id} is registered for "
                    f"account {other.account_id} {_area_text(_entry(other).sales_area)}"
                )
        return ConflictError(
            f"key registry: {key.target_system} customer {values.get('customer')} "
            f"{_area_text(key.sales_area)} belongs to another account"
        )

    def confirm(
        self,
        key: RecordKey,
        message_id: str,
        *,
        customer: str | None = None,
        business_partner: str | None = None,
    ) -> KeyEntry:
        """Record the SAP keys of a reserved record after the target write (idempotent).

        Confirming again with the same keys returns the entry; other keys, a reservation held
        by another message or none at all raise an error naming the record.
        """
        return self.confirm_creation(
            key, [], message_id, customer=customer, business_partner=business_partner
        )[0]

    def confirm_creation(
        self,
        key: RecordKey,
        areas: Sequence[RecordKey],
        message_id: str,
        *,
        customer: str | None,
        business_partner: str | None = None,
    ) -> list[KeyEntry]:
        """Confirm a customer (``key``) and its sales areas with the numbers SAP gave.

        The usual case, every record reserved by this message, takes one transaction. Anything
        else (a repeated confirmation, a record held by another message, a number registered
        for another account) is sorted out record by record by :meth:`_confirm_one`.
        """
        message = _text(message_id, "message_id", 64)
        number = _text(customer, "customer", 20, required=False) or None
        partner = _text(business_partner, "business_partner", 20, required=False) or None
        wanted = [(key, number, partner), *((area, number, None) for area in areas)]
        done: list[KeyEntry | None] = [None] * len(wanted)
        if number is not None or partner is not None:
            now = _now()
            try:
                with self.store.fast() as conn:
                    for index, (record, new_customer, new_partner) in enumerate(wanted):
                        values = _confirm_values(record, message, new_customer, new_partner, now)
                        row = conn.execute(CONFIRM, values).first()
                        done[index] = _entry(row) if row is not None else None
            except IntegrityError:
                done = [None] * len(wanted)
        return [
            entry if entry is not None else self._confirm_one(record, message, new_c, new_p)
            for entry, (record, new_c, new_p) in zip(done, wanted, strict=True)
        ]

    def _confirm_one(
        self, key: RecordKey, message: str, number: str | None, partner: str | None
    ) -> KeyEntry:
        current = self.lookup(key)
        if current is None:
            raise NotFoundError(f"key registry: {_describe(key)} was never reserved")
        if current.state == CONFIRMED:
            same = (number or current.customer) == current.customer and (
                partner or current.business_partner
            ) == current.business_partner
            if same:
                return current
            raise ConflictError(
                f"key registry: {_describe(key)} is already confirmed as customer "
                f"{current.customer} / business partner {current.business_partner}"
            )
        if current.reserved_by != message:
            raise ConflictError(
                f"key registry: {_describe(key)} is reserved by message {current.reserved_by}"
            )
        final_customer = number or current.customer
        final_partner = partner or current.business_partner
        if final_customer is None and final_partner is None:
            raise ValidationError("customer", "a customer or business partner number is needed")
        try:
            with self.store.fast() as conn:
                row = conn.execute(
                    CONFIRM, _confirm_values(key, message, final_customer, final_partner, _now())
                ).first()
        except IntegrityError:
            raise ConflictError(
                f"key registry: {key.target_system} customer {final_customer} "
                f"{_area_text(key.sales_area)} is already registered for another account"
            ) from None
        if row is None:  # changed meanwhile by another process: report what it is now
            return self._confirm_one(key, message, number, partner)
        return _entry(row)

    def release(self, key: RecordKey, message_id: str) -> bool:
        """Drop a reservation of ``message_id`` whose write certainly did not happen."""
        with self.store.fast() as conn:
            gone = conn.execute(
                delete(REGISTRY).where(
                    key.where(), REGISTRY.c.state == RESERVED, REGISTRY.c.reserved_by == message_id
                )
            )
        return _rowcount(gone) > 0

    def transfer(self, key: RecordKey, from_message: str, to_message: str) -> bool:
        """Hand a reservation over from a message that ended (failed, discarded) to another.

        The new owner sees ``retry`` when it reserves: the old one may have written to SAP.
        """
        target = _text(to_message, "to_message", 64)
        with self.store.fast() as conn:
            moved = conn.execute(
                update(REGISTRY)
                .where(
                    key.where(),
                    REGISTRY.c.state == RESERVED,
                    REGISTRY.c.reserved_by == from_message,
                )
                .values(reserved_by=target, reserved_at=_now(), updated_at=_now())
            )
        return _rowcount(moved) > 0

    # Reading -------------------------------------------------------------------------------

    def lookup(self, key: RecordKey) -> KeyEntry | None:
        """The entry of one record."""
        with self.store.read() as conn:
            row = conn.execute(BY_KEY, key.parameters()).first()
        return _entry(row) if row is not None else None

    def of_account(self, account_id: str) -> list[KeyEntry]:
        """Every entry of one Dataverse account, in every target system (one statement)."""
        with self.store.read() as conn:
            rows = conn.execute(OF_ACCOUNT, {"account_id": _record_id(account_id, "account_id")})
            return [_entry(row) for row in rows]

    def by_detail(self, target_system: str, detail_id: str) -> KeyEntry | None:
        """The sales-area entry of an ERP account detail."""
        detail = _record_id(detail_id, "detail_id")
        with self.store.sessions() as session:
            row = session.execute(
                select(REGISTRY).where(
                    REGISTRY.c.target_system == target_system, REGISTRY.c.detail_id == detail
                )
            ).first()
        return _entry(row) if row is not None else None

    def by_target(
        self,
        target_system: str,
        *,
        customer: str | None = None,
        business_partner: str | None = None,
    ) -> list[KeyEntry]:
        """Entries of an SAP customer or business partner (the other way round)."""
        if (customer is None) == (business_partner is None):
            raise ValidationError("customer", "give either customer or business_partner")
        column = REGISTRY.c.customer if customer is not None else REGISTRY.c.business_partner
        value = (customer or business_partner or "").strip()
        return self._select(
            and_(REGISTRY.c.target_system == target_system, column == value), limit=None
        )

    def entries(
        self,
        *,
        target_system: str | None = None,
        state: str | None = None,
        account_id: str | None = None,
        limit: int | None = 100,
    ) -> list[KeyEntry]:
        """Entries for the CLI and the API, newest change first, optionally filtered."""
        conditions: list[ColumnElement[bool]] = []
        if target_system:
            conditions.append(REGISTRY.c.target_system == target_system)
        if state:
            if state not in (RESERVED, CONFIRMED):
                raise ValidationError("state", f"{state!r} is not 'reserved' or 'confirmed'")
            conditions.append(REGISTRY.c.state == state)
        if account_id:
            conditions.append(REGISTRY.c.account_id == _record_id(account_id, "account_id"))
        return self._select(and_(*conditions) if conditions else None, limit=limit)

    def _select(
        self, condition: ColumnElement[bool] | None, *, limit: int | None
    ) -> list[KeyEntry]:
        query = select(REGISTRY).order_by(REGISTRY.c.updated_at.desc(), REGISTRY.c.id.desc())
        if condition is not None:
            query = query.where(condition)
        if limit is not None:
            query = query.limit(limit)
        with self.store.sessions() as session:
            return [_entry(row) for row in session.execute(query).all()]


def _area_text(area: SalesArea | None) -> str:
    if area is None:
        return "(customer)"
    return f"{area.sales_org}/{area.distribution_channel}/{area.division}"


def _describe(key: RecordKey) -> str:
    return f"{key.target_system} account {key.account_id} {_area_text(key.sales_area)}"
