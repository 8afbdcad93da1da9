"""The table of every /admin route the isolation tests try with non-admin keys
(test_security_isolation.py): the request each makes, and which answers an organisation's own
admin may get instead of a refusal."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from test_security_isolation import World


def admin_routes(w: World) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("POST", "/admin/api-key/apply", {"name": "sneaky", "role": "admin"}),
        ("POST", "/admin/api-key/update", {"id": w.a_bedrock_gateway.key_id, "role": "admin"}),
        ("POST", "/admin/api-key/delete", {"id": w.b.key_id}),
        ("GET", "/admin/api-key/list", None),
        ("POST", "/admin/api-key/recharge", {"api_key": w.a.key, "balance": 1000}),
        ("GET", "/admin/payment/list", None),
        ("GET", "/admin/group/list", None),
        ("POST", "/admin/group/save", {"name": "sneaky-group"}),
        ("POST", "/admin/group/delete", {"id": 1}),
        ("GET", "/admin/group/models?group_id=1", None),
        ("POST", "/admin/group/models/authorize", {"group_id": 1, "models": ["sim-chat"]}),
        ("POST", "/admin/group/models/deauthorize", {"group_id": 1, "models": ["sim-chat"]}),
        ("GET", f"/admin/api-key/models?key_id={w.b.key_id}", None),
        ("POST", "/admin/api-key/models/authorize", {"key_id": w.b.key_id, "models": ["none"]}),
        ("POST", "/admin/api-key/models/deauthorize", {"key_id": w.b.key_id, "models": ["x"]}),
        ("POST", "/admin/model/save", {"name": "sim-chat", "provider": "openai-compatible", "config": "{}"}),
        ("POST", "/admin/model/delete", {"id": 1}),
        ("GET", "/admin/model/list", None),
        ("POST", "/admin/api-key/secret", {"id": w.b.key_id}),
        ("GET", "/admin/audit/list", None),
        ("POST", "/admin/payment/refund", {"payment_id": 1, "refund_id": "sneaky"}),
        ("POST", "/admin/payment/adjust", {"org_id": w.a.user.org_id, "amount": 1000, "reason": "sneaky"}),
        ("GET", "/admin/payment/package/list", None),
        ("POST", "/admin/payment/package/save", {"id": "pkg_sneaky", "name": "sneaky", "price": 1}),
        ("GET", "/admin/payment/reconcile", None),
        ("GET", "/admin/rate-tier/list", None),
        ("POST", "/admin/rate-tier/save", {"name": "sneaky-tier", "rpm": 1}),
        ("POST", "/admin/rate-tier/delete", {"name": "free"}),
        ("GET", f"/admin/api-key/limits?id={w.b.key_id}", None),
        ("POST", "/admin/api-key/limits", {"id": w.b.key_id, "rpm": 1}),
        ("GET", f"/admin/org/limits?org_id={w.b.user.org_id}", None),
        ("POST", "/admin/org/limits", {"org_id": w.b.user.org_id, "rpm": 1}),
        ("POST", "/admin/system/maintenance", {"message": "sneaky notice to every organisation"}),
        ("GET", "/admin/session/list", None),
        ("GET", "/admin/thread/list", None),
        ("GET", "/admin/session/detail/1", None),
        ("GET", "/admin/thread/detail/1", None),
        ("DELETE", "/admin/session/1", None),
        ("POST", "/admin/session/purge", {"org_id": w.b.user.org_id}),
        ("POST", "/admin/session/retention/run", {}),
        ("GET", f"/admin/org/chat-recording?org_id={w.b.user.org_id}", None),
        (
            "POST",
            "/admin/org/chat-recording",
            {"org_id": w.b.user.org_id, "mode": "full", "retention_days": 1},
        ),
        ("GET", "/admin/bot/feishu/list", None),
        (
            "POST",
            "/admin/bot/feishu/save",
            {
                "name": "sneaky-bot",
                "provider": "bedrock-converse",
                "config": json.dumps(
                    {"appId": "cli_sneaky", "apiKey": w.b.key, "modelId": "sim-chat", "appSecret": "s"}
                ),
            },
        ),
        ("POST", "/admin/bot/feishu/delete", {"id": 1}),
    ]


ADMIN_ROUTE_COUNT = 45
# Reads scoped to the caller's organisation (Principal.is_org_admin): every user owns their personal
# organisation, so these may answer 200 with that organisation's own records only.
ORG_SCOPED_READS = frozenset(
    {
        "/admin/payment/list",
        "/admin/audit/list",
        "/admin/rate-tier/list",
        "/admin/session/list",
        "/admin/thread/list",
        "/admin/bot/feishu/list",
    }
)
# Reads of one record an organisation admin may make for their own organisation: B's is not found.
ORG_SCOPED_LOOKUPS = frozenset(
    {"/admin/api-key/limits", "/admin/org/limits", "/admin/org/chat-recording"}
    | {"/admin/session/detail/1", "/admin/thread/detail/1"}
)
# Changes an organisation admin may make in their own organisation (chat records, bots): naming B's
# organisation, B's key or a record A does not have, they are refused (not found, or invalid).
ORG_SCOPED_WRITES = frozenset(
    {
        "/admin/session/1",
        "/admin/session/purge",
        "/admin/org/chat-recording",
        "/admin/bot/feishu/save",
        "/admin/bot/feishu/delete",
    }
)
# a served route's OpenAPI template for the concrete path the table tries
PATH_TEMPLATES = {
    "/admin/session/detail/1": "/admin/session/detail/{session_id}",
    "/admin/thread/detail/1": "/admin/thread/detail/{thread_id}",
    "/admin/session/1": "/admin/session/{session_id}",
}
