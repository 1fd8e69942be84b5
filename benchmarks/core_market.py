"""The market the writer and instruction benchmarks trade in: one market maker with a
deposit, the Hopper GPU class, the FP16-H tier and a pool of a million H100s; its orders
go to the second window listed. Only the core: importing this imports nothing of api/."""

from __future__ import annotations

from exchange.core import ExchangeCore
from exchange.genesis import new_core
from exchange.limits import CoreLimits
from exchange.operations import (
    AddPool,
    CreateAccount,
    CreateGpuClass,
    CreateTier,
    Deposit,
    RegisterSite,
)
from exchange.products import HOUR_US

__all__ = ["CNY", "H100", "START", "market", "tier"]

START = (1_795_000_000 * 10**6) // HOUR_US * HOUR_US
CNY = 10**10
H100 = "nvidia-h100-sxm5-80gb"


def tier() -> CreateTier:
    """The FP16-H tier: hourly windows, a 0.01 CNY tick, a lot of 0.001 PF·h, 20 CNY."""
    return CreateTier(
        code="FP16-H",
        precision="fp16",
        gpu_class="H",
        min_green_grade=None,
        tick=100,
        lot=1000,
        min_quantity=1000,
        max_quantity=10**12,
        price_band_bps=5000,
        maker_fee_bps=5,
        taker_fee_bps=10,
        shortfall_penalty_bps=2000,
        reference_price=200_000,
    )


def market() -> tuple[ExchangeCore, int, str]:
    core = new_core(START, limits=CoreLimits.unbounded())
    mm = core.apply(CreateAccount("market maker", "trader")).id
    core.apply(Deposit(mm, 10**9 * CNY))
    core.apply(CreateGpuClass("H", "Hopper", "fp16", "700"))
    core.apply(tier())
    site = core.apply(RegisterSite(mm, "sh", "east", "1.25", "0")).id
    core.apply(AddPool(mm, site, H100, 1_000_000))
    core.take_changes()
    symbol = sorted(core.instruments, key=lambda s: core.instruments[s].instrument.window.start)
    return core, mm, symbol[1]
