"""Response bodies: the typed shape of every JSON answer, as documented in /openapi.json.

Each model declares exactly the fields the views (api.views and the route modules) emit,
in the same order. Unknown fields are refused (``extra="forbid"``), so a view that emits a
field its model does not declare fails instead of losing it silently, and the published
schema says ``additionalProperties: false``. Decimals are JSON strings, times ISO 8601 UTC
strings, ids integers (hardware ids are text). Every list endpoint answers a ``Page`` of
its item model; every refusal is an ``ErrorOut``.

One module per route module of api.routes; import the models from here.
"""

from __future__ import annotations

from api.responses.accounts import (
    AccountCreatedOut,
    AccountOut,
    ApiKeyCreatedOut,
    ApiKeyOut,
    LedgerEntryOut,
    LedgerSideOut,
    TransferOut,
)
from api.responses.catalog import (
    GpuClassOut,
    HardwareOut,
    InstrumentDetailOut,
    InstrumentOut,
    TierOut,
)
from api.responses.common import (
    BODY,
    REFUSALS,
    SECURITY,
    ErrorDetail,
    ErrorOut,
    Page,
    ResponseModel,
    answers,
)
from api.responses.market import (
    BookOut,
    CandleOut,
    CandlesOut,
    CarbonConversionOut,
    ConversionOut,
    CurvePointOut,
    ForwardCurveOut,
    PriceOut,
    QuoteOut,
    TradeOut,
)
from api.responses.operation import (
    ClockOut,
    HealthOut,
)
from api.responses.orders import (
    AccountFillOut,
    BatchOut,
    CancelAllOut,
    FillOut,
    OrderOut,
)
from api.responses.sellers import (
    CapacityOut,
    ContractOut,
    PoolOut,
    SettlementOut,
    SiteOut,
)

__all__ = [
    "BODY",
    "REFUSALS",
    "SECURITY",
    "AccountCreatedOut",
    "AccountFillOut",
    "AccountOut",
    "ApiKeyCreatedOut",
    "ApiKeyOut",
    "BatchOut",
    "BookOut",
    "CancelAllOut",
    "CandleOut",
    "CandlesOut",
    "CapacityOut",
    "CarbonConversionOut",
    "ClockOut",
    "ContractOut",
    "ConversionOut",
    "CurvePointOut",
    "ErrorDetail",
    "ErrorOut",
    "FillOut",
    "ForwardCurveOut",
    "GpuClassOut",
    "HardwareOut",
    "HealthOut",
    "InstrumentDetailOut",
    "InstrumentOut",
    "LedgerEntryOut",
    "LedgerSideOut",
    "OrderOut",
    "Page",
    "PoolOut",
    "PriceOut",
    "QuoteOut",
    "ResponseModel",
    "SettlementOut",
    "SiteOut",
    "TierOut",
    "TradeOut",
    "TransferOut",
    "answers",
]
