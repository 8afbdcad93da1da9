"""Who may do what to an organisation's members: pure functions of roles and counts, no I/O.

- Any member sees the organisation and its members; owners and admins manage members.
- Only an owner makes owners, changes an owner's role or removes an owner.
- The last owner can be neither demoted nor removed (nor leave): an organisation always has one.
- A personal organisation belongs to its one user and takes no other members.
- Anyone may leave (remove themselves), the last owner excepted.
"""

from __future__ import annotations

from typing import Literal

from tollgate.auth.orgs.errors import (
    LastOwner,
    NotAMember,
    OrgAdminRequired,
    OwnerRequired,
    PersonalOrganization,
)

Role = Literal["owner", "admin", "member"]
OWNER: Role = "owner"
ADMIN: Role = "admin"
MEMBER: Role = "member"
ROLES: tuple[Role, ...] = (OWNER, ADMIN, MEMBER)
MANAGERS = frozenset({OWNER, ADMIN})


def ensure_member(role: str | None) -> str:
    if role is None:
        raise NotAMember("You are not a member of this organisation.")
    return role


def ensure_manager(role: str | None) -> str:
    role = ensure_member(role)
    if role not in MANAGERS:
        raise OrgAdminRequired("Only the organisation's owners and admins manage its members.")
    return role


def ensure_may_grant(actor_role: str | None, new_role: str) -> None:
    """Adding or inviting someone with `new_role`."""
    actor = ensure_manager(actor_role)
    if new_role == OWNER and actor != OWNER:
        raise OwnerRequired("Only an owner can make someone an owner.")


def ensure_open(personal: bool) -> None:
    if personal:
        raise PersonalOrganization(
            "A personal organisation has a single member; create a team organisation to share access."
        )


def ensure_may_change_role(actor_role: str | None, target_role: str, new_role: str, owners: int) -> None:
    actor = ensure_manager(actor_role)
    if (target_role == OWNER or new_role == OWNER) and actor != OWNER:
        raise OwnerRequired("Only an owner can make an owner or change an owner's role.")
    if target_role == OWNER and new_role != OWNER and owners <= 1:
        raise LastOwner("The last owner cannot be demoted; make someone else an owner first.")


def ensure_may_remove(
    actor_role: str | None, actor_user_id: str, target_user_id: str, target_role: str, owners: int
) -> None:
    actor = ensure_member(actor_role)
    if actor_user_id != target_user_id:  # removing someone else; leaving needs no role
        ensure_manager(actor)
        if target_role == OWNER and actor != OWNER:
            raise OwnerRequired("Only an owner can remove an owner.")
    if target_role == OWNER and owners <= 1:
        raise LastOwner("The last owner cannot leave or be removed; make someone else an owner first.")
