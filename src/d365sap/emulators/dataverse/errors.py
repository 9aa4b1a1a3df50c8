"""Dataverse's error replies, and the catalogue of those the emulator gives.

Every rejection is a :class:`WebApiError` raised anywhere below the service and turned into
``{"error": {"code": "0x…", "message": "…"}}`` in one place (``service``). Codes and messages
come from Microsoft's documentation where it has them: the Web API client-error guide
(``0x8006088a`` "Resource not found for the segment", ``0x0`` "Could not find a property
named …"), the conditional-operations article (412 and 404 texts) and the Dataverse error-code
list (``ConcurrencyVersionMismatch``, ``DuplicateRecord``, ``DuplicateRecordEntityKey``,
``ObjectDoesNotExist``, ``EntityKeyNotDefined``, ``CannotDeleteDueToAssociation``,
``InvalidArgument``). Payload errors (``0x80048d19``) and validation errors (``0x80044331``)
follow the shape real environments answer with; the texts name the column in every case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from d365sap.emulators.dataverse.messages import WebApiResponse

# code          name in Microsoft's list             when
NO_CODE = ""  # (as documented)                      412/404 of conditional operations
SEGMENT_NOT_FOUND = "0x8006088a"  # ResourceNotFound     unknown entity set or segment
QUERY_PROPERTY = "0x0"  # (as documented)                $select/$expand names no property
OBJECT_NOT_FOUND = "0x80040217"  # ObjectDoesNotExist    row, alternate key or bound row missing
DUPLICATE_RECORD = "0x80040237"  # DuplicateRecord       key exists (create, If-None-Match: *)
DUPLICATE_KEY = "0x80060892"  # DuplicateRecordEntityKey another row has the alternate key values
VERSION_MISMATCH = "0x80060882"  # ConcurrencyVersionMismatch  If-Match ETag is stale
KEY_NOT_DEFINED = "0x80060890"  # EntityKeyNotDefined    key columns that form no alternate key
INVALID_ARGUMENT = "0x80040203"  # InvalidArgument       required value missing, bad state/status
DELETE_RESTRICTED = "0x80040227"  # CannotDeleteDueToAssociation  restrict-delete relationship
PAYLOAD = "0x80048d19"  # payload cannot be read: unknown property, wrong JSON type, bad bind
VALIDATION = "0x80044331"  # value too long or out of range, unknown choice
BAD_REQUEST = "0x80060888"  # URL syntax: key predicate, query option, literal
PAYLOAD_HELP = "https://go.microsoft.com/fwlink/?linkid=2195293"


@dataclass(eq=False)
class WebApiError(Exception):
    """A rejection in Dataverse's format; ``status`` is the HTTP status."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def response(self) -> WebApiResponse:
        """The reply a client sees."""
        return WebApiResponse.error(self.status, self.code, self.message, self.headers)


def segment_not_found(segment: str) -> WebApiError:
    """404 for an entity set, navigation or path segment the service does not have."""
    return WebApiError(404, SEGMENT_NOT_FOUND, f"Resource not found for the segment '{segment}'.")


def no_resource(url: str) -> WebApiError:
    """404 for a method and path combination nothing answers."""
    return WebApiError(
        404, NO_CODE, f"No HTTP resource was found that matches the request URI '{url}'."
    )


def unknown_property(table: str, name: str) -> WebApiError:
    """400 for ``$select``/``$expand``/``$orderby`` naming a property the type does not have."""
    return WebApiError(
        400,
        QUERY_PROPERTY,
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table}'.",
    )


def row_not_found(table: str, row_id: str) -> WebApiError:
    """404 for a row addressed by primary key that does not exist."""
    return WebApiError(404, OBJECT_NOT_FOUND, f"{table} With Id = {row_id} Does Not Exist")


def key_not_found(table: str) -> WebApiError:
    """404 for a row addressed by alternate key that does not exist."""
    return WebApiError(
        404,
        OBJECT_NOT_FOUND,
        f"A record with the specified key values does not exist in {table} entity",
    )


