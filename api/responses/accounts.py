"""Accounts, balances and the ledger."""

from __future__ import annotations

from typing import Literal

from api.responses.common import ResponseModel, Role

__all__ = [
    "AccountCreatedOut",
    "AccountOut",
    "ApiKeyCreatedOut",
    "ApiKeyOut",
    "LedgerEntryOut",
    "LedgerSideOut",
    "TransferOut",
]


class AccountCreatedOut(ResponseModel):
    """The API key is shown once: a replay of the request (same Idempotency-Key) answers
    null in its place."""

    id: int
    name: str
    role: Role
    api_key: str | None


class ApiKeyOut(ResponseModel):
    """An API key as the exchange keeps it: its id, its public prefix (at most 8
    characters) and where it came from; never the key."""

    id: int
    account_id: int
    prefix: str
    origin: Literal["generated", "operator", "legacy"]
    created_at: str
    revoked_at: str | None


class ApiKeyCreatedOut(ApiKeyOut):
    """A new key: ``api_key`` is shown once (a replay of the request with the same
    Idempotency-Key answers null in its place)."""

    api_key: str | None


class AccountOut(ResponseModel):
    id: int
    name: str
    role: Role
    currency: str
    available: str
    held: str
    escrow: str
    collateral: str


class LedgerSideOut(ResponseModel):
    """One side of a ledger transfer: the owning account (0 is the exchange) and which of
    its balances moved."""

    owner: int
    account: Literal["available", "held", "escrow", "collateral", "fees", "external"]


class TransferOut(ResponseModel):
    id: int
    time: str
    debit: LedgerSideOut
    credit: LedgerSideOut
    amount: str
    code: Literal[
        "deposit",
        "withdrawal",
        "hold",
        "release",
        "capture",
        "payment",
        "fee",
        "refund",
        "penalty",
        "collateral_release",
    ]
    ref: str


class LedgerEntryOut(TransferOut):
    """A transfer seen from one account: ``net`` is what it changed in that account's
    balances taken together."""

    net: str
