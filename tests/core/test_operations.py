"""Operations carry typed values (exchange.units, exchange.ids NewTypes) and keep the wire
format of plain integers and strings: a log written before the types decodes to the same
operations and encodes back to the same bytes."""

from __future__ import annotations

import typing

import msgspec
import pytest

from exchange import operations
from exchange.ids import AccountId, OrderId, Symbol, Timestamp
from exchange.operations import (
    AmendOrder,
    CancelAll,
    Deposit,
    PlaceOrder,
    decode_operation,
    encode_operation,
)
from exchange.orders import Side
from exchange.units import Money, Price, Quantity

#: Operations as the log held them while their fields were annotated plain ``int`` and
#: ``str`` (encoded by that version of exchange/operations.py).
OLD_LOG = [
    b'{"type":"CreateAccount","name":"alice","role":"trader","key_prefix":null,"key_digest":null,"key_origin":"generated"}',
    b'{"type":"IssueApiKey","account_id":3,"prefix":"sk_ab","digest":"sha256$00","origin":"generated"}',
    b'{"type":"RevokeApiKey","key_id":4}',
    b'{"type":"Deposit","account_id":3,"amount":1000000}',
    b'{"type":"Withdraw","account_id":3,"amount":250}',
    b'{"type":"CreateTier","code":"FP16-H","precision":"fp16","gpu_class":"H","min_green_grade":null,"tick":100,"lot":1000,"min_quantity":1000,"max_quantity":1000000000,"price_band_bps":2000,"maker_fee_bps":5,"taker_fee_bps":10,"shortfall_penalty_bps":2000,"reference_price":200000,"regions":[],"arithmetic_intensity":null,"window_hours":1,"list_ahead_hours":24,"gate_closure_minutes":60}',
    b'{"type":"UpdateTier","code":"FP16-H","status":null,"maker_fee_bps":null,"taker_fee_bps":null,"price_band_bps":null,"shortfall_penalty_bps":null,"reference_price":210000,"list_ahead_hours":null}',
    b'{"type":"RegisterSite","owner":3,"name":"sh","region":"east","pue":"1.25","green_share":"0","emission_factor":null,"location":null}',
    b'{"type":"AddPool","owner":3,"site_id":1,"hardware_id":"nvidia-h100-sxm","count":8}',
    b'{"type":"PlaceOrder","account_id":3,"symbol":"FP16-H-20261118T12","side":"buy","quantity":50000000,"price":200000,"order_type":"limit","time_in_force":"gtd","expire_time":1795000000000000,"post_only":false,"stp":"cancel_newest","client_order_id":"c-1"}',
    b'{"type":"PlaceOrder","account_id":3,"symbol":"FP16-H-20261118T12","side":"sell","quantity":1000,"price":null,"order_type":"market","time_in_force":"ioc","expire_time":null,"post_only":false,"stp":"cancel_newest","client_order_id":null}',
    b'{"type":"CancelOrder","account_id":3,"order_id":7}',
    b'{"type":"CancelAll","account_id":3,"symbol":"FP16-H-20261118T12"}',
    b'{"type":"CancelAll","account_id":3,"symbol":null}',
    b'{"type":"AmendOrder","account_id":3,"order_id":7,"price":201000,"quantity":null}',
    b'{"type":"ReportDelivery","account_id":4,"contract_id":2,"pool_id":1,"device_seconds":3600}',
    b'{"type":"AdvanceClock","to":1795000000000000}',
    b'{"type":"HaltInstrument","symbol":"FP16-H-20261118T12"}',
    b'{"type":"ResumeInstrument","symbol":"FP16-H-20261118T12"}',
]  # fmt: skip


@pytest.mark.parametrize("row", OLD_LOG)
def test_an_old_log_row_decodes_and_encodes_to_the_same_bytes(row: bytes) -> None:
    op = decode_operation(row)
    assert encode_operation(op) == row
    assert decode_operation(encode_operation(op)) == op


def test_typed_values_encode_as_their_base() -> None:
    op = PlaceOrder(
        AccountId(3),
        Symbol("FP16-H-20261118T12"),
        Side.BUY,
        Quantity(1000),
        Price(200_000),
        expire_time=Timestamp(5),
    )
    assert encode_operation(op) == encode_operation(
        PlaceOrder(3, "FP16-H-20261118T12", Side.BUY, 1000, 200_000, expire_time=5)  # type: ignore[arg-type]
    )
    assert encode_operation(AmendOrder(AccountId(3), OrderId(7), Price(201_000))) == OLD_LOG[14]
    assert encode_operation(CancelAll(AccountId(3))) == OLD_LOG[13]
    assert encode_operation(Deposit(AccountId(3), Money(1_000_000))) == OLD_LOG[3]


def test_decoding_still_checks_the_base_type() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_operation(b'{"type":"Deposit","account_id":"3","amount":1}')
    with pytest.raises(msgspec.ValidationError):
        decode_operation(b'{"type":"CancelAll","account_id":3,"symbol":7}')


#: The field of each operation that carries each typed value.
TYPED = {
    ("PlaceOrder", "account_id"): AccountId,
    ("PlaceOrder", "symbol"): Symbol,
    ("PlaceOrder", "quantity"): Quantity,
    ("PlaceOrder", "price"): Price | None,
    ("PlaceOrder", "expire_time"): Timestamp | None,
    ("AmendOrder", "order_id"): OrderId,
    ("AmendOrder", "price"): Price | None,
    ("AmendOrder", "quantity"): Quantity | None,
    ("CancelOrder", "order_id"): OrderId,
    ("CancelAll", "symbol"): Symbol | None,
    ("Deposit", "amount"): Money,
    ("Withdraw", "amount"): Money,
    ("CreateTier", "tick"): Price,
    ("CreateTier", "lot"): Quantity,
    ("CreateTier", "min_quantity"): Quantity,
    ("CreateTier", "max_quantity"): Quantity,
    ("CreateTier", "reference_price"): Price,
    ("UpdateTier", "reference_price"): Price | None,
    ("RegisterSite", "owner"): AccountId,
    ("AddPool", "owner"): AccountId,
    ("ReportDelivery", "account_id"): AccountId,
    ("AdvanceClock", "to"): Timestamp,
    ("HaltInstrument", "symbol"): Symbol,
    ("ResumeInstrument", "symbol"): Symbol,
    ("IssueApiKey", "account_id"): AccountId,
}


@pytest.mark.parametrize(("where", "annotation"), TYPED.items())
def test_fields_carry_the_typed_values(where: tuple[str, str], annotation: object) -> None:
    kind, name = where
    hints = typing.get_type_hints(getattr(operations, kind))
    assert hints[name] == annotation
