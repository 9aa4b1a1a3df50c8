"""Server-driven paging: ``$skiptoken`` paging cookies and running a query to one page.

A Dataverse ``@odata.nextLink`` carries ``$skiptoken=<cookie pagenumber="2"
pagingcookie="…" istracking="False" />``. The emulator keeps that outer shape (clients that
look for ``pagenumber`` still find it) and puts in ``pagingcookie`` a signed, opaque record
of the last row of the page: its sort values and primary key, plus a fingerprint of the
query's ``$filter``/``$orderby``. The next page starts after that row in the same total
order, so rows inserted or deleted meanwhile neither repeat nor skip rows already seen. A
cookie that was altered, or is replayed against another query, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_plus

from d365sap.emulators.dataverse.query import errors
from d365sap.emulators.dataverse.query.filter_eval import EvalContext, matches
from d365sap.emulators.dataverse.query.sorting import (
    OrderBy,
    compare_keys,
    raw_key,
    sort_rows,
    sort_specs,
)
from d365sap.emulators.dataverse.query.types import QueryTable, RelatedRows, Row

if TYPE_CHECKING:
    from d365sap.emulators.dataverse.query.options import QueryOptions

COUNT_LIMIT = 5000
"""``@odata.count`` never exceeds this; beyond it ``totalrecordcountlimitexceeded`` is true."""
_COOKIE = re.compile(
    r'<cookie pagenumber="(\d+)" pagingcookie="([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)" '
    r'istracking="False" />'
)


class PagingSigner:
    """Signs paging cookies with a key; the default key is new for every process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode("ascii").rstrip("=")

    def verify(self, payload: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(payload), signature)


DEFAULT_SIGNER = PagingSigner()


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the row with these sort values (raw)."""

    page: int
    after: tuple[object, ...]


def fingerprint(entity_set: str, filter_text: str | None, orderby_text: str | None) -> str:
    """What a paging cookie is bound to: the collection and the row order and selection."""
    material = "\x1f".join((entity_set, filter_text or "", orderby_text or ""))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def _tag(value: object) -> list[object]:
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", repr(value)]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    if isinstance(value, uuid.UUID):
        return ["g", str(value)]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["D", value.isoformat()]
    return ["s", str(value)]


def _untag(item: object) -> object:
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise ValueError(item)
    tag, rest = item[0], item[1:]
    if tag == "n":
        return None
    (value,) = rest
    readers = {
        "b": bool,
        "i": int,
        "f": float,
        "d": Decimal,
        "g": uuid.UUID,
        "t": datetime.fromisoformat,
        "D": date.fromisoformat,
        "s": str,
    }
    if tag not in readers:
        raise ValueError(tag)
    return readers[tag](value)  # type: ignore[operator]


def encode_skiptoken(cursor: Cursor, query_fingerprint: str, signer: PagingSigner) -> str:
    """The ``$skiptoken`` value (not yet percent-encoded) for ``cursor``."""
    document = {"f": query_fingerprint, "p": cursor.page, "k": [_tag(v) for v in cursor.after]}
    raw = json.dumps(document, separators=(",", ":")).encode("utf-8")
    payload = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    cookie = f"{payload}.{signer.sign(payload)}"
    return f'<cookie pagenumber="{cursor.page}" pagingcookie="{cookie}" istracking="False" />'


def _invalid() -> errors.QueryError:
    return errors.QueryError(
        400,
        errors.INVALID_ARGUMENT,
        "The $skiptoken is not valid for this query: use the @odata.nextLink exactly as it "
        "was returned, without changing it or its query options.",
    )


def decode_skiptoken(token: str, query_fingerprint: str, signer: PagingSigner) -> Cursor:
    """The cursor in a ``$skiptoken``; raises :class:`~.errors.QueryError` if not genuine."""
    match = _COOKIE.fullmatch(token.strip())
    if match is None or not signer.verify(match.group(2), match.group(3)):
        raise _invalid()
    payload = match.group(2)
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        document = json.loads(raw)
        after = tuple(_untag(item) for item in document["k"])
        page = int(document["p"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid() from None
    if document.get("f") != query_fingerprint or page != int(match.group(1)):
        raise _invalid()
    return Cursor(page, after)


@dataclass(frozen=True)
class Page:
    """One page of a collection read.

    ``count`` is ``@odata.count`` (set with ``$count=true``, at most :data:`COUNT_LIMIT`),
    ``count_limit_exceeded`` whether more rows matched; ``skiptoken`` is the next page's
    ``$skiptoken`` (``None`` on the last page), ``page_number`` this page's number.
    """

    rows: list[Row]
    count: int | None
    count_limit_exceeded: bool
    skiptoken: str | None
    page_number: int

    def count_annotations(self, *, include_total: bool) -> dict[str, object]:
        """``@odata.count`` and, when the caller asked for them with
        ``odata.include-annotations``, the two ``Microsoft.Dynamics.CRM`` total annotations."""
        out: dict[str, object] = {}
        if self.count is not None:
            out["@odata.count"] = self.count
        if include_total:
            out["@Microsoft.Dynamics.CRM.totalrecordcount"] = (
                -1 if self.count is None else self.count
            )
            out["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = self.count_limit_exceeded
        return out


def _seek(rows: Sequence[Row], after: tuple[object, ...], specs: Sequence[OrderBy]) -> int:
    """Index of the first row ordered after ``after`` (rows are sorted)."""
    low, high = 0, len(rows)
    while low < high:
        middle = (low + high) // 2
        if compare_keys(raw_key(rows[middle], specs), after, specs) <= 0:
            low = middle + 1
        else:
            high = middle
    return low


def run_query(
    table: QueryTable,
    rows: Iterable[Row],
    options: QueryOptions,
    *,
    related: RelatedRows | None = None,
    now: datetime | None = None,
    signer: PagingSigner = DEFAULT_SIGNER,
) -> Page:
    """Filter, count, order and page ``rows`` of ``table`` as ``options`` ask.

    Rows come back whole (projection by ``$select`` is the serializer's job, which also needs
    columns that are not selected, e.g. for ETags); ``related`` resolves navigation paths and
    ``any``/``all`` in ``$filter``.
    """
    context = EvalContext(related, now) if now is not None else EvalContext(related)
    kept = [row for row in rows if matches(options.filter, row, context)]
    count = min(len(kept), COUNT_LIMIT) if options.count else None
    exceeded = options.count and len(kept) > COUNT_LIMIT
    specs = sort_specs(table, options.orderby)
    ordered = sort_rows(kept, specs)
    page_number = 1
    start = 0
    if options.cursor is not None:
        start = _seek(ordered, options.cursor.after, specs)
        page_number = options.cursor.page
    if options.top is not None and options.preferences.max_page_size is None:
        return Page(ordered[: min(options.top, options.page_size)], count, exceeded, None, 1)
    page = ordered[start : start + options.page_size]
    skiptoken = None
    if page and start + len(page) < len(ordered):
        cursor = Cursor(page_number + 1, raw_key(page[-1], specs))
        skiptoken = encode_skiptoken(cursor, options.fingerprint, signer)
    return Page(page, count, exceeded, skiptoken, page_number)


def next_link(service_root: str, path: str, query: str, skiptoken: str) -> str:
    """The ``@odata.nextLink``: the request's URL, its ``$skiptoken`` replaced by
    ``skiptoken`` (other query options kept exactly as the client sent them)."""
    kept = [
        pair
        for pair in query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) != "$skiptoken"
    ]
    kept.append("$skiptoken=" + quote(skiptoken, safe="="))
    return f"{service_root.rstrip('/')}/{path.lstrip('/')}?{'&'.join(kept)}"
