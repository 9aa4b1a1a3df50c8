"""Keys of the emulated Entra ID: the token signing key and the applications' certificates.

The signing key is generated when the emulator starts (tokens die with it, as tokens of a real
tenant die when its keys roll) and published like Entra publishes its keys: a JWKS entry with
``kid``/``x5t`` (the certificate's SHA-1 thumbprint, base64url) and the certificate in ``x5c``.
Application certificates are only public certificates: the emulator verifies client assertions
with them, exactly as Entra does with the certificate uploaded to an app registration.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    """Base64url without padding, as JOSE headers carry thumbprints."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sha1_fingerprint(certificate: x509.Certificate) -> bytes:
    """SHA-1 of the DER certificate: JOSE's ``x5t`` and Entra's key id are defined so."""
    return certificate.fingerprint(hashes.SHA1())  # noqa: S303 - a name, not a security check


class SigningKey:
    """The RSA key that signs access tokens, with the certificate that publishes it."""

    def __init__(self, issuer: str) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d365sap Entra emulator")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(self._key, hashes.SHA256())
        )
        self.kid = b64url(sha1_fingerprint(self.certificate))
        self.issuer = issuer
        self.public_key = self._key.public_key()

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact RS256 JWT with the header Entra puts on its tokens."""
        return jwt.encode(
            dict(claims),
            self._key,
            algorithm="RS256",
            headers={"typ": "JWT", "x5t": self.kid, "kid": self.kid},
        )

    def jwk(self) -> dict[str, Any]:
        """The key as one JWKS entry."""
        entry: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": entry["kty"],
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": entry["n"],
            "e": entry["e"],
            "x5c": [base64.b64encode(der).decode("ascii")],
            "issuer": self.issuer,
        }


@dataclass(frozen=True)
class ApplicationCertificate:
    """A public certificate registered for an application's client assertions."""

    certificate: x509.Certificate

    @classmethod
    def load(cls, path: Path) -> ApplicationCertificate:
        """Read a PEM certificate; raises ``ValueError`` when the file is not one."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls.from_pem(data, str(path))

    @classmethod
    def from_pem(cls, data: bytes, source: str = "certificate") -> ApplicationCertificate:
        """Parse a PEM certificate; raises ``ValueError`` naming ``source``."""
        try:
            certificate = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise ValueError(f"{source} is not a PEM X.509 certificate") from exc
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
            raise ValueError(f"{source}: client assertion certificates must hold an RSA key")
        return cls(certificate)

    @property
    def x5t(self) -> str:
        """SHA-1 thumbprint, base64url (the ``x5t`` header msal sends with RS256)."""
        return b64url(sha1_fingerprint(self.certificate))

    @property
    def x5t_s256(self) -> str:
        """SHA-256 thumbprint, base64url (the ``x5t#S256`` header msal sends with PS256)."""
        return b64url(self.certificate.fingerprint(hashes.SHA256()))

    @property
    def thumbprint(self) -> str:
        """SHA-1 thumbprint in hex capitals, as the Azure portal shows it."""
        return sha1_fingerprint(self.certificate).hex().upper()

    @property
    def public_key(self) -> PublicKeyTypes:
        """The key assertions must be signed with."""
        return self.certificate.public_key()

    def validity(self) -> str:
        """``Start=…, End=…`` as Entra names the key it found."""
        fmt = "%m/%d/%Y %H:%M:%S"
        return (
            f"Start={self.certificate.not_valid_before_utc.strftime(fmt)}, "
            f"End={self.certificate.not_valid_after_utc.strftime(fmt)}"
        )

    def matches(self, header: Mapping[str, Any]) -> bool:
        """Whether a JOSE header names this certificate (``x5t#S256``, ``x5t`` or ``x5c``)."""
        named_s256, named_sha1 = header.get("x5t#S256"), header.get("x5t")
        if isinstance(named_s256, str) and named_s256.rstrip("=") == self.x5t_s256:
            return True  # msal keeps the base64 padding, JOSE drops it: both name the key
        if isinstance(named_sha1, str) and named_sha1.rstrip("=") == self.x5t:
            return True
        chain = header.get("x5c")
        if isinstance(chain, list) and chain and isinstance(chain[0], str):
            der = self.certificate.public_bytes(serialization.Encoding.DER)
            try:  # msal keeps the PEM line breaks inside the base64 text
                return base64.b64decode("".join(chain[0].split()), validate=True) == der
            except ValueError:
                return False
        return False
