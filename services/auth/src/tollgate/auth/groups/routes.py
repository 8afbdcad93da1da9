"""Admin groups (the Bedrock-style gateway): thin handlers; the rules are in GroupService.

Groups are platform-wide (the Bedrock-style gateway has no organisations in them, and a group's model
grants bind every key in it): organisations' owners and admins may list them, only platform admins
change them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tollgate.auth.audit.deps import AdminAudit
from tollgate.auth.groups.schemas import (
    DeletedGroup,
    DeleteGroupRequest,
    GroupInfo,
    GroupPage,
    ListGroupsQuery,
    SaveGroupRequest,
)
from tollgate.auth.groups.service import GroupService
from tollgate.auth.web import Admin, Tx
from tollgate.common.auth_client import DELETE

router = APIRouter(prefix="/admin/group", tags=["groups"])


@router.get("/list", response_model=GroupPage)
async def list_groups(query: Annotated[ListGroupsQuery, Query()], tx: Tx, _admin: Admin) -> GroupPage:
    rows, total = await GroupService().search(tx.session, query)
    return GroupPage(
        data=[GroupInfo.build(g) for g in rows], total=total, limit=query.limit, offset=query.offset
    )


@router.post("/save", response_model=GroupInfo)
async def save_group(body: SaveGroupRequest, tx: Tx, admin: Admin, audit: AdminAudit) -> GroupInfo:
    admin.require_platform("Changing a group")
    group = await GroupService().save(tx.session, body)
    await audit("group.save", "group", group.id, {"name": group.name})
    return GroupInfo.build(group)


@router.post("/delete", response_model=DeletedGroup)
async def delete_group(body: DeleteGroupRequest, tx: Tx, admin: Admin, audit: AdminAudit) -> DeletedGroup:
    admin.require_platform("Deleting a group")
    admin.require(DELETE)
    await GroupService().delete(tx.session, body.id)
    await audit("group.delete", "group", body.id)
    return DeletedGroup(id=body.id)
