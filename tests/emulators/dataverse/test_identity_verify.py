"""TokenIssuer.verify: the Web API's check of the bearer token, and its 401 answer."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
import requests
from pydantic import SecretStr

from d365sap.emulators.dataverse.identity import (
    DEMO_APPLICATION_USER_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    EntraApplication,
    EntraSettings,
    TokenIssuer,
    TokenRejected,
)
from d365sap.emulators.dataverse.messages import Caller
from d365sap.emulators.tls import TlsFiles, ensure_tls
from support.entra import WHOAMI, IdentityServer, identity_server

RESOURCE = "https://127.0.0.1:8443"
OTHER_CLIENT_ID = "7d1e3f5a-9b2c-4d6e-8f0a-1b3c5d7e9f21"
OTHER_USER_ID = "2b4d6f8a-0c1e-4a3b-9d5f-7e9a1c3b5d62"


@pytest.fixture
def issuer() -> TokenIssuer:
    settings = EntraSettings(
        applications=[
            EntraApplication(
                client_id=DEMO_CLIENT_ID,
                client_secret=SecretStr(DEMO_CLIENT_SECRET),
                user_id=DEMO_APPLICATION_USER_ID,
            ),
            EntraApplication(
                client_id=OTHER_CLIENT_ID, client_secret=SecretStr("other"), user_id=OTHER_USER_ID
            ),
        ]
    )
    return TokenIssuer(settings, RESOURCE)


def _token(issuer: TokenIssuer, client_id: str = DEMO_CLIENT_ID, secret: str | None = None) -> str:
    form = {
        "grant_type": ["client_credentials"],
        "client_id": [client_id],
        "client_secret": [
            secret or (DEMO_CLIENT_SECRET if client_id == DEMO_CLIENT_ID else "other")
        ],
        "scope": [f"{RESOURCE}/.default"],
    }
    return str(issuer.issue(form, [])["access_token"])


def _rejected(issuer: TokenIssuer, authorization: str | None) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        issuer.verify(authorization)
    return caught.value


def _with_payload(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = json.dumps(claims, separators=(",", ":")).encode()
    return ".".join([header, base64.urlsafe_b64encode(raw).decode().rstrip("="), signature])


def test_a_good_token_names_the_application_user(issuer: TokenIssuer) -> None:
    caller = issuer.verify(f"Bearer {_token(issuer)}")
    assert caller == Caller(user_id=DEMO_APPLICATION_USER_ID, client_id=DEMO_CLIENT_ID)
    other = issuer.verify(f"bearer {_token(issuer, OTHER_CLIENT_ID)}")
    assert other == Caller(user_id=OTHER_USER_ID, client_id=OTHER_CLIENT_ID)


@pytest.mark.parametrize("authorization", [None, "", "   "])
def test_a_missing_header_is_rejected(issuer: TokenIssuer, authorization: str | None) -> None:
    assert _rejected(issuer, authorization).kind == "missing"


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwdw==", "Bearer", "Bearer    ", "Bearer abc"]
)
def test_a_header_without_a_jwt_is_rejected(issuer: TokenIssuer, authorization: str) -> None:
    assert _rejected(issuer, authorization).kind == "malformed"


def test_the_rejection_is_the_web_apis_401_challenge(issuer: TokenIssuer) -> None:
    response = _rejected(issuer, None).response()
    tenant = issuer.settings.tenant_id
    assert response.status == 401
    assert response.body == b""
    assert response.headers == {
        "www-authenticate": (
            f"Bearer authorization_uri={RESOURCE}/{tenant}/oauth2/authorize, "
            f"resource_id={RESOURCE}/"
        )
    }


def test_the_challenge_names_a_separate_authority_when_configured(issuer: TokenIssuer) -> None:
    issuer.authority_url = "https://login.example.test/"
    challenge = _rejected(issuer, "Bearer x").response().headers["www-authenticate"]
    assert challenge.startswith("Bearer authorization_uri=https://login.example.test/")


def test_a_tampered_token_is_rejected(issuer: TokenIssuer) -> None:
    forged = _with_payload(_token(issuer), oid=OTHER_USER_ID)
    rejection = _rejected(issuer, f"Bearer {forged}")
    assert rejection.kind == "signature"


def test_a_token_of_another_tenant_key_is_rejected(issuer: TokenIssuer) -> None:
    stranger = TokenIssuer(issuer.settings, RESOURCE)
    assert _rejected(issuer, f"Bearer {_token(stranger)}").kind == "signature"


def test_an_expired_token_is_rejected(issuer: TokenIssuer) -> None:
    issuer.clock = lambda: time.time() - 4000
    token = _token(issuer)
    issuer.clock = time.time
    rejection = _rejected(issuer, f"Bearer {token}")
    assert rejection.kind == "expired"
    assert rejection.response().status == 401


def test_a_token_not_yet_valid_is_rejected(issuer: TokenIssuer) -> None:
    issuer.clock = lambda: time.time() + 600
    token = _token(issuer)
    issuer.clock = time.time
    assert _rejected(issuer, f"Bearer {token}").kind == "malformed"


def test_a_token_for_another_environment_is_rejected(issuer: TokenIssuer) -> None:
    token = _token(issuer)
    issuer.resource_url = "https://127.0.0.1:9443"
    rejection = _rejected(issuer, f"Bearer {token}")
    assert rejection.kind == "audience"
    assert "https://127.0.0.1:9443" in rejection.reason


def test_a_token_with_a_foreign_issuer_is_rejected(issuer: TokenIssuer) -> None:
    claims = json.loads(base64.urlsafe_b64decode(_token(issuer).split(".")[1] + "==").decode())
    claims["iss"] = "https://sts.windows.net/00000000-0000-0000-0000-000000000001/"
    signed = issuer.signing_key.sign(claims)
    assert _rejected(issuer, f"Bearer {signed}").kind == "issuer"


def test_tokens_expire_on_demand(issuer: TokenIssuer) -> None:
    mine = _token(issuer)
    theirs = _token(issuer, OTHER_CLIENT_ID)

    assert issuer.expire_tokens(DEMO_CLIENT_ID) == 1
    assert _rejected(issuer, f"Bearer {mine}").kind == "expired"
    assert issuer.verify(f"Bearer {theirs}").client_id == OTHER_CLIENT_ID

    fresh = _token(issuer)
    assert issuer.verify(f"Bearer {fresh}").client_id == DEMO_CLIENT_ID
    assert issuer.expire_tokens() == 2
    assert _rejected(issuer, f"Bearer {fresh}").kind == "expired"
    assert _rejected(issuer, f"Bearer {theirs}").kind == "expired"
    assert issuer.expire_tokens() == 0


def test_records_of_long_expired_tokens_are_dropped(issuer: TokenIssuer) -> None:
    issuer.clock = lambda: time.time() - 4000
    _token(issuer)
    issuer.clock = time.time
    _token(issuer)
    assert len(issuer.issued) == 1


# Through HTTP, as the Web API sees it --------------------------------------------------------


@pytest.fixture(scope="module")
def entra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    tls: TlsFiles = ensure_tls(tmp_path_factory.mktemp("tls"))
    with identity_server(EntraSettings(), tls) as server:
        yield server


@pytest.fixture
def http(entra: IdentityServer) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(entra.tls.ca_file)
    yield session
    session.close()


def _http_token(entra: IdentityServer, http: requests.Session) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "scope": f"{entra.url}/.default",
    }
    return str(http.post(entra.token_url, data=form).json()["access_token"])


def test_the_web_api_accepts_a_token_from_the_token_endpoint(
    entra: IdentityServer, http: requests.Session
) -> None:
    token = _http_token(entra, http)
    response = http.get(f"{entra.url}{WHOAMI}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"UserId": DEMO_APPLICATION_USER_ID, "ClientId": DEMO_CLIENT_ID}


def test_the_web_api_answers_401_with_the_challenge_and_no_body(
    entra: IdentityServer, http: requests.Session
) -> None:
    response = http.get(f"{entra.url}{WHOAMI}")
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["www-authenticate"] == (
        f"Bearer authorization_uri={entra.url}/{entra.tenant_id}/oauth2/authorize, "
        f"resource_id={entra.url}/"
    )


def test_the_admin_route_expires_tokens_the_web_api_then_refuses(
    entra: IdentityServer, http: requests.Session
) -> None:
    token = _http_token(entra, http)
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get(f"{entra.url}{WHOAMI}", headers=headers).status_code == 200

    expired = http.post(f"{entra.url}/emulator/identity/tokens/expire").json()["expired"]

    assert expired >= 1
    assert http.get(f"{entra.url}{WHOAMI}", headers=headers).status_code == 401
    listed = http.get(f"{entra.url}/emulator/identity/tokens").json()["tokens"]
    assert listed and all(t["expired"] for t in listed)
    renewed = {"Authorization": f"Bearer {_http_token(entra, http)}"}
    assert http.get(f"{entra.url}{WHOAMI}", headers=renewed).status_code == 200
