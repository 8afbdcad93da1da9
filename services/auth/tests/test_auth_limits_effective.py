"""How a key's or an organisation's limits are worked out (limits/effective.py), and how they travel
in the Principal: the proto round trip and the defaults every existing constructor call relies on."""

from __future__ import annotations

from tollgate.auth.grpc_server import principal_to_proto
from tollgate.auth.limits.effective import NOT_SET, Measures, as_measures, effective
from tollgate.auth.sessions.principal import resolve_token
from tollgate.auth.sessions.repository import SessionSubject
from tollgate.auth.sessions.tokens import AccessClaims
from tollgate.common.auth_client import NO_RATE_LIMITS, Principal, RateLimits
from tollgate.contracts.v1 import auth_pb2

FREE = Measures(rpm=100, tpm=None, tpd=10_000)


def test_no_tier_and_no_overrides_is_not_limited() -> None:
    assert effective(None, None) == NO_RATE_LIMITS == RateLimits("", 0, 0, 0)
    assert not NO_RATE_LIMITS.limited


def test_the_tier_sets_each_measure_and_null_means_not_limited() -> None:
    assert effective("free", FREE) == RateLimits("free", rpm=100, tpm=0, tpd=10_000)


def test_an_override_wins_for_its_measure_only() -> None:
    limits = effective("free", FREE, Measures(rpm=5, tpm=None, tpd=None))
    assert limits == RateLimits("free", rpm=5, tpm=0, tpd=10_000)
    # an override may also limit what the tier leaves open
    assert effective("free", FREE, Measures(tpm=700)) == RateLimits("free", 100, 700, 10_000)


def test_overrides_without_a_tier_limit_what_they_name() -> None:
    assert effective(None, None, Measures(tpd=50)) == RateLimits("", 0, 0, 50)


def test_a_tier_name_that_is_not_stored_limits_nothing_and_is_not_reported() -> None:
    # e.g. AUTH_DEFAULT_RATE_TIER naming a tier an admin never created
    assert effective("gold", None, NOT_SET) == NO_RATE_LIMITS


def test_admin_answers_show_not_limited_as_null() -> None:
    assert as_measures(RateLimits("pro", 1000, 0, 100_000)) == Measures(1000, None, 100_000)


def test_principal_defaults_keep_existing_constructor_calls_unlimited() -> None:
    p = Principal(1, "org-1", "user-1", "user", 0, ("read",), "tg_x", 0, 0)
    assert p.key_limits == NO_RATE_LIMITS and p.org_limits == NO_RATE_LIMITS


def test_limits_survive_the_proto_round_trip() -> None:
    p = Principal(
        7,
        "org-7",
        "user-7",
        "user",
        0,
        ("read", "write"),
        "tg_x",
        0,
        0,
        key_limits=RateLimits("pro", 1000, 0, 5),
        org_limits=RateLimits("", 0, 60_000, 0),
    )
    wire = auth_pb2.Principal.FromString(principal_to_proto(p).SerializeToString())
    assert wire.key_limits.tier == "pro" and wire.key_limits.rpm == 1000 and wire.key_limits.tpd == 5
    assert Principal.from_proto(wire) == p
    # an older auth (no fields 13/14) means not limited
    assert Principal.from_proto(auth_pb2.Principal(key_id=1)).key_limits == NO_RATE_LIMITS


def test_an_access_token_carries_its_organisations_limits_and_no_key_limits() -> None:
    claims = AccessClaims("usr_a", "org_a", "ses_1", "tok_1", expires_at_unix=2_000_000_000)
    org_limits = RateLimits("free", 100, 0, 10_000)
    subject = SessionSubject("ses_1", "usr_a", "org_a", None, "user", None, "member", org_limits)
    principal = resolve_token(claims, subject).principal
    assert principal is not None
    assert principal.org_limits == org_limits and principal.key_limits == NO_RATE_LIMITS
