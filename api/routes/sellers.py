"""Sellers' sites, pools, capacity and delivery reports; contracts of both sides."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from api.archive import archived_contract, archived_contracts, merged
from api.deps import ContextDep, CurrentAccount, PageDep, paginate
from api.errors import ApiError, FastJSONResponse
from api.responses import BODY, CapacityOut, ContractOut, Page, PoolOut, SiteOut, answers
from api.routes.common import submit_idempotent
from api.schemas import ContractState, DeliveryIn, Id, IdempotencyKey, PoolIn, SiteIn, Symbol
from api.views import contract_view, pool_view, site_view
from exchange.core import PoolRecord, SiteRecord
from exchange.ids import AccountId
from exchange.operations import AddPool, RegisterSite, ReportDelivery
from exchange.refusals import Refusal
from exchange.settlement import Contract
from exchange.units import format_quantity

router = APIRouter(prefix="/v1", tags=["sellers"])
IdemKey = Annotated[IdempotencyKey | None, Header(alias="Idempotency-Key")]


@router.post(
    "/sites", status_code=201, response_model=SiteOut, **answers(*BODY, 429, 503, key="key")
)
async def register_site(
    body: SiteIn, ctx: ContextDep, account: CurrentAccount, idempotency_key: IdemKey = None
) -> FastJSONResponse:
    """Register a data-centre site; its emission factor defaults from the region."""
    op = RegisterSite(
        AccountId(account.id),
        body.name,
        body.region,
        body.pue,
        body.green_share,
        body.emission_factor,
        body.location,
    )

    def render(site: SiteRecord) -> dict[str, Any]:
        return site_view(site)

    return await submit_idempotent(ctx, account, idempotency_key, body.model_dump(), op, render)


@router.get("/sites", response_model=Page[SiteOut], **answers(422, key="key"))
async def list_sites(ctx: ContextDep, account: CurrentAccount, page: PageDep) -> dict[str, Any]:
    sites = ctx.service.core.query.sites_of(account.id)
    return paginate(sites, page, lambda s: s.id, site_view)


@router.get("/sites/{site_id}", response_model=SiteOut, **answers(404, 422, key="key"))
async def get_site(site_id: Id, ctx: ContextDep, account: CurrentAccount) -> dict[str, Any]:
    site = ctx.service.core.query.site(site_id)
    if site is None or site.owner != account.id:
        raise ApiError(Refusal.SITE_NOT_FOUND, site_id=site_id)
    return site_view(site)


@router.post(
    "/sites/{site_id}/pools",
    status_code=201,
    response_model=PoolOut,
    **answers(*BODY, 404, 429, 503, key="key"),
)
async def add_pool(
    site_id: Id,
    body: PoolIn,
    ctx: ContextDep,
    account: CurrentAccount,
    idempotency_key: IdemKey = None,
) -> FastJSONResponse:
    op = AddPool(AccountId(account.id), site_id, body.hardware_id, body.count)

    def render(pool: PoolRecord) -> dict[str, Any]:
        return pool_view(pool)

    payload = {"site": site_id, **body.model_dump()}
    return await submit_idempotent(ctx, account, idempotency_key, payload, op, render)


@router.get("/pools", response_model=Page[PoolOut], **answers(422, key="key"))
async def list_pools(ctx: ContextDep, account: CurrentAccount, page: PageDep) -> dict[str, Any]:
    pools = ctx.service.core.query.pools_of(account.id)
    return paginate(pools, page, lambda p: p.id, pool_view)


@router.get("/capacity", response_model=CapacityOut, **answers(404, 422, key="key"))
async def capacity(
    ctx: ContextDep, account: CurrentAccount, instrument: Annotated[Symbol, Query()]
) -> dict[str, Any]:
    """Own capacity for one window in PF·h: total, held by orders, committed, available."""
    view = ctx.service.core.query.capacity_view(account.id, instrument)
    return {"instrument": instrument, **{k: format_quantity(v) for k, v in view.items()}}


async def _own_contract(ctx: ContextDep, account_id: int, contract_id: int) -> Contract:
    """The account's contract, from the core or, once settled with its instrument, the
    archive."""
    query = ctx.service.core.query
    contract = query.contract(contract_id)
    if contract is None and query.issued("contract", contract_id):
        contract = await archived_contract(ctx.service, contract_id)
    if contract is None or account_id not in (contract.buyer, contract.seller):
        raise ApiError(Refusal.CONTRACT_NOT_FOUND, contract_id=contract_id)
    return contract


@router.get("/contracts", response_model=Page[ContractOut], **answers(422, key="key"))
async def list_contracts(
    ctx: ContextDep,
    account: CurrentAccount,
    page: PageDep,
    instrument: Annotated[Symbol | None, Query()] = None,
    state: Annotated[ContractState | None, Query()] = None,
) -> dict[str, Any]:
    core = ctx.service.core
    mine = [
        c
        for c in core.query.contracts_of(account.id)
        if (instrument is None or c.symbol == instrument)
        and (state is None or c.state.value == state)
    ]
    archived = await archived_contracts(
        ctx.service,
        account.id,
        after=page.cursor,
        limit=page.limit + 1,
        state=None if state is None else str(state),
        symbol=instrument,
    )
    return paginate(
        merged(mine, archived, _contract_id),
        page,
        _contract_id,
        lambda c: contract_view(core, c, account.id),
    )


def _contract_id(c: Contract) -> int:
    return c.id


@router.get("/contracts/{contract_id}", response_model=ContractOut, **answers(404, 422, key="key"))
async def get_contract(contract_id: Id, ctx: ContextDep, account: CurrentAccount) -> dict[str, Any]:
    contract = await _own_contract(ctx, account.id, contract_id)
    return contract_view(ctx.service.core, contract, account.id)


@router.post(
    "/contracts/{contract_id}/deliveries",
    status_code=201,
    response_model=ContractOut,
    **answers(*BODY, 404, 429, 503, key="key"),
)
async def report_delivery(
    contract_id: Id,
    body: DeliveryIn,
    ctx: ContextDep,
    account: CurrentAccount,
    idempotency_key: IdemKey = None,
) -> FastJSONResponse:
    """The seller reports device-seconds made available; metering converts them to PF·h."""
    core = ctx.service.core
    op = ReportDelivery(AccountId(account.id), contract_id, body.pool_id, body.device_seconds)

    def render(contract: Contract) -> dict[str, Any]:
        return contract_view(core, contract, account.id)

    payload = {"contract": contract_id, **body.model_dump()}
    return await submit_idempotent(ctx, account, idempotency_key, payload, op, render)
