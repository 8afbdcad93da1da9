"""The rules for groups. Gets the session per call; never commits (the request owns the transaction)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.groups.models import Group
from tollgate.auth.groups.repository import GroupRepository
from tollgate.auth.groups.schemas import ListGroupsQuery, SaveGroupRequest
from tollgate.common.errors import NotFound, TollgateError


class GroupNotFound(NotFound):
    code = "group_not_found"


class GroupNameTaken(TollgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "group_name_taken"


class GroupInUse(TollgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "group_in_use"


class GroupService:
    async def save(self, session: AsyncSession, req: SaveGroupRequest) -> Group:
        repo = GroupRepository(session)
        if req.id is not None:
            group = await repo.get(req.id, for_update=True)
            if group is None:
                raise GroupNotFound(f"No group with id {req.id}.", param="id")
        else:
            # Register-or-update by name, like /admin/model/save: re-running a save is harmless.
            group = await repo.get_by_name(req.name, for_update=True) or Group(name=req.name)
        group.name = req.name
        if req.description is not None:
            group.description = req.description
        try:
            # A savepoint: a name taken concurrently (or by another group) must not spoil the request.
            async with session.begin_nested():
                return await repo.add(group)
        except IntegrityError:
            raise GroupNameTaken(f"A group named {req.name!r} already exists.", param="name") from None

    async def delete(self, session: AsyncSession, group_id: int) -> None:
        """Refused while active keys are in the group: removing it would silently widen (or
        narrow) which models those keys may call. Users only remember a group for display and
        for new keys, so they are detached."""
        repo = GroupRepository(session)
        group = await repo.get(group_id, for_update=True)
        if group is None:
            raise GroupNotFound(f"No group with id {group_id}.", param="id")
        in_use = await repo.active_key_count(group_id)
        if in_use:
            raise GroupInUse(
                f"Group {group_id} still has {in_use} active API key(s); move or delete them first.",
                param="id",
            )
        await repo.detach_users(group_id)
        await repo.delete(group)

    async def search(self, session: AsyncSession, query: ListGroupsQuery) -> tuple[list[Group], int]:
        return await GroupRepository(session).page(query.q, limit=query.limit, offset=query.offset)

    async def require(self, session: AsyncSession, group_id: int) -> Group:
        group = await GroupRepository(session).get(group_id)
        if group is None:
            raise GroupNotFound(f"No group with id {group_id}.", param="group_id")
        return group
