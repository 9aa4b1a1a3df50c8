"""Load the customer master the emulator starts with (and returns to on reset).

Format (JSON, field names as in the SAP tables)::

    {"customers": [
        {"KUNNR": "100123",
         "KNA1": {"NAME1": "...", "ORT01": "...", "LAND1": "DE"},
         "Z1ZAKNA1": {"ZZ_ID": "..."},
         "KNVV": [{"VKORG": "1000", "VTWEG": "10", "SPART": "00", "KDGRP": "01"}]}
    ]}

Columns not given are initial. Every column name and length is checked against the IDoc schema, so a
seed can hold nothing a DEBMAS IDoc could not have written; all problems are reported at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from d365sap.emulators.erp.customers import (
    SALES_AREA_KEYS,
    Customer,
    MasterLayout,
    SalesAreaKey,
    alpha_in,
    blank_customer,
    blank_sales_area,
)
from d365sap.errors import ConfigError


class SeedCustomer(BaseModel):
    """One customer of the seed file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kunnr: str = Field(alias="KUNNR", min_length=1, max_length=10)
    kna1: dict[str, str] = Field(default_factory=dict, alias="KNA1")
    z1zakna1: dict[str, str] = Field(default_factory=dict, alias="Z1ZAKNA1")
    knvv: list[dict[str, str]] = Field(default_factory=list, alias="KNVV")


class SeedFile(BaseModel):
    """The whole seed file."""

    model_config = ConfigDict(extra="forbid")

    customers: list[SeedCustomer]


def _check_columns(
    where: str, values: Mapping[str, str], columns: Mapping[str, int | None]
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, value in values.items():
        if name not in columns:
            problems.append((f"{where}.{name}", "no such column"))
            continue
        limit = columns[name]
        if limit is not None and len(value) > limit:
            problems.append((f"{where}.{name}", f"longer than {limit} characters"))
    return problems


def build_customers(seed: SeedFile, layout: MasterLayout, *, source: str) -> list[Customer]:
    """Turn a parsed seed into customers, or raise :class:`ConfigError` listing every problem."""
    problems: list[tuple[str, str]] = []
    customers: dict[str, Customer] = {}
    for index, entry in enumerate(seed.customers):
        where = f"{source}: customers[{index}]"
        customer = blank_customer(layout, entry.kunnr)
        if customer.kunnr in customers:
            problems.append((f"{where}.KUNNR", f"customer {entry.kunnr} appears twice"))
        kna1 = {k: v for k, v in entry.kna1.items() if k != "KUNNR"}
        if "KUNNR" in entry.kna1 and alpha_in(entry.kna1["KUNNR"]) != customer.kunnr:
            problems.append((f"{where}.KNA1.KUNNR", "differs from the customer's KUNNR"))
        problems += _check_columns(f"{where}.KNA1", kna1, layout.kna1)
        problems += _check_columns(f"{where}.Z1ZAKNA1", entry.z1zakna1, layout.z1zakna1)
        customer.kna1.update(kna1)
        customer.z1zakna1.update(entry.z1zakna1)
        for position, row in enumerate(entry.knvv):
            row_where = f"{where}.KNVV[{position}]"
            missing = [k for k in SALES_AREA_KEYS if not row.get(k)]
            if missing:
                problems.append((row_where, f"sales area key incomplete, missing {missing}"))
                continue
            problems += _check_columns(row_where, row, layout.knvv)
            key: SalesAreaKey = (row["VKORG"], row["VTWEG"], row["SPART"])
            if key in customer.sales_areas:
                problems.append((row_where, f"sales area {'/'.join(key)} appears twice"))
            area = blank_sales_area(layout, key)
            area.fields.update(row)
            customer.sales_areas[key] = area
        customers[customer.kunnr] = customer
    if problems:
        raise ConfigError(problems)
    return list(customers.values())


def load_seed(path: Path | None, layout: MasterLayout) -> list[Customer]:
    """Read ``path``, or the packaged demo seed when it is None."""
    if path is None:
        source = "packaged seed.json"
        raw = resources.files(__package__).joinpath("seed.json").read_bytes()
    else:
        source = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError([(source, f"cannot read the ERP seed file: {exc.strerror}")]) from exc
    try:
        seed = SeedFile.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise ConfigError(
            [
                (f"{source}: {'.'.join(str(p) for p in err['loc'])}", err["msg"])
                for err in exc.errors()
            ]
        ) from exc
    return build_customers(seed, layout, source=source)