def already_exists() -> WebApiError:
    """412 for ``If-None-Match: *`` on an existing row, or a create with a taken id."""
    return WebApiError(412, DUPLICATE_RECORD, "A record with matching key values already exists.")


def version_mismatch() -> WebApiError:
    """412 for an ``If-Match`` ETag that is not the row's current version."""
    return WebApiError(
        412,
        VERSION_MISMATCH,
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def duplicate_key(key_name: str, columns: str) -> WebApiError:
    """412 when another row already has the values of an alternate key."""
    return WebApiError(
        412,
        DUPLICATE_KEY,
        f"Entity Key {key_name} violated. A record with the same value for {columns} already "
        "exists. A duplicate record cannot be created. Select one or more unique values and "
        "try again.",
    )


def key_not_defined(table: str, names: str) -> WebApiError:
    """400 for key columns in a URL that are no alternate key of the table."""
    return WebApiError(
        400,
        KEY_NOT_DEFINED,
        f"The specified key attributes are not a defined key for the {table} entity "
        f"(key attributes given: {names})",
    )


def payload(entity_set: str, inner: str) -> WebApiError:
    """400 for a body the OData reader rejects (unknown property, wrong type, bad bind)."""
    return WebApiError(
        400,
        PAYLOAD,
        f"Error identified in Payload provided by the user for Entity :'{entity_set}', "
        f"For more information on this error please follow this help link {PAYLOAD_HELP}  "
        f"----> InnerException : Microsoft.OData.ODataException: {inner}",
    )


def not_on_type(table: str, name: str) -> str:
    """Inner text for a payload property the entity type does not declare."""
    return (
        f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{table}'. Make "
        "sure to only use property names that are defined by the type or mark the type as open "
        "type."
    )


def too_long(table: str, column: str, limit: int, length: int) -> WebApiError:
    """400 for a string longer than the column's maximum length."""
    return WebApiError(
        400,
        VALIDATION,
        f"A validation error occurred. The length of the '{column}' attribute of the '{table}' "
        f"entity exceeded the maximum allowed length of '{limit}' (the value has {length} "
        "characters).",
    )


def out_of_range(table: str, column: str, value: object, allowed: str) -> WebApiError:
    """400 for a number outside the column's range, or an unknown choice value."""
    return WebApiError(
        400,
        VALIDATION,
        f"A validation error occurred. The value {value} of '{column}' on record of type "
        f"'{table}' is outside the valid range. Accepted Values: {allowed}",
    )


def invalid_argument(message: str) -> WebApiError:
    """400 ``InvalidArgument``: a required value is missing, state and status disagree."""
    return WebApiError(400, INVALID_ARGUMENT, message)


def delete_restricted(table: str, row_id: str, referencing: str, column: str) -> WebApiError:
    """405 for deleting a row that restrict-delete relationships still point at."""
    return WebApiError(
        405,
        DELETE_RESTRICTED,
        "The object you tried to delete is associated with another object and cannot be "
        f"deleted. ({table} {row_id} is referenced by {referencing}.{column})",
    )


def bad_request(message: str) -> WebApiError:
    """400 for URL syntax: key predicates, literals, query options."""
    return WebApiError(400, BAD_REQUEST, message)


def method_not_allowed(method: str) -> WebApiError:
    """405 for a method the addressed resource does not support."""
    return WebApiError(
        405, NO_CODE, f"The requested resource does not support http method '{method}'."
    )


def unsupported_media(content_type: str) -> WebApiError:
    """415 for a body that is not JSON."""
    return WebApiError(
        415,
        NO_CODE,
        f"The content type '{content_type}' is not supported; send application/json.",
    )


def too_large(limit: int) -> WebApiError:
    """413 for a request body over the configured limit."""
    return WebApiError(413, NO_CODE, f"The request body is larger than the limit of {limit} bytes.")
