"""The OData v4 query language of the Dataverse emulator, pure and without I/O.

The service core calls :func:`parse_query` with the table, the raw query string and the
``Prefer`` header, then :func:`run_query` with the table's rows; a :class:`QueryError`
becomes ``WebApiResponse.error(error.status, error.code, error.message)``.
"""

from d365sap.emulators.dataverse.query.errors import QueryError
from d365sap.emulators.dataverse.query.expand import ExpandItem, parse_expand, shape_related
from d365sap.emulators.dataverse.query.filter_eval import EvalContext, matches
from d365sap.emulators.dataverse.query.filter_parser import parse_filter
from d365sap.emulators.dataverse.query.options import QueryOptions, parse_query, selected_columns
from d365sap.emulators.dataverse.query.paging import (
    COUNT_LIMIT,
    Page,
    PagingSigner,
    next_link,
    run_query,
)
from d365sap.emulators.dataverse.query.prefer import MAX_PAGE_SIZE, Preferences, parse_prefer
from d365sap.emulators.dataverse.query.sorting import OrderBy
from d365sap.emulators.dataverse.query.types import (
    QueryColumn,
    QueryNavigation,
    QueryTable,
    RelatedRows,
    Row,
)

__all__ = [
    "COUNT_LIMIT",
    "MAX_PAGE_SIZE",
    "EvalContext",
    "ExpandItem",
    "OrderBy",
    "Page",
    "PagingSigner",
    "Preferences",
    "QueryColumn",
    "QueryError",
    "QueryNavigation",
    "QueryOptions",
    "QueryTable",
    "RelatedRows",
    "Row",
    "matches",
    "next_link",
    "parse_expand",
    "parse_filter",
    "parse_prefer",
    "parse_query",
    "run_query",
    "selected_columns",
    "shape_related",
]
