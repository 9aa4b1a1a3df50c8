"""The emulated Entra ID token endpoint over real TLS: discovery, tokens and Entra's refusals."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from d365sap.emulators.dataverse.identity import (
    DEMO_APPLICATION_USER_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    EntraApplication,
    EntraSettings,
    TokenIssuer,
)
from d365sap.emulators.tls import TlsFiles, ensure_tls
from support.entra import AppCertificate, IdentityServer, identity_server, make_app_certificate

CERT_CLIENT_ID = "0b6f2d9e-4a1c-4e8b-9f3d-2c7a5e1b8d40"
CERT_USER_ID = "5e2a8c1d-7b4f-4a9e-8d3c-1f6b9a2e7c55"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TIMESTAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def app_cert(tmp_path_factory: pytest.TempPathFactory) -> AppCertificate:
    return make_app_certificate(tmp_path_factory.mktemp("app"), "registered")


@pytest.fixture(scope="module")
def stranger_cert(tmp_path_factory: pytest.TempPathFactory) -> AppCertificate:
    return make_app_certificate(tmp_path_factory.mktemp("stranger"), "stranger")


@pytest.fixture(scope="module")
def entra(tls: TlsFiles, app_cert: AppCertificate) -> Iterator[IdentityServer]:
    settings = EntraSettings(
        applications=[
            EntraApplication(
                client_id=DEMO_CLIENT_ID,
                client_secret=SecretStr(DEMO_CLIENT_SECRET),
                user_id=DEMO_APPLICATION_USER_ID,
            ),
            EntraApplication(
                client_id=CERT_CLIENT_ID,
                display_name="certificate app",
                certificate_file=app_cert.cert_file,
                user_id=CERT_USER_ID,
            ),
        ]
    )
    with identity_server(settings, tls) as server:
        yield server


@pytest.fixture
def http(tls: TlsFiles) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the emulator's CA
    session.verify = str(tls.ca_file)
    yield session
    session.close()


def _secret_form(entra: IdentityServer, **changes: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "scope": f"{entra.url}/.default",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def _assertion(
    entra: IdentityServer,
    cert: AppCertificate,
    *,
    algorithm: str = "RS256",
    header: dict[str, Any] | None = None,
    signing_key: Any = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "aud": entra.token_url,
        "iss": CERT_CLIENT_ID,
        "sub": CERT_CLIENT_ID,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    payload.update(claims)
    thumbprint = base64.urlsafe_b64encode(bytes.fromhex(cert.thumbprint)).decode().rstrip("=")
    key = signing_key or serialization.load_pem_private_key(
        cert.private_key_pem.encode(), password=None
    )
    return jwt.encode(payload, key, algorithm=algorithm, headers=header or {"x5t": thumbprint})


def _assertion_form(assertion: str, **changes: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "client_id": CERT_CLIENT_ID,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def _claims(entra: IdentityServer, token: str) -> dict[str, Any]:
    return jwt.decode(
        token,
        entra.issuer.signing_key.public_key,
        algorithms=["RS256"],
        audience=entra.url,
    )


def _refused(response: requests.Response, status: int, error: str, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    assert f"Correlation ID: {body['correlation_id']}" in body["error_description"]
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    assert response.headers["x-ms-request-id"] == body["trace_id"]
    assert "no-store" in response.headers["cache-control"]
    return body


# Discovery ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tenant", ["id", "d365sap-demo.onmicrosoft.com", "D365SAP-Demo.onmicrosoft.com"]
)
def test_openid_configuration_points_at_the_emulator(
    entra: IdentityServer, http: requests.Session, tenant: str
) -> None:
    name = entra.tenant_id if tenant == "id" else tenant
    response = http.get(f"{entra.url}/{name}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["token_endpoint"] == entra.token_url
    assert config["issuer"] == f"{entra.url}/{entra.tenant_id}/v2.0"
    keys = http.get(config["jwks_uri"]).json()["keys"]
    assert [key["kid"] for key in keys] == [entra.issuer.signing_key.kid]


def test_unknown_tenant_in_discovery_is_invalid_tenant(
    entra: IdentityServer, http: requests.Session
) -> None:
    tenant = str(uuid.uuid4())
    correlation = str(uuid.uuid4())
    response = http.get(
        f"{entra.url}/{tenant}/v2.0/.well-known/openid-configuration",
        headers={"client-request-id": correlation},
    )
    body = _refused(response, 400, "invalid_tenant", 90002)
    assert f"Tenant '{tenant}' not found" in body["error_description"]
    assert body["correlation_id"] == correlation
    assert body["timestamp"] in body["error_description"]
    assert re.fullmatch(TIMESTAMP, body["timestamp"])


def test_instance_discovery_answers_for_its_own_host(
    entra: IdentityServer, http: requests.Session
) -> None:
    response = http.get(
        f"{entra.url}/common/discovery/instance",
        params={
            "api-version": "1.1",
            "authorization_endpoint": f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/authorize",
        },
    )
    body = response.json()
    assert body["tenant_discovery_endpoint"] == (
        f"{entra.url}/{entra.tenant_id}/v2.0/.well-known/openid-configuration"
    )
    host = entra.url.removeprefix("https://")
    assert body["metadata"][0]["aliases"] == [host]


# Tokens ------------------------------------------------------------------------------------


def test_a_secret_gets_a_v1_token_for_the_environment(
    entra: IdentityServer, http: requests.Session
) -> None:
    correlation = str(uuid.uuid4())
    response = http.post(
        entra.token_url, data=_secret_form(entra), headers={"client-request-id": correlation}
    )
    assert response.status_code == 200, response.text
    assert response.headers["client-request-id"] == correlation
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == header["x5t"] == entra.issuer.signing_key.kid
    claims = _claims(entra, token)
    tid = entra.tenant_id
    assert claims["aud"] == entra.url
    assert claims["iss"] == claims["idp"] == f"https://sts.windows.net/{tid}/"
    assert claims["tid"] == tid
    assert claims["appid"] == DEMO_CLIENT_ID
    assert claims["oid"] == claims["sub"] == DEMO_APPLICATION_USER_ID
    assert claims["appidacr"] == "1"
    assert claims["ver"] == "1.0"
    assert claims["idtyp"] == "app"
    assert claims["exp"] - claims["iat"] == 3599
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 5


def test_the_token_verifies_with_the_published_key(
    entra: IdentityServer, http: requests.Session
) -> None:
    token = http.post(entra.token_url, data=_secret_form(entra)).json()["access_token"]
    keys = http.get(f"{entra.url}/{entra.tenant_id}/discovery/v2.0/keys").json()["keys"]
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=entra.url)
    assert claims["appid"] == DEMO_CLIENT_ID


def test_the_tenant_may_be_named_by_its_domain_and_scope_may_end_in_a_double_slash(
    entra: IdentityServer, http: requests.Session
) -> None:
    response = http.post(
        f"{entra.url}/d365sap-demo.onmicrosoft.com/oauth2/v2.0/token",
        data=_secret_form(entra, scope=f"{entra.url}//.default"),
    )
    assert response.status_code == 200, response.text
    assert _claims(entra, response.json()["access_token"])["tid"] == entra.tenant_id


def test_issued_tokens_are_listed_by_the_admin_route(
    entra: IdentityServer, http: requests.Session
) -> None:
    token = http.post(entra.token_url, data=_secret_form(entra)).json()["access_token"]
    uti = _claims(entra, token)["uti"]
    listed = http.get(f"{entra.url}/emulator/identity/tokens").json()["tokens"]
    mine = [t for t in listed if t["uti"] == uti]
    assert mine and mine[0]["client_id"] == DEMO_CLIENT_ID
    assert mine[0]["credential"] == "secret" and mine[0]["expired"] is False


# Refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "status", "error", "code", "names"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215, DEMO_CLIENT_ID),
        (
            {"client_id": "11111111-2222-3333-4444-555555555555"},
            400,
            "unauthorized_client",
            700016,
            "'d365sap demo'",
        ),
        ({"client_secret": None}, 401, "invalid_client", 7000216, "client_credentials"),
        ({"grant_type": None}, 400, "invalid_request", 900144, "'grant_type'"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003, "'password'"),
        ({"client_id": None}, 400, "invalid_request", 900144, "'client_id'"),
        ({"scope": None}, 400, "invalid_request", 900144, "'scope'"),
        (
            {"scope": "https://x.example/user_impersonation"},
            400,
            "invalid_scope",
            1002012,
            "/.default",
        ),
        (
            {"scope": "https://org.crm4.dynamics.com/.default"},
            400,
            "invalid_resource",
            500011,
            "https://org.crm4.dynamics.com",
        ),
        (
            {"client_assertion": "x", "client_assertion_type": JWT_BEARER},
            400,
            "invalid_request",
            9000411,
            "cannot be used together",
        ),
    ],
)
def test_bad_token_requests_are_refused_as_entra_refuses_them(
    entra: IdentityServer,
    http: requests.Session,
    changes: dict[str, str | None],
    status: int,
    error: str,
    code: int,
    names: str,
) -> None:
    response = http.post(entra.token_url, data=_secret_form(entra, **changes))
    body = _refused(response, status, error, code)
    assert names in body["error_description"]


def test_a_duplicated_parameter_is_refused(entra: IdentityServer, http: requests.Session) -> None:
    form = [*_secret_form(entra).items(), ("scope", f"{entra.url}/.default")]
    body = _refused(http.post(entra.token_url, data=form), 400, "invalid_request", 9000411)
    assert "'scope' is duplicated" in body["error_description"]


def test_a_json_body_is_not_a_token_request(entra: IdentityServer, http: requests.Session) -> None:
    response = http.post(entra.token_url, json=_secret_form(entra))
    _refused(response, 400, "invalid_request", 900144)


@pytest.mark.parametrize(
    ("tenant", "code"),
    [
        ("9d3b6a2c-5e4f-4d1a-8b7c-6e5d4c3b2a19", 90002),
        ("other.onmicrosoft.com", 90002),
        ("not a tenant!", 900023),
        ("common", 50059),
        ("organizations", 50059),
    ],
)
def test_a_token_from_another_tenant_is_refused(
    entra: IdentityServer, http: requests.Session, tenant: str, code: int
) -> None:
    response = http.post(f"{entra.url}/{tenant}/oauth2/v2.0/token", data=_secret_form(entra))
    _refused(response, 400, "invalid_request", code)


# Client assertions -------------------------------------------------------------------------


def test_an_rs256_assertion_named_by_sha1_thumbprint_gets_a_token(
    entra: IdentityServer, http: requests.Session, app_cert: AppCertificate
) -> None:
    form = _assertion_form(_assertion(entra, app_cert), scope=f"{entra.url}/.default")
    response = http.post(entra.token_url, data=form)
    assert response.status_code == 200, response.text
    claims = _claims(entra, response.json()["access_token"])
    assert claims["appid"] == CERT_CLIENT_ID
    assert claims["oid"] == CERT_USER_ID
    assert claims["appidacr"] == "2"


def test_a_ps256_assertion_named_by_sha256_thumbprint_gets_a_token(
    entra: IdentityServer, http: requests.Session, app_cert: AppCertificate
) -> None:
    cert = serialization.load_pem_private_key(app_cert.private_key_pem.encode(), password=None)
    der = x509.load_pem_x509_certificate(app_cert.certificate_pem.encode()).fingerprint(
        hashes.SHA256()
    )
    header = {"x5t#S256": base64.urlsafe_b64encode(der).decode().rstrip("=")}
    assertion = _assertion(entra, app_cert, algorithm="PS256", header=header, signing_key=cert)
    response = http.post(
        entra.token_url, data=_assertion_form(assertion, scope=f"{entra.url}/.default")
    )
    assert response.status_code == 200, response.text


def _assertion_refusal(
    entra: IdentityServer, http: requests.Session, assertion: str, **changes: str | None
) -> requests.Response:
    form = _assertion_form(assertion, scope=f"{entra.url}/.default", **changes)
    return http.post(entra.token_url, data=form)


def test_an_assertion_from_an_unregistered_certificate_is_refused(
    entra: IdentityServer, http: requests.Session, stranger_cert: AppCertificate
) -> None:
    response = _assertion_refusal(entra, http, _assertion(entra, stranger_cert))
    body = _refused(response, 401, "invalid_client", 700027)
    assert "The key was not found." in body["error_description"]
    assert stranger_cert.thumbprint in body["error_description"]


def test_an_assertion_signed_with_another_key_is_refused(
    entra: IdentityServer, http: requests.Session, app_cert: AppCertificate
) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = _assertion_refusal(entra, http, _assertion(entra, app_cert, signing_key=forger))
    body = _refused(response, 401, "invalid_client", 700027)
    assert "did not match the expected signature value" in body["error_description"]
    assert "Found key 'Start=" in body["error_description"]


def test_an_expired_assertion_is_refused(
    entra: IdentityServer, http: requests.Session, app_cert: AppCertificate
) -> None:
    now = int(time.time())
    assertion = _assertion(entra, app_cert, iat=now - 1800, nbf=now - 1800, exp=now - 900)
    body = _refused(_assertion_refusal(entra, http, assertion), 401, "invalid_client", 700024)
    assert "not within its valid time range" in body["error_description"]


def test_an_assertion_for_another_token_endpoint_is_refused(
    entra: IdentityServer, http: requests.Session, app_cert: AppCertificate
) -> None:
    elsewhere = f"https://login.microsoftonline.com/{entra.tenant_id}/oauth2/v2.0/token"
    assertion = _assertion(entra, app_cert, aud=elsewhere)
    body = _refused(_assertion_refusal(entra, http, assertion), 401, "invalid_client", 50012)
    assert elsewhere in body["error_description"]


def test_an_assertion_of_another_client_is_refused(
    entra: IdentityServer, http: requests.Session, app_cert: AppCertificate
) -> None:
    assertion = _assertion(entra, app_cert, iss=DEMO_CLIENT_ID, sub=DEMO_CLIENT_ID)
    _refused(_assertion_refusal(entra, http, assertion), 401, "invalid_client", 700021)


def test_a_malformed_assertion_is_refused(entra: IdentityServer, http: requests.Session) -> None:
    _refused(_assertion_refusal(entra, http, "not-a-jwt"), 400, "invalid_request", 50027)


def test_a_wrong_assertion_type_is_refused(
    entra: IdentityServer, http: requests.Session, app_cert: AppCertificate
) -> None:
    response = _assertion_refusal(
        entra, http, _assertion(entra, app_cert), client_assertion_type="jwt"
    )
    body = _refused(response, 400, "invalid_request", 900144)
    assert "'client_assertion_type'" in body["error_description"]


def test_a_secret_for_a_certificate_only_app_is_refused(
    entra: IdentityServer, http: requests.Session
) -> None:
    form = _secret_form(entra, client_id=CERT_CLIENT_ID, client_secret="anything")
    _refused(http.post(entra.token_url, data=form), 401, "invalid_client", 7000215)


def test_an_assertion_for_a_secret_only_app_is_refused(
    entra: IdentityServer, http: requests.Session, app_cert: AppCertificate
) -> None:
    assertion = _assertion(entra, app_cert, iss=DEMO_CLIENT_ID, sub=DEMO_CLIENT_ID)
    response = _assertion_refusal(entra, http, assertion, client_id=DEMO_CLIENT_ID)
    _refused(response, 401, "invalid_client", 700027)


# Settings ----------------------------------------------------------------------------------


def test_an_application_needs_a_credential() -> None:
    with pytest.raises(ValueError, match="client_secret or certificate_file"):
        EntraApplication(client_id=DEMO_CLIENT_ID, user_id=DEMO_APPLICATION_USER_ID)


def test_client_ids_are_unique() -> None:
    app = EntraApplication(
        client_id=DEMO_CLIENT_ID, client_secret=SecretStr("a"), user_id=DEMO_APPLICATION_USER_ID
    )
    twin = app.model_copy(update={"client_id": DEMO_CLIENT_ID.upper()})
    with pytest.raises(ValueError, match="registered twice"):
        EntraSettings(applications=[app, twin])


@pytest.mark.parametrize(("field", "value"), [("tenant_id", "tenant"), ("tenant_domains", ["x y"])])
def test_tenant_names_are_checked(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        EntraSettings.model_validate({field: value})


def test_a_certificate_file_that_is_no_certificate_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "app.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    settings = EntraSettings(
        applications=[
            EntraApplication(client_id=CERT_CLIENT_ID, certificate_file=bogus, user_id=CERT_USER_ID)
        ]
    )
    with pytest.raises(ValueError, match=r"applications\[0\]\.certificate_file"):
        TokenIssuer(settings, "https://127.0.0.1:8443")
