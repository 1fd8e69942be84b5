"""Shared set-up for the core tests: a small exchange with one tier, a buyer and a seller.

Numbers are chosen to be easy to check by hand: the reference price is 20 CNY per PF·h
(``200_000`` price units), an order of 50 PF·h is ``50_000_000`` quantity units, and its
notional is ``200_000 x 50_000_000 = 10**13`` money units = 1,000 CNY.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange.core import ExchangeCore, Rejected
from exchange.genesis import genesis_operations
from exchange.operations import (
    AddPool,
    AdvanceClock,
    CreateAccount,
    CreateGpuClass,
    CreateTier,
    Deposit,
    Operation,
    PlaceOrder,
    RegisterSite,
)
from exchange.orders import Side
from exchange.products import HOUR_US

#: An hour-aligned exchange start time (microseconds).
START = (1_795_000_000 * 10**6) // HOUR_US * HOUR_US
#: Money units per currency unit (CNY): price units 1e-4 x quantity units 1e-6.
CNY = 10**10
H100 = "nvidia-h100-sxm5-80gb"
A100 = "nvidia-a100-sxm4-80gb"
H800 = "nvidia-h800-sxm5-80gb"

TIER_DEFAULTS = {
    "precision": "fp16",
    "gpu_class": "H",
    "min_green_grade": None,
    "tick": 100,
    "lot": 1000,
    "min_quantity": 1000,
    "max_quantity": 10**9,
    "price_band_bps": 2000,
    "maker_fee_bps": 5,
    "taker_fee_bps": 10,
    "shortfall_penalty_bps": 2000,
    "reference_price": 200_000,
}


def create_tier(code: str = "FP16-H", **overrides: object) -> CreateTier:
    fields = dict(TIER_DEFAULTS)
    fields.update(overrides)
    return CreateTier(code=code, **fields)  # type: ignore[arg-type]


@dataclass
class Market:
    """A core with one tier, a buyer and a seller with one H100 pool; ops are recorded."""

    core: ExchangeCore
    buyer: int
    seller: int
    site: int
    pool: int
    symbol: str
    ops: list[Operation] = field(default_factory=list)

    def apply(self, op: Operation) -> object:
        result = self.core.apply(op)
        self.ops.append(op)
        return result

    def reject(self, op: Operation) -> str:
        """Apply ``op``, expect a refusal and that nothing changed; return the code."""
        return self.rejected(op).code

    def rejected(self, op: Operation) -> Rejected:
        """Apply ``op``, expect a refusal and that nothing changed; return it."""
        before = self.core.state_hash()
        balances = {a: self.core.balances(a) for a in self.core.accounts}
        try:
            self.core.apply(op)
        except Rejected as exc:
            assert self.core.state_hash() == before
            assert {a: self.core.balances(a) for a in self.core.accounts} == balances
            self.core.check()
            return exc
        raise AssertionError(f"{op} was accepted")

    def bal(self, account: int) -> dict[str, int]:
        return self.core.balances(account)

    def fees(self) -> int:
        from exchange.ledger import EXCHANGE, AccountKind

        return self.core.ledger.balance(EXCHANGE, AccountKind.FEES)

    def buy(self, quantity: int, price: int | None, **kw: object) -> object:
        return self.apply(
            PlaceOrder(self.buyer, kw.pop("symbol", self.symbol), Side.BUY, quantity, price, **kw)  # type: ignore[arg-type]
        )

    def sell(self, quantity: int, price: int | None, **kw: object) -> object:
        return self.apply(
            PlaceOrder(self.seller, kw.pop("symbol", self.symbol), Side.SELL, quantity, price, **kw)  # type: ignore[arg-type]
        )

    @property
    def window(self) -> tuple[int, int]:
        inst = self.core.instruments[self.symbol]  # type: ignore[index]
        return inst.instrument.window.start, inst.instrument.window.end

    def advance(self, to: int) -> None:
        self.apply(AdvanceClock(to))

    def to_delivery(self) -> None:
        self.advance(self.window[0])

    def to_settlement(self) -> None:
        self.advance(self.window[1] + self.core.grace_us)


def make_market(
    *,
    buyer_cash: int = 10_000 * CNY,
    seller_cash: int = 10_000 * CNY,
    pool_count: int = 100,
    hardware: str = H100,
    window_index: int = 1,
    **tier: object,
) -> Market:
    """The smoke example: one tier, a funded buyer and seller, one pool. ``ops`` holds
    every operation applied, the exchange's genesis first, so that it replays."""
    core = ExchangeCore()
    ops: list[Operation] = []

    def do(op: Operation) -> object:
        ops.append(op)
        return core.apply(op)

    for op in genesis_operations(START):
        do(op)

    buyer = do(CreateAccount("buyer", "trader")).id  # type: ignore[attr-defined]
    seller = do(CreateAccount("seller", "trader")).id  # type: ignore[attr-defined]
    if buyer_cash:
        do(Deposit(buyer, buyer_cash))
    if seller_cash:
        do(Deposit(seller, seller_cash))
    do(CreateGpuClass("H", "Hopper-class", "fp16", "700"))
    do(create_tier(**tier))
    site = do(RegisterSite(seller, "sh", "east", "1.25", "0")).id  # type: ignore[attr-defined]
    pool = do(AddPool(seller, site, hardware, pool_count)).id  # type: ignore[attr-defined]
    symbols = sorted(core.instruments, key=lambda s: core.instruments[s].instrument.window.start)
    return Market(core, buyer, seller, site, pool, symbols[window_index], ops)
