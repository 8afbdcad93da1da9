"""`GET /v1/credits`: the caller's organisation balance, as the hot path sees it (cached)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from tollgate.billing.deps import current_principal, get_holds
from tollgate.billing.holds.service import HoldService
from tollgate.billing.wallets.schemas import CreditsResponse
from tollgate.common.auth_client import Principal
from tollgate.common.money import micros_to_credits

router = APIRouter()


@router.get("/v1/credits", response_model=CreditsResponse)
async def credits(
    principal: Principal = Depends(current_principal), holds: HoldService = Depends(get_holds)
) -> CreditsResponse:
    wallet = await holds.balance(principal.org_id)
    return CreditsResponse(
        org_id=principal.org_id,
        balance=micros_to_credits(wallet.balance_micros),
        balance_micros=wallet.balance_micros,
        held_micros=wallet.held_micros,
        available_micros=wallet.available_micros,
    )
