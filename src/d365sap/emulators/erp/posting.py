"""Post a received DEBMAS IDoc to the customer master, the way ECC's ALE inbound processing does.

Rules (field level): an absent element or the no-data sign ``/`` leaves the column as it is, an
empty element clears it, any other value replaces it. E1KNA1M changes KNA1, Z1ZAKNA1 the
customer's Z columns, every E1KNVVM one KNVV row (created when the sales area does not exist yet).
``LOEVM = X`` flags the customer (E1KNA1M) or the sales area (E1KNVVM) for deletion, as does
function ``003``.

An IDoc for a customer the master does not have creates it when E1KNA1M names an account group
(KTOKD), numbered by the group's range (:mod:`~d365sap.emulators.erp.creation`); without one an
unknown KUNNR ends in status 51 and changes nothing. A posting is all or nothing: it is prepared on
a copy of the customer and stored only when every segment went through. Segments the master does
not model (texts, company codes, partner functions, ...) are accepted and not posted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from d365sap.emulators.erp.creation import PostingError as _PostingError
from d365sap.emulators.erp.creation import create_customer, created_message
from d365sap.emulators.erp.customers import (
    SALES_AREA_KEYS,
    Customer,
    CustomerMaster,
    MasterLayout,
    SalesArea,
    SalesAreaKey,
    alpha_in,
    alpha_out,
    blank_sales_area,
)
from d365sap.emulators.erp.idoc import NO_DATA, ReceivedIdoc, Segment
from d365sap.emulators.erp.numbering import AccountGroup
from d365sap.emulators.erp.registry import SapMessage

STATUS_POSTED = "53"
STATUS_NOT_POSTED = "51"
MSGFN_DELETE = "003"
ACCEPTED_MSGFN = frozenset({"", NO_DATA, MSGFN_DELETE, "004", "005", "009", "018"})
"""ALE function codes the DEBMAS inbound handles; ``""``/absent and ``/`` mean 'change'."""
_FLAG_VALUES = frozenset({"", "X", NO_DATA})


@dataclass(frozen=True)
class PostingResult:
    """Outcome of posting one IDoc: status 53 or 51, the application message, the customer.

    ``sap_message`` is the message of the status record (F2 172/247 for a created customer).
    """

    status: str
    message: str
    kunnr: str | None
    sap_message: SapMessage | None = None
    created: bool = False

    @property
    def posted(self) -> bool:
        """Whether the customer master was changed."""
        return self.status == STATUS_POSTED


def _msgfn(segment: Segment) -> str:
    value = segment.fields.get("MSGFN", "")
    if value not in ACCEPTED_MSGFN:
        raise _PostingError(
            f"{segment.name}-MSGFN: function '{value}' is not supported for message DEBMAS"
            " (use 003, 004, 005, 009, 018 or /)"
        )
    return value


def _check_flag(segment: Segment, field: str) -> None:
    value = segment.fields.get(field)
    if value is not None and value not in _FLAG_VALUES:
        raise _PostingError(
            f"{segment.name}-{field}: '{value}' is not a valid deletion flag (X or blank)"
        )


def _apply(target: dict[str, str], segment: Segment, keep: Iterable[str]) -> None:
    """Copy the segment's values into ``target`` with the no-data / clear semantics."""
    skipped = {"MSGFN", *keep}
    for name, value in segment.fields.items():
        if name in skipped or value == NO_DATA or name not in target:
            continue
        target[name] = value


def _sales_area_key(segment: Segment) -> SalesAreaKey:
    values = [segment.fields.get(k, "") for k in SALES_AREA_KEYS]
    missing = [k for k, v in zip(SALES_AREA_KEYS, values, strict=True) if v in ("", NO_DATA)]
    if missing:
        raise _PostingError(f"E1KNVVM: sales area incomplete, {', '.join(missing)} not given")
    return (values[0], values[1], values[2])


def _post_sales_area(
    customer: Customer, segment: Segment, layout: MasterLayout, notes: list[str]
) -> None:
    function = _msgfn(segment)
    _check_flag(segment, "LOEVM")
    key = _sales_area_key(segment)
    label = "/".join(key)
    area: SalesArea | None = customer.sales_areas.get(key)
    if area is None:
        if function == MSGFN_DELETE:
            raise _PostingError(
                f"Sales area {label} does not exist for customer {alpha_out(customer.kunnr)}"
            )
        area = blank_sales_area(layout, key)
        notes.append(f"sales area {label} created")
    else:
        area = SalesArea(dict(area.fields))  # copy on write: the clone shares the old rows
    customer.sales_areas[key] = area
    _apply(area.fields, segment, SALES_AREA_KEYS)
    if function == MSGFN_DELETE:
        area.fields["LOEVM"] = "X"
    if area.deletion_flag:
        notes.append(f"sales area {label} flagged for deletion")


def post_debmas(
    idoc: ReceivedIdoc,
    docnum: str,
    master: CustomerMaster,
    layout: MasterLayout,
    groups: Mapping[str, AccountGroup],
) -> PostingResult:
    """Post ``idoc`` (number ``docnum``) to ``master``; the caller holds the state lock."""
    general = idoc.segment("E1KNA1M")
    if general is None:
        return PostingResult(STATUS_NOT_POSTED, "Segment E1KNA1M is missing", None)
    raw_number = general.fields.get("KUNNR", "")
    kunnr = alpha_in(raw_number) if raw_number not in ("", NO_DATA) else None
    try:
        function = _msgfn(general)
        _check_flag(general, "LOEVM")
        current = master.get(kunnr) if kunnr is not None else None
        if current is None and function == MSGFN_DELETE:
            raise _PostingError(
                f"Customer {raw_number.strip()} does not exist"
                if kunnr is not None
                else "E1KNA1M-KUNNR: customer number is missing"
            )
        if current is None:
            customer = create_customer(general, kunnr, master, layout, groups)
            notes: list[str] = []
        else:
            customer = current.clone()
            notes = [f"Customer {alpha_out(customer.kunnr)} changed"]
        _apply(customer.kna1, general, ("KUNNR", "KTOKD") if current is None else ("KUNNR",))
        if function == MSGFN_DELETE:
            customer.kna1["LOEVM"] = "X"
        extension = general.child("Z1ZAKNA1")
        if extension is not None:
            _apply(customer.z1zakna1, extension, ())
        for segment in general.children_named("E1KNVVM"):
            _post_sales_area(customer, segment, layout, notes)
    except _PostingError as error:
        return PostingResult(STATUS_NOT_POSTED, error.message, kunnr)
    customer.changed_by_idocs.append(docnum)
    master.replace(customer)
    if current is None:
        message = created_message(customer, general)
        text = "; ".join([message.text(), *notes])
        return PostingResult(STATUS_POSTED, text, customer.kunnr, message, created=True)
    return PostingResult(STATUS_POSTED, "; ".join(notes), customer.kunnr)
