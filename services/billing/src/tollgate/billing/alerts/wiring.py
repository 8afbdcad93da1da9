"""Builds the alert dispatcher of tollgate-billing-worker from settings (its composition root)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts.channels import EmailChannel, KafkaChannel, SmtpConfig, WebhookChannel
from tollgate.billing.alerts.destinations import GuardedTransport, PublicNetworkBackend
from tollgate.billing.alerts.dispatcher import AlertDispatcher
from tollgate.billing.alerts.metrics import AlertMetrics
from tollgate.billing.alerts.policy import RetryPolicy
from tollgate.billing.alerts.secretbox import PREVIOUS_SETTING, SETTING, SecretBox
from tollgate.billing.config import DEV_ALERTS_SECRET_KEY, BillingSettings
from tollgate.common.kafka import kafka_connection, make_producer
from tollgate.common.keyring import Keyring, rotating_secrets
from tollgate.common.networks import parse_networks
from tollgate.common.secret_policy import Secret

log = logging.getLogger(__name__)


def secret_box(settings: BillingSettings) -> SecretBox:
    """Checked at start (secret_box_policy) before this is built."""
    return SecretBox(
        Keyring.from_settings(
            settings.alerts_secret_key.get_secret_value(),
            settings.alerts_previous_secret_keys.get_secret_value(),
        )
    )


def secret_box_policy(settings: BillingSettings) -> list[Secret]:
    return rotating_secrets(
        SETTING,
        settings.alerts_secret_key.get_secret_value(),
        PREVIOUS_SETTING,
        settings.alerts_previous_secret_keys.get_secret_value(),
        DEV_ALERTS_SECRET_KEY,
    )


def smtp_config(settings: BillingSettings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        user=settings.smtp_user,
        password=settings.smtp_password.get_secret_value(),
        starttls=settings.smtp_starttls,
        timeout_s=settings.smtp_timeout_seconds,
    )


def build_dispatcher(
    settings: BillingSettings,
    sessions: async_sessionmaker[AsyncSession],
    registry: CollectorRegistry,
) -> tuple[AlertDispatcher, Callable[[], Awaitable[None]]]:
    """The dispatcher and the hook that closes its Kafka producer and HTTP client."""
    brokers = kafka_connection(settings)
    kafka = KafkaChannel(
        lambda: make_producer(brokers, "tollgate-billing-alerts"),
        timeout_s=settings.webhook_timeout_seconds,
    )
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=10)
    allowed = parse_networks(settings.webhook_allowed_networks)
    # every connection checks the address it connects to (destinations.PublicNetworkBackend), unless
    # private networks are allowed outright (the local stack)
    transport = (
        None
        if settings.webhook_allow_private_networks
        else GuardedTransport(PublicNetworkBackend(allowed), limits)
    )
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
        limits=limits,
        transport=transport,
        trust_env=False,  # a proxy from the environment would connect on our behalf, unchecked
    )
    webhook = WebhookChannel(
        sessions,
        secret_box(settings),
        client,
        allow_private=settings.webhook_allow_private_networks,
        allowed_networks=allowed,
    )
    dispatcher = AlertDispatcher(
        sessions,
        {"kafka": kafka, "email": EmailChannel(smtp_config(settings)), "webhook": webhook},
        AlertMetrics(registry),
        RetryPolicy(
            max_attempts=settings.alert_max_attempts,
            base_s=settings.alert_retry_base_seconds,
            cap_s=settings.alert_retry_max_seconds,
        ),
        batch=settings.alert_dispatch_batch,
        lease_s=settings.alert_lease_seconds,
        interval_s=settings.alert_dispatch_interval_seconds,
    )

    async def close() -> None:
        await kafka.close()
        await client.aclose()

    return dispatcher, close
