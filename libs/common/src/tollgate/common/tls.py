"""PEM files named by settings, read once at start with errors that name the variable."""

from __future__ import annotations

import ssl

from tollgate.common.transport_settings import TransportSecuritySettings


class TransportConfigError(ValueError):
    """A TLS/SASL setting that cannot work; the message names the variable (never a secret)."""


def read_pem(settings: TransportSecuritySettings, field: str) -> bytes | None:
    """The file `field` names, or None when the setting is empty."""
    path = getattr(settings, field)
    if not path:
        return None
    try:
        with open(path, "rb") as pem:
            return pem.read()
    except OSError as exc:
        raise TransportConfigError(
            f"{settings.env_name(field)}: cannot read {path}: {exc.strerror}"
        ) from None


def require_pair(settings: TransportSecuritySettings, cert_field: str, key_field: str) -> None:
    """A certificate without its key (or the reverse) is a mistake, not "no client certificate"."""
    if bool(getattr(settings, cert_field)) != bool(getattr(settings, key_field)):
        raise TransportConfigError(
            f"{settings.env_name(cert_field)} and {settings.env_name(key_field)} must be set together"
        )


def client_ssl_context(
    settings: TransportSecuritySettings, *, ca: str, cert: str, key: str, check_hostname: bool
) -> ssl.SSLContext:
    """A verifying client context: the CA file (or the system's roots), an optional client
    certificate, hostname checking as set (the chain is verified either way)."""
    require_pair(settings, cert, key)
    try:
        context = ssl.create_default_context(cafile=getattr(settings, ca) or None)
    except (OSError, ssl.SSLError) as exc:
        raise TransportConfigError(f"{settings.env_name(ca)}: not a readable PEM CA file ({exc})") from None
    context.check_hostname = check_hostname
    if getattr(settings, cert):
        try:
            context.load_cert_chain(getattr(settings, cert), getattr(settings, key))
        except (OSError, ssl.SSLError) as exc:
            raise TransportConfigError(
                f"{settings.env_name(cert)}/{settings.env_name(key)}: "
                f"cannot load the client certificate ({exc})"
            ) from None
    return context


def refuse_unused(settings: TransportSecuritySettings, reason: str, *fields: str) -> None:
    """TLS files set where TLS is off: stop rather than silently talk plaintext."""
    set_fields = [settings.env_name(f) for f in fields if getattr(settings, f)]
    if set_fields:
        raise TransportConfigError(f"{', '.join(set_fields)} set, but {reason}")
