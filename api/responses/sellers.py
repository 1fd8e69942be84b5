"""Sites, pools, capacity and contracts."""

from __future__ import annotations

from typing import Literal

from api.responses.common import GreenGrade, Liquidity, Region, ResponseModel, Side

__all__ = [
    "CapacityOut",
    "ContractOut",
    "PoolOut",
    "SettlementOut",
    "SiteOut",
]


class SiteOut(ResponseModel):
    id: int
    name: str
    region: Region
    location: str | None
    pue: str
    green_share: str
    emission_factor: str
    emission_factor_version: str
    green_grade: GreenGrade
    carbon_kg_per_kwh: str


class PoolOut(ResponseModel):
    id: int
    site_id: int
    hardware_id: str
    count: int


class CapacityOut(ResponseModel):
    """PF·h of the caller's pools in one delivery window."""

    instrument: str
    total: str
    held: str
    committed: str
    available: str


class SettlementOut(ResponseModel):
    seller_paid: str
    fees: str
    refunded: str
    penalty: str


class ContractOut(ResponseModel):
    """A contract seen by one of its sides: ``escrow`` is the buyer's, ``collateral`` the
    seller's (null for the other side); ``settlement`` is null until settled."""

    id: int
    trade_id: int
    instrument: str
    side: Side
    quantity: str
    price: str
    notional: str
    fee_bps: int
    liquidity: Liquidity
    state: Literal["open", "delivering", "settled"]
    delivered_quantity: str
    delivered_device_seconds: int
    delivery_start: str
    delivery_end: str
    escrow: str | None
    collateral: str | None
    created_at: str
    settled_at: str | None
    settlement: SettlementOut | None
