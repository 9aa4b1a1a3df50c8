"""The refusals of the query language, in Dataverse's terms.

Dataverse answers a query it cannot parse or bind with HTTP 400 and code ``0x80060888``
(the code it gives the OData library's exceptions), the message being the library's own
wording, e.g. "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.account'.".
The service core turns a :class:`QueryError` into ``WebApiResponse.error(status, code,
message)``.
"""

from __future__ import annotations

from d365sap.emulators.dataverse.query.types import QueryTable, type_name

ODATA_ERROR = "0x80060888"
"""Code of every OData parse/bind failure (unknown property, syntax, type clash)."""
INVALID_ARGUMENT = "0x80040203"
"""Dataverse's generic "invalid argument" code; used for a $skiptoken the emulator did not
issue (Microsoft documents no sample of that answer)."""
NOT_IMPLEMENTED = "0x80060888"
"""Code for features Dataverse has but this emulator does not (answered with 501)."""


class QueryError(Exception):
    """A query Dataverse would refuse: HTTP status, Dataverse error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"QueryError({self.status}, {self.code!r}, {self.message!r})"


def odata(message: str) -> QueryError:
    """A 400 with the OData error code."""
    return QueryError(400, ODATA_ERROR, message)


def not_implemented(message: str) -> QueryError:
    """A 501: Dataverse supports this, the emulator does not."""
    return QueryError(501, NOT_IMPLEMENTED, message)


def unknown_property(name: str, table: QueryTable) -> QueryError:
    """The error for a column (or navigation property) the table does not have."""
    return odata(f"Could not find a property named '{name}' on type '{type_name(table)}'.")


def syntax(message: str, position: int, text: str) -> QueryError:
    """An expression syntax error: the OData library quotes the position and the text."""
    return odata(f"{message} at position {position} in '{text}'.")


def unsupported_option(name: str) -> QueryError:
    """A system query option Dataverse refuses (``$skip``, ``$search``, ``$format``)."""
    return odata(f"The query parameter {name} is not supported")
