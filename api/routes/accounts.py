"""Accounts, deposits, withdrawals, balances and the ledger."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header
from sqlalchemy import or_, select

from api.db.tables import TransferRow
from api.deps import (
    AdminAccount,
    Context,
    ContextDep,
    CurrentAccount,
    PageDep,
    paginate,
)
from api.errors import ApiError, FastJSONResponse
from api.keys import generate_key, generated_digest, key_prefix
from api.responses import (
    BODY,
    AccountCreatedOut,
    AccountOut,
    ApiKeyCreatedOut,
    ApiKeyOut,
    LedgerEntryOut,
    Page,
    TransferOut,
    answers,
)
from api.routes.common import submit_change, submit_idempotent
from api.schemas import AMOUNT, AccountIn, AmountIn, Id, IdempotencyKey
from api.views import account_view, key_view, transfer_view
from exchange.core import AccountRecord
from exchange.ids import AccountId
from exchange.keys import ApiKeyRecord
from exchange.ledger import AccountKind, Transfer, TransferCode
from exchange.operations import CreateAccount, Deposit, IssueApiKey, RevokeApiKey, Withdraw
from exchange.refusals import Refusal
from exchange.units import Money, parse_money

router = APIRouter(prefix="/v1", tags=["accounts"])
IdemKey = Annotated[IdempotencyKey | None, Header(alias="Idempotency-Key")]


@router.post(
    "/admin/accounts",
    status_code=201,
    response_model=AccountCreatedOut,
    **answers(*BODY, 429, 503, key="admin"),
)
async def create_account(
    body: AccountIn, ctx: ContextDep, admin: AdminAccount, idempotency_key: IdemKey = None
) -> FastJSONResponse:
    """Create a trader or admin account; its API key is in this response only."""
    key = generate_key()
    op = CreateAccount(body.name, body.role, key_prefix(key), generated_digest(key))

    def render(record: AccountRecord) -> dict[str, Any]:
        return {"id": record.id, "name": record.name, "role": record.role, "api_key": key}

    return await submit_idempotent(
        ctx, admin, idempotency_key, body.model_dump(), op, render, redact=("api_key",)
    )


@router.post(
    "/admin/accounts/{account_id}/keys",
    status_code=201,
    response_model=ApiKeyCreatedOut,
    **answers(404, 422, 429, 503, key="admin"),
)
async def issue_key(
    account_id: Id, ctx: ContextDep, admin: AdminAccount, idempotency_key: IdemKey = None
) -> FastJSONResponse:
    """Another API key for an account, shown in this response only. To rotate a key,
    issue the new one, move the clients to it, then revoke the old one."""
    key = generate_key()
    op = IssueApiKey(AccountId(account_id), key_prefix(key), generated_digest(key))

    def render(record: ApiKeyRecord) -> dict[str, Any]:
        return {**key_view(record), "api_key": key}

    payload = {"account": account_id}
    return await submit_idempotent(
        ctx, admin, idempotency_key, payload, op, render, redact=("api_key",)
    )


@router.get(
    "/admin/accounts/{account_id}/keys",
    response_model=Page[ApiKeyOut],
    **answers(404, 422, key="admin"),
)
async def list_keys(
    account_id: Id, ctx: ContextDep, _: AdminAccount, page: PageDep
) -> dict[str, Any]:
    """An account's API keys, active and revoked, oldest first (never the keys)."""
    core = ctx.service.core
    core.query.account(account_id)
    return paginate(core.query.api_keys().of_account(account_id), page, lambda r: r.id, key_view)


@router.delete(
    "/admin/keys/{key_id}", response_model=ApiKeyOut, **answers(404, 422, 429, 503, key="admin")
)
async def revoke_key(key_id: Id, ctx: ContextDep, admin: AdminAccount) -> dict[str, Any]:
    """Revoke an API key: requests with it are refused (401) from now on."""
    if key_id not in ctx.service.core.query.api_keys().records:
        raise ApiError(Refusal.API_KEY_NOT_FOUND, key_id=key_id)
    result: dict[str, Any] = await submit_change(ctx, admin, RevokeApiKey(key_id), key_view)
    return result


def _transfer(t: Transfer) -> dict[str, Any]:
    return transfer_view(t)


async def _money_movement(
    op: type[Deposit] | type[Withdraw],
    account_id: int,
    body: AmountIn,
    ctx: Context,
    admin: AccountRecord,
    idempotency_key: str | None,
) -> FastJSONResponse:
    amount = Money(AMOUNT.parse(body.amount, "amount") or 0)
    return await submit_idempotent(
        ctx,
        admin,
        idempotency_key,
        {"account": account_id, **body.model_dump()},
        op(AccountId(account_id), amount),
        _transfer,
    )


@router.post(
    "/admin/accounts/{account_id}/deposits",
    status_code=201,
    response_model=TransferOut,
    **answers(*BODY, 404, 429, 503, key="admin"),
)
async def deposit(
    account_id: Id,
    body: AmountIn,
    ctx: ContextDep,
    admin: AdminAccount,
    idempotency_key: IdemKey = None,
) -> FastJSONResponse:
    return await _money_movement(Deposit, account_id, body, ctx, admin, idempotency_key)


@router.post(
    "/admin/accounts/{account_id}/withdrawals",
    status_code=201,
    response_model=TransferOut,
    **answers(*BODY, 404, 429, 503, key="admin"),
)
async def withdraw(
    account_id: Id,
    body: AmountIn,
    ctx: ContextDep,
    admin: AdminAccount,
    idempotency_key: IdemKey = None,
) -> FastJSONResponse:
    """Withdraw from available funds; 422 ``insufficient_funds`` beyond them."""
    return await _money_movement(Withdraw, account_id, body, ctx, admin, idempotency_key)


@router.get("/account", response_model=AccountOut, **answers(422, key="key"))
async def my_account(ctx: ContextDep, account: CurrentAccount) -> dict[str, Any]:
    return account_view(ctx.service.core, account)


@router.get("/account/ledger", response_model=Page[LedgerEntryOut], **answers(422, 503, key="key"))
async def my_ledger(ctx: ContextDep, account: CurrentAccount, page: PageDep) -> dict[str, Any]:
    """The account's ledger entries, oldest first, from the durable transfer table."""
    table = TransferRow.__table__  # type: ignore[attr-defined]
    query = (
        select(table)
        .where(or_(table.c.debit_owner == account.id, table.c.credit_owner == account.id))
        .order_by(table.c.id)
        .limit(page.limit + 1)
    )
    if page.cursor is not None:
        query = query.where(table.c.id > page.cursor)

    def read() -> list[Any]:
        with ctx.service.store.engine.connect() as conn:
            return list(conn.execute(query))

    await ctx.service.flush()  # the journal is a projection: read what was acknowledged
    rows = await asyncio.get_running_loop().run_in_executor(None, read)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    data = [
        transfer_view(
            Transfer(
                r.id,
                r.ts,
                r.debit_owner,
                AccountKind(r.debit_kind),
                r.credit_owner,
                AccountKind(r.credit_kind),
                parse_money(r.amount),
                TransferCode(r.code),
                r.ref,
            ),
            viewer=account.id,
        )
        for r in rows
    ]
    return {"data": data, "next_cursor": str(rows[-1].id) if more and rows else None}
