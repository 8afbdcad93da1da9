from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tollgate.auth.keys.principal import KeyRecord, resolve

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
RECORD = KeyRecord(
    id=7,
    org_id="org_abc",
    user_id="usr_abc",
    role="user",
    group_id=3,
    permissions=("read", "write", "delete"),
    key_prefix="tg_AbCd1234",
    month_quota_micros=1_500_000,
    expires_at=None,
    revoked_at=None,
)


def test_unknown_key() -> None:
    result = resolve(None, NOW)
    assert not result.ok and result.reason == "unknown_key" and result.principal is None


def test_active_key_maps_every_field() -> None:
    expires = NOW + timedelta(days=1)
    result = resolve(replace(RECORD, expires_at=expires), NOW)
    assert result.ok and result.reason is None
    p = result.principal
    assert p is not None
    assert (p.key_id, p.org_id, p.user_id, p.role, p.group_id) == (7, "org_abc", "usr_abc", "user", 3)
    assert p.permissions == ("read", "write", "delete")
    assert p.key_prefix == "tg_AbCd1234"
    assert p.month_quota_micros == 1_500_000
    assert p.expires_at_unix == int(expires.timestamp())
    assert not p.is_admin


def test_missing_user_group_and_expiry_use_the_contract_zero_values() -> None:
    p = resolve(replace(RECORD, user_id=None, group_id=None, role="admin"), NOW).principal
    assert p is not None
    assert (p.user_id, p.group_id, p.expires_at_unix) == ("", 0, 0)
    assert p.is_admin


def test_revoked_key_is_refused() -> None:
    result = resolve(replace(RECORD, revoked_at=NOW - timedelta(seconds=1)), NOW)
    assert not result.ok and result.reason == "revoked"


def test_expiry_is_inclusive_of_the_expiry_instant() -> None:
    assert resolve(replace(RECORD, expires_at=NOW), NOW).reason == "expired"
    assert resolve(replace(RECORD, expires_at=NOW - timedelta(days=1)), NOW).reason == "expired"
    assert resolve(replace(RECORD, expires_at=NOW + timedelta(microseconds=1)), NOW).ok


def test_revocation_wins_over_expiry() -> None:
    record = replace(RECORD, revoked_at=NOW, expires_at=NOW - timedelta(days=1))
    assert resolve(record, NOW).reason == "revoked"
