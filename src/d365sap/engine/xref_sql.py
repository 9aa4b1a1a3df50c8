"""The key registry's statements, built once so SQLAlchemy reuses their compiled form.

Every message looks its records up several times and a new customer is reserved and confirmed
once: building these statements per call cost more CPU than running them.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import String, Table, bindparam, func, select, update

from d365sap.engine.db import insert_for
from d365sap.engine.tables import KeyRegistryRow

REGISTRY = cast(Table, KeyRegistryRow.__table__)
RESERVED = "reserved"
CONFIRMED = "confirmed"
KEY_COLUMNS = ("target_system", "account_id", "sales_org", "distribution_channel", "division")

BY_KEY = select(REGISTRY).where(
    *(REGISTRY.c[name] == bindparam(f"key_{name}") for name in KEY_COLUMNS)
)
"""The entry of one record (``RecordKey.parameters()``)."""

OF_ACCOUNT = (
    select(REGISTRY)
    .where(REGISTRY.c.account_id == bindparam("account_id"))
    .order_by(REGISTRY.c.updated_at.desc(), REGISTRY.c.id.desc())
)
"""Every entry of one account, newest change first."""

CONFIRM = (
    update(REGISTRY)
    .where(
        *(REGISTRY.c[name] == bindparam(f"key_{name}") for name in KEY_COLUMNS),
        REGISTRY.c.state == RESERVED,
        REGISTRY.c.reserved_by == bindparam("message"),
    )
    .values(
        state=CONFIRMED,
        customer=func.coalesce(bindparam("new_customer", type_=String), REGISTRY.c.customer),
        business_partner=func.coalesce(
            bindparam("new_partner", type_=String), REGISTRY.c.business_partner
        ),
        confirmed_by=bindparam("message"),
        confirmed_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(*REGISTRY.c)
)
"""Confirms a reservation of the message in one statement, answering with the entry."""

ROW_COLUMNS = (
    *KEY_COLUMNS,
    "detail_id",
    "business_partner",
    "customer",
    "state",
    "reserved_by",
    "reserved_at",
    "confirmed_by",
    "confirmed_at",
    "updated_at",
)


@functools.cache
def reserve_statement(dialect: str) -> Any:
    """Inserts a reservation unless the record has one, answering with the new entry."""
    return (
        insert_for(dialect)(REGISTRY)
        .values({name: bindparam(name) for name in ROW_COLUMNS})
        .on_conflict_do_nothing()
        .returning(*REGISTRY.c)
    )
