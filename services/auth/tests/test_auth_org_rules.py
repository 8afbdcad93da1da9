"""The membership rules as pure functions: who may add, promote, demote and remove whom."""

from __future__ import annotations

import pytest

from tollgate.auth.grants.service import ModelGrants, widens
from tollgate.auth.orgs import rules
from tollgate.auth.orgs.errors import (
    LastOwner,
    NotAMember,
    OrgAdminRequired,
    OwnerRequired,
    PersonalOrganization,
)
from tollgate.common.errors import TollgateError


def refusal(call: object) -> str | None:
    """The refusal's code, or None when the rules allow the action."""
    assert callable(call)
    try:
        call()
    except TollgateError as exc:
        return exc.code
    return None


def test_members_see_managers_manage() -> None:
    assert rules.ensure_member("member") == "member"
    with pytest.raises(NotAMember):
        rules.ensure_member(None)
    with pytest.raises(OrgAdminRequired):
        rules.ensure_manager("member")
    assert rules.ensure_manager("admin") == "admin" and rules.ensure_manager("owner") == "owner"


@pytest.mark.parametrize(
    ("actor", "new_role", "expected"),
    [
        ("owner", "owner", None),
        ("owner", "admin", None),
        ("owner", "member", None),
        ("admin", "admin", None),
        ("admin", "member", None),
        ("admin", "owner", "owner_required"),
        ("member", "member", "org_admin_required"),
        (None, "member", "not_a_member"),
    ],
)
def test_granting_a_role(actor: str | None, new_role: str, expected: str | None) -> None:
    assert refusal(lambda: rules.ensure_may_grant(actor, new_role)) == expected


@pytest.mark.parametrize(
    ("actor", "target", "new_role", "owners", "expected"),
    [
        ("owner", "member", "admin", 1, None),
        ("owner", "admin", "owner", 1, None),
        ("owner", "owner", "admin", 2, None),  # another owner remains
        ("owner", "owner", "member", 1, "last_owner"),  # the last owner demoting themselves
        ("owner", "owner", "owner", 1, None),  # no change
        ("admin", "member", "admin", 1, None),
        ("admin", "admin", "member", 1, None),
        ("admin", "member", "owner", 1, "owner_required"),
        ("admin", "owner", "member", 2, "owner_required"),
        ("member", "member", "admin", 1, "org_admin_required"),
        (None, "member", "admin", 1, "not_a_member"),
    ],
)
def test_changing_a_role(
    actor: str | None, target: str, new_role: str, owners: int, expected: str | None
) -> None:
    assert refusal(lambda: rules.ensure_may_change_role(actor, target, new_role, owners)) == expected


@pytest.mark.parametrize(
    ("actor", "is_self", "target", "owners", "expected"),
    [
        ("member", True, "member", 1, None),  # leaving
        ("admin", True, "admin", 1, None),
        ("owner", True, "owner", 2, None),
        ("owner", True, "owner", 1, "last_owner"),  # the last owner cannot leave
        ("owner", False, "owner", 2, None),
        ("owner", False, "member", 1, None),
        ("admin", False, "member", 1, None),
        ("admin", False, "admin", 1, None),
        ("admin", False, "owner", 2, "owner_required"),
        ("member", False, "member", 1, "org_admin_required"),
        (None, False, "member", 1, "not_a_member"),
    ],
)
def test_removing_a_member(
    actor: str | None, is_self: bool, target: str, owners: int, expected: str | None
) -> None:
    target_id = "usr_actor" if is_self else "usr_target"
    call = lambda: rules.ensure_may_remove(actor, "usr_actor", target_id, target, owners)  # noqa: E731
    assert refusal(call) == expected


def test_personal_organisations_take_no_members() -> None:
    with pytest.raises(PersonalOrganization):
        rules.ensure_open(True)
    rules.ensure_open(False)


def test_refusal_classes_carry_their_status() -> None:
    assert (LastOwner.status_code, OwnerRequired.status_code, PersonalOrganization.status_code) == (
        409,
        403,
        409,
    )


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, frozenset({"a"}), False),  # every model -> one: narrower
        (None, None, False),
        (frozenset({"a"}), None, True),  # the last grant removed: every model again
        (frozenset({"a"}), frozenset({"a", "b"}), True),
        (frozenset({"a", "b"}), frozenset({"a"}), False),
        (frozenset(), frozenset({"a"}), True),  # deny-by-default key gaining a model
    ],
)
def test_widening_a_keys_models(
    before: frozenset[str] | None, after: frozenset[str] | None, expected: bool
) -> None:
    assert widens(before, after) is expected


def test_effective_models_follow_the_ungranted_setting() -> None:
    assert ModelGrants(ungranted_means_all=True).effective([], []) is None
    assert ModelGrants(ungranted_means_all=False).effective([], []) == frozenset()
    assert ModelGrants().effective(["a"], ["b"]) == frozenset({"a", "b"})
