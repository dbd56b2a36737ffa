"""The report's SMTP connection with STARTTLS, implicit TLS and login, against aiosmtpd with a certificate of
the test's own CA: the certificate is verified, and the password only travels encrypted."""

from __future__ import annotations

import gc
import ipaddress
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from herald.config import EmailConfig
from herald.localdb import free_port
from herald.report.content import Report
from herald.report.mail import compose, send
from tests.helpers import T0
from tests.ops.conftest import Mailbox

USER, PASSWORD = "herald", "s3cret"


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1: it is its own CA, so trusting it means passing it as ca_file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Herald test SMTP")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - timedelta(days=3650))
        .not_valid_after(T0 + timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("smtp-tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(cert_file, key_file)


class SecureMailbox(Mailbox):
    """Keeps, with each message, whether its session was encrypted and logged in."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[tuple[bool, bool]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # STARTTLS shows in the session; implicit TLS in the transport, which is TLS from the start.
        encrypted = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append((encrypted, session.authenticated))
        return await super().handle_DATA(server, session, envelope)


def _login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself on a failure


@pytest.fixture
def starttls_server(certificate: Certificate) -> Iterator[tuple[int, SecureMailbox]]:
    mailbox = SecureMailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=_login,
    )
    controller.start()
    yield controller.port, mailbox
    stop(controller)


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[tuple[int, SecureMailbox]]:
    mailbox = SecureMailbox()
    # aiosmtpd counts only STARTTLS as TLS: with implicit TLS (encrypted from the first byte) AUTH must be allowed
    # "without TLS" (its warning is silenced in pyproject.toml).
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=certificate.server_context(),
        auth_required=True,
        auth_require_tls=False,
        authenticator=_login,
    )
    controller.start()
    yield controller.port, mailbox
    stop(controller)


def stop(controller: Controller) -> None:
    """Stop the server, and collect what its loop left behind here rather than in whichever test runs next.
    aiosmtpd closes a TLS session's socket only in connection_lost: a session whose client hung up just before the
    server's loop stopped (a refused login) leaves its socket transport to the garbage collector, which warns."""
    controller.stop()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed transport", ResourceWarning)
        gc.collect()


def _config(port: int, security: str, ca_file: Path | str, password: str = PASSWORD) -> EmailConfig:
    return EmailConfig(
        enabled=True,
        send_at="08:00",
        timezone="UTC",
        smtp_host="127.0.0.1",
        smtp_port=port,
        security=security,
        ca_file=str(ca_file),
        user=USER,
        password=password,
        sender="herald@example.com",
        recipients="ops@example.com",
        timeout_s=5.0,
        attempts=1,
        backoff_s=0.01,
    )


REPORT = Report(day=T0.date(), subject="Herald daily report", text="figures", html="<table></table>")


@pytest.mark.parametrize("server, security", [("starttls_server", "starttls"), ("tls_server", "tls")])
async def test_the_report_goes_encrypted_and_logged_in(request, certificate, server, security):
    port, mailbox = request.getfixturevalue(server)
    config = _config(port, security, certificate.cert_file)
    await send(compose(REPORT, config, T0), config)
    assert [m["Subject"] for m in mailbox.messages] == ["Herald daily report"]
    assert mailbox.sessions == [(True, True)]


async def test_a_server_certificate_nobody_vouches_for_is_refused(starttls_server):
    port, mailbox = starttls_server
    config = _config(port, "starttls", ca_file="")  # the system's CAs do not know the test's own CA
    with pytest.raises(ssl.SSLCertVerificationError):
        await send(compose(REPORT, config, T0), config)
    assert mailbox.messages == []


async def test_a_wrong_password_is_an_error_not_a_silent_drop(starttls_server, certificate):
    port, mailbox = starttls_server
    config = replace(_config(port, "starttls", certificate.cert_file), password="wrong")
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await send(compose(REPORT, config, T0), config)
    assert mailbox.messages == []
