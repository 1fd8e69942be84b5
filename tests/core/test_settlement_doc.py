"""docs/settlement.md's worked example, replayed through ExchangeCore number by number.

The two tables of the example (balances after each step, settlement legs) are parsed
from the document and compared with the core; every other amount in the example's prose
(``... CNY``) and every quantity (``... PF·h``) must be one the replay produced. Change
the code or the document alone and this test fails.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from exchange.core import OrderState
from exchange.operations import CancelOrder, ReportDelivery
from exchange.risk import fee
from exchange.units import format_money, parse_money
from tests.core.helpers import CNY, make_market

DOC = Path(__file__).resolve().parents[2] / "docs" / "settlement.md"
COLUMNS = [
    ("buyer", "available"),
    ("buyer", "held"),
    ("buyer", "escrow"),
    ("seller", "available"),
    ("seller", "held"),
    ("seller", "collateral"),
    ("exchange", "fees"),
]


def table(text: str, marker: str) -> list[list[str]]:
    """Body rows of the markdown table that follows ``<!-- marker -->``."""
    lines = text.split(f"<!-- {marker} -->", 1)[1].strip().splitlines()
    rows = []
    for line in lines[2:]:  # skip the header and the alignment row
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def money(cell: str) -> int:
    return parse_money(cell.replace(",", ""))


def replay_example() -> tuple[list[dict[tuple[str, str], int]], dict[str, int], set[int]]:
    """Run the example; return balances after each step, the legs, and every amount seen."""
    m = make_market(buyer_cash=2_000 * CNY, seller_cash=500 * CNY)
    steps: list[dict[tuple[str, str], int]] = []

    def snap() -> None:
        row = {("exchange", "fees"): m.fees()}
        for who, account in (("buyer", m.buyer), ("seller", m.seller)):
            for kind, value in m.bal(account).items():
                row[(who, kind)] = value
        # the two accounts the document leaves out stay empty throughout
        assert row.pop(("buyer", "collateral")) == 0 and row.pop(("seller", "escrow")) == 0
        steps.append(row)
        m.core.check()

    snap()  # 1. deposits
    m.sell(40_000_000, 195_000)
    snap()  # 2. seller offers 40 PF·h at 19.50
    buy = m.buy(50_000_000, 200_000)
    assert isinstance(buy, OrderState) and buy.filled == 40_000_000
    snap()  # 3. buyer bids 50 at 20.00, 40 trade at 19.50
    m.apply(CancelOrder(m.buyer, buy.id))
    snap()  # 4. buyer cancels the rest
    (contract,) = m.core.contracts.values()
    m.to_delivery()
    m.apply(ReportDelivery(m.seller, contract.id, m.pool, 108_000))
    snap()  # 5. delivery reported
    m.to_settlement()
    snap()  # 6. settlement

    d, q, p = contract.delivered_quantity, contract.quantity, contract.price
    assert (d, q, p) == (29_682_000, 40_000_000, 195_000)
    buyer_fee = fee(p * d, contract.buyer_fee_bps)
    seller_fee = fee(p * d, contract.seller_fee_bps)
    legs = {
        "seller payment": contract.seller_paid,
        "buyer fee": buyer_fee,
        "seller fee": seller_fee,
        "refund": contract.refunded,
        "penalty": contract.penalty_paid,
        "collateral return": contract.collateral - contract.penalty_paid,
    }
    assert buyer_fee + seller_fee == contract.fees
    hold = 50_000_000 * 200_000 + fee(50_000_000 * 200_000, 10)
    rest_hold = steps[2][("buyer", "held")]
    seen = {v for row in steps for v in row.values()} | set(legs.values())
    seen |= {
        hold,  # the buy order's hold
        hold - contract.escrow - rest_hold,  # released at once (price improvement)
        p * q,  # the contract's notional
        fee(p * q, contract.buyer_fee_bps),  # the taker fee escrowed
        contract.escrow,
        contract.collateral,
        p * d,  # delivered notional
        p * (q - d),  # undelivered notional
        fee(p * q, contract.buyer_fee_bps) - buyer_fee,  # unused fee, refunded
        p * d + buyer_fee - contract.penalty_paid,  # the buyer's net cost
        p * d - seller_fee - contract.penalty_paid,  # the seller's net gain
        m.core.ledger.deposited,
        50_000_000 * 200_000,  # the bid's notional
    }
    return steps, legs, seen


def test_balance_table_matches_the_core() -> None:
    steps, _, _ = replay_example()
    rows = table(DOC.read_text(encoding="utf-8"), "worked-example:balances")
    assert len(rows) == len(steps), "the document and the replay have different steps"
    for row, expected in zip(rows, steps, strict=True):
        assert len(row) == 1 + len(COLUMNS), row
        got = {col: money(cell) for col, cell in zip(COLUMNS, row[1:], strict=True)}
        assert got == expected, f"step {row[0]!r}: document {got} != core {expected}"


def test_legs_table_matches_the_core() -> None:
    _, legs, _ = replay_example()
    rows = table(DOC.read_text(encoding="utf-8"), "worked-example:legs")
    assert {row[0]: money(row[3]) for row in rows} == legs
    for row in rows:
        assert row[3] == format_money(legs[row[0]])  # written as the core formats it


def test_every_amount_and_quantity_in_the_example_is_what_the_core_did() -> None:
    _, _, seen = replay_example()
    text = DOC.read_text(encoding="utf-8").split("## 8. Worked example", 1)[1]
    amounts = re.findall(r"([\d,]+(?:\.\d+)?) CNY(?!/)", text)
    assert len(amounts) >= 25
    unknown = [a for a in amounts if money(a) not in seen]
    assert not unknown, f"amounts in the document the replay never produced: {unknown}"
    quantities = {Decimal(x) for x in re.findall(r"([\d.]+) PF·h", text)}
    assert quantities == {Decimal(40), Decimal(50), Decimal(10), Decimal("29.682"),
                          Decimal("10.318")}  # fmt: skip
    prices = {Decimal(x) for x in re.findall(r"([\d.]+) CNY/PF·h", text)}
    assert prices == {Decimal("19.50"), Decimal("20.00")}


def test_rounding_example_in_the_document() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "a fill of notional 9999 pays a fee of 9" in text
    assert "pay 19" in text
    assert fee(9_999, 10) == 9
    assert 2 * fee(9_999, 10) == 18 < fee(19_998, 10) == 19
