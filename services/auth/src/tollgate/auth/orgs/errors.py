"""The refusals of the organisation routes, one class each (rendered in SloughGPT's envelope)."""

from __future__ import annotations

from tollgate.common.errors import Forbidden, InvalidRequest, NotFound, TollgateError


class Conflict(TollgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class NotAMember(Forbidden):
    """One answer whether the organisation exists or not: ids are not probed through this."""

    code = "not_a_member"


class OrgAdminRequired(Forbidden):
    code = "org_admin_required"


class OwnerRequired(Forbidden):
    code = "owner_required"


class LastOwner(Conflict):
    code = "last_owner"


class PersonalOrganization(Conflict):
    code = "personal_organization"


class AlreadyMember(Conflict):
    code = "already_member"


class UserNotFound(NotFound):
    code = "user_not_found"


class MemberNotFound(NotFound):
    code = "member_not_found"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"


class InvitationExpired(InvalidRequest):
    code = "invitation_expired"


class InvitationForSomeoneElse(Forbidden):
    code = "invitation_email_mismatch"
