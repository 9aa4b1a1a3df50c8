"""HTTP routes of the emulated Entra ID: what msal calls, and the emulator's own admin routes.

msal's ``ConfidentialClientApplication`` with authority ``https://<host>/<tenant>`` reads
``GET /<tenant>/v2.0/.well-known/openid-configuration`` when it is created and then posts to the
``token_endpoint`` found there. Before that it would ask Microsoft's instance discovery service
(on ``login.microsoftonline.com``) whether the host is a known authority, so clients of the
emulator pass ``instance_discovery=False`` (d365sap's token provider always does) or
``validate_authority=False``. Pointing ``instance_discovery`` at this emulator's
``/common/discovery/instance`` is not enough for msal Python: it still asks Microsoft's service
for host aliases when it removes cached tokens. That route answers like Microsoft's, for its own
host, for clients whose authority validation only reads ``tenant_discovery_endpoint``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from d365sap.emulators.dataverse import identity_errors as errors
from d365sap.emulators.dataverse.identity import SHARED_TENANTS

if TYPE_CHECKING:
    from d365sap.emulators.dataverse.identity import TokenIssuer

JSON_UTF8 = "application/json; charset=utf-8"
NO_STORE = {"cache-control": "no-store, no-cache", "pragma": "no-cache"}
MAX_FORM_BYTES = 64 * 1024


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _reply(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(body, status_code=status, headers=headers, media_type=JSON_UTF8)


def _refusal(exc: errors.EntraError, request: Request) -> Any:
    body = exc.body(request.headers.get("client-request-id"))
    headers = {**NO_STORE, "x-ms-request-id": str(body["trace_id"])}
    return _reply(body, exc.status, headers)


def _form(request: Request, raw: bytes) -> dict[str, list[str]]:
    """The token request's form fields; anything that is not a form reads as an empty form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded" or len(raw) > MAX_FORM_BYTES:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return parse_qs(text, keep_blank_values=True)


def _openid_configuration(base: str, tenant: str) -> dict[str, Any]:
    """The v2.0 OIDC document, with every endpoint on this emulator."""
    return {
        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "tid",
            "ver",
            "oid",
        ],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


def token_router(issuer: TokenIssuer) -> APIRouter:
    """Routes msal uses: OIDC discovery, JWKS, instance discovery and the token endpoint."""
    router = APIRouter()

    @router.get("/common/discovery/instance")
    async def instance_discovery(request: Request) -> Any:
        endpoint = request.query_params.get("authorization_endpoint", "")
        segments = [s for s in urlsplit(endpoint).path.split("/") if s]
        tenant = segments[0] if segments else "common"
        host = urlsplit(_base(request)).netloc
        return _reply(
            {
                "tenant_discovery_endpoint": (
                    f"{_base(request)}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            }
        )

    @router.get("/{tenant}/v2.0/.well-known/openid-configuration")
    async def openid_configuration(tenant: str, request: Request) -> Any:
        if tenant.lower() in SHARED_TENANTS:
            return _reply(_openid_configuration(_base(request), tenant.lower()))
        try:
            tenant_id = issuer.resolve_tenant(tenant, discovery=True)
        except errors.EntraError as exc:
            return _refusal(exc, request)
        return _reply(_openid_configuration(_base(request), tenant_id))

    @router.get("/{tenant}/discovery/v2.0/keys")
    @router.get("/{tenant}/discovery/keys")
    async def keys(tenant: str, request: Request) -> Any:
        if tenant.lower() not in SHARED_TENANTS:
            try:
                issuer.resolve_tenant(tenant, discovery=True)
            except errors.EntraError as exc:
                return _refusal(exc, request)
        return _reply({"keys": [issuer.signing_key.jwk()]})

    @router.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> Any:
        raw = await request.body()
        try:
            if tenant.lower() in SHARED_TENANTS:
                raise errors.no_tenant_for_app_only()
            tenant_id = issuer.resolve_tenant(tenant)
            base = _base(request)
            audiences = [
                f"{base}/{tenant}/oauth2/v2.0/token",
                f"{base}/{tenant_id}/oauth2/v2.0/token",
            ]
            reply = issuer.issue(_form(request, raw), audiences)
        except errors.EntraError as exc:
            return _refusal(exc, request)
        headers = dict(NO_STORE)
        correlation = request.headers.get("client-request-id")
        if correlation:
            headers["client-request-id"] = correlation
        return _reply(reply, headers=headers)

    return router


def admin_router(issuer: TokenIssuer) -> APIRouter:
    """``GET /emulator/identity/tokens`` and ``POST /emulator/identity/tokens/expire``."""
    router = APIRouter(prefix="/emulator/identity")

    def _iso(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, UTC).isoformat()

    @router.get("/tokens")
    async def tokens() -> Any:
        now = issuer.clock()
        return {
            "tokens": [
                {
                    "uti": record.uti,
                    "client_id": record.client_id,
                    "user_id": record.user_id,
                    "credential": record.credential,
                    "issued_at": _iso(record.issued_at),
                    "expires_at": _iso(record.expires_at),
                    "expired": record.expired_on_demand or record.expires_at <= now,
                }
                for record in issuer.issued
            ]
        }

    @router.post("/tokens/expire")
    async def expire(client_id: str | None = None) -> Any:
        return {"expired": issuer.expire_tokens(client_id)}

    return router
