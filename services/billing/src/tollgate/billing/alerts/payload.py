"""One alert, three renderings: the CostAlert protobuf (Kafka), the webhook JSON body, the e-mail."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from typing import Any

import orjson

from tollgate.billing.alerts.models import Alert
from tollgate.common.money import micros_to_credits
from tollgate.contracts.v1 import events_pb2

EVENT_TYPE = "cost_alert"  # SloughGPT's event type
# Long ids in headers stay on one line (SMTP allows 998 characters) instead of being folded.
_MAIL_POLICY = policy.SMTP.clone(max_line_length=998)


def fired_at_ms(alert: Alert) -> int:
    return int(alert.fired_at.timestamp() * 1000)


def cost_alert_event(alert: Alert) -> events_pb2.CostAlert:
    return events_pb2.CostAlert(
        alert_id=alert.alert_id,
        org_id=alert.org_id,
        key_id=alert.key_id or 0,
        kind=alert.kind,
        budget_id=alert.budget_id,
        period=alert.period,
        threshold_pct=alert.threshold_pct,
        spent_micros=alert.spent_micros,
        limit_micros=alert.limit_micros,
        balance_micros=alert.balance_micros,
        fired_at_unix_ms=fired_at_ms(alert),
    )


def alert_data(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "org_id": alert.org_id,
        "key_id": alert.key_id,
        "kind": alert.kind,
        "budget_id": alert.budget_id,
        "period": alert.period,
        "threshold_pct": alert.threshold_pct,
        "spent": micros_to_credits(alert.spent_micros),
        "limit": micros_to_credits(alert.limit_micros),
        "balance": micros_to_credits(alert.balance_micros),
        "spent_micros": alert.spent_micros,
        "limit_micros": alert.limit_micros,
        "balance_micros": alert.balance_micros,
        "fired_at_unix_ms": fired_at_ms(alert),
    }


def webhook_body(alert: Alert) -> bytes:
    """The exact bytes signed and sent; `id` is stable across retries (receivers dedupe on it)."""
    return orjson.dumps(
        {
            "id": alert.alert_id,
            "type": EVENT_TYPE,
            "created": fired_at_ms(alert) // 1000,
            "data": alert_data(alert),
        }
    )


_TITLES = {
    "budget_threshold": "Budget alert",
    "quota_threshold": "API key quota alert",
    "low_balance": "Low balance alert",
}


def email_message(alert: Alert, *, sender: str, recipient: str, delivery_id: int) -> EmailMessage:
    title = _TITLES.get(alert.kind, "Cost alert")
    spent, limit = micros_to_credits(alert.spent_micros), micros_to_credits(alert.limit_micros)
    scope = f"API key {alert.key_id}" if alert.key_id else f"organisation {alert.org_id}"
    msg = EmailMessage(policy=_MAIL_POLICY)
    msg["From"] = sender
    msg["To"] = recipient
    if alert.kind == "low_balance":
        threshold = micros_to_credits(alert.limit_micros)
        msg["Subject"] = f"[Tollgate] {title}: {scope} is below {threshold:.2f} credits"
    else:
        msg["Subject"] = f"[Tollgate] {title}: {alert.threshold_pct}% reached for {scope} ({alert.period})"
    # stable across retries, so a mail system can drop a duplicate of a re-sent attempt
    msg["Message-ID"] = f"<alert-delivery-{delivery_id}@tollgate>"
    msg["X-Tollgate-Alert-Id"] = alert.alert_id
    if alert.kind == "low_balance":
        lines = [
            f"{title} for {scope}: the balance went below the threshold you set.",
            "",
            f"Threshold: {limit:.6f} credits",
            f"Balance:   {micros_to_credits(alert.balance_micros):.6f} credits",
            "",
            f"Alert id: {alert.alert_id}",
        ]
        msg.set_content("\n".join(lines) + "\n")
        return msg
    lines = [
        f"{title} for {scope}, period {alert.period}.",
        "",
        f"Threshold: {alert.threshold_pct}%",
        f"Spent:     {spent:.6f} credits",
        f"Limit:     {limit:.6f} credits",
        f"Balance:   {micros_to_credits(alert.balance_micros):.6f} credits",
        "",
        f"Alert id: {alert.alert_id}",
    ]
    if alert.budget_id:
        lines.append(f"Budget id: {alert.budget_id}")
    msg.set_content("\n".join(lines) + "\n")
    return msg
