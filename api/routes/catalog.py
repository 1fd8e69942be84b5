"""Hardware catalog, GPU classes, tiers and instruments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from api.deps import AdminAccount, Context, ContextDep, PageDep, paginate
from api.errors import FastJSONResponse
from api.responses import (
    BODY,
    GpuClassOut,
    HardwareOut,
    InstrumentDetailOut,
    InstrumentOut,
    Page,
    TierOut,
    answers,
)
from api.routes.common import submit_change, submit_idempotent
from api.schemas import (
    BAND_PCT,
    PENALTY_PCT,
    PRICE,
    QUANTITY,
    Code,
    GpuClassIn,
    HardwareIn,
    IdempotencyKey,
    InstrumentState,
    Symbol,
    TierIn,
    TierPatch,
)
from api.views import gpu_class_view, hardware_view, instrument_view, tier_view
from exchange.core import AccountRecord, InstrumentRecord, TierRecord
from exchange.ids import Symbol as SymbolId
from exchange.operations import (
    AddHardware,
    CreateGpuClass,
    CreateTier,
    HaltInstrument,
    ResumeInstrument,
    UpdateTier,
)
from exchange.operations import FigureIn as Figure
from exchange.units import Price, Quantity
from pricing import AcceleratorModel, GpuClass

router = APIRouter(prefix="/v1", tags=["catalog"])
IdemKey = Annotated[IdempotencyKey | None, Header(alias="Idempotency-Key")]


@router.get("/hardware", response_model=Page[HardwareOut], **answers(422))
async def list_hardware(ctx: ContextDep, page: PageDep) -> dict[str, Any]:
    models = sorted(ctx.service.core.query.models().values(), key=lambda m: m.id)
    indexed = list(enumerate(models, start=1))
    return paginate(indexed, page, lambda x: x[0], lambda x: hardware_view(x[1]))


@router.post(
    "/admin/hardware",
    status_code=201,
    response_model=HardwareOut,
    **answers(*BODY, 429, 503, key="admin"),
)
async def add_hardware(
    body: HardwareIn, ctx: ContextDep, admin: AdminAccount, idempotency_key: IdemKey = None
) -> FastJSONResponse:
    """Add a model. Figures listed in ``with_sparsity`` are halved; contradictions and
    known marketing figures are refused with a stable code."""
    op = AddHardware(
        vendor=body.vendor,
        model=body.model,
        figures={
            p: Figure(
                v,
                with_sparsity=p in body.with_sparsity,
                accumulation="fp16" if p in body.fp16_accumulation else None,
            )
            for p, v in body.peak_tflops.items()
        },
        memory_gb=body.memory_gb,
        memory_bandwidth_gbs=body.memory_bandwidth_gbs,
        tdp_w=body.tdp_w,
        quality=body.quality,
        source=body.source,
        id=body.id,
        confirmed=body.confirmed,
    )

    def render(model: AcceleratorModel) -> dict[str, Any]:
        return hardware_view(model)

    return await submit_idempotent(ctx, admin, idempotency_key, body.model_dump(), op, render)


@router.get("/gpu-classes", response_model=Page[GpuClassOut], **answers(422))
async def list_gpu_classes(ctx: ContextDep, page: PageDep) -> dict[str, Any]:
    core = ctx.service.core
    rules = list(enumerate(core.query.gpu_classes(), start=1))
    return paginate(
        rules,
        page,
        lambda x: x[0],
        lambda x: gpu_class_view(x[1], core.query.class_members(x[1].code)),
    )


@router.post(
    "/admin/gpu-classes",
    status_code=201,
    response_model=GpuClassOut,
    **answers(*BODY, 404, 409, 429, 503, key="admin"),
)
async def create_gpu_class(
    body: GpuClassIn, ctx: ContextDep, admin: AdminAccount, idempotency_key: IdemKey = None
) -> FastJSONResponse:
    core = ctx.service.core

    def render(rule: GpuClass) -> dict[str, Any]:
        return gpu_class_view(rule, core.query.class_members(rule.code))

    op = CreateGpuClass(
        body.code,
        body.name,
        body.precision,
        body.min_dense_tflops,
        body.min_memory_gb,
        body.min_memory_bandwidth_gbs,
        body.vendors,
        body.models,
    )
    return await submit_idempotent(ctx, admin, idempotency_key, body.model_dump(), op, render)


@router.get("/tiers", response_model=Page[TierOut], **answers(422))
async def list_tiers(ctx: ContextDep, page: PageDep) -> dict[str, Any]:
    tiers = list(enumerate(ctx.service.core.query.tiers(), start=1))
    return paginate(tiers, page, lambda x: x[0], lambda x: tier_view(x[1]))


@router.post(
    "/admin/tiers",
    status_code=201,
    response_model=TierOut,
    **answers(*BODY, 404, 409, 429, 503, key="admin"),
)
async def create_tier(
    body: TierIn, ctx: ContextDep, admin: AdminAccount, idempotency_key: IdemKey = None
) -> FastJSONResponse:
    """Create a tier; its instruments for the coming windows are listed at once."""
    op = CreateTier(
        code=body.code,
        precision=body.precision,
        gpu_class=body.gpu_class,
        min_green_grade=body.min_green_grade,
        regions=list(body.regions or []),
        tick=Price(PRICE.parse(body.tick_size, "tick_size") or 0),
        lot=Quantity(QUANTITY.parse(body.lot_size, "lot_size") or 0),
        min_quantity=Quantity(QUANTITY.parse(body.min_quantity, "min_quantity") or 0),
        max_quantity=Quantity(QUANTITY.parse(body.max_quantity, "max_quantity") or 0),
        price_band_bps=BAND_PCT.parse(body.price_band_pct, "price_band_pct") or 0,
        maker_fee_bps=body.maker_fee_bps,
        taker_fee_bps=body.taker_fee_bps,
        shortfall_penalty_bps=PENALTY_PCT.parse(body.shortfall_penalty_pct, "shortfall_penalty_pct")
        or 0,
        reference_price=Price(PRICE.parse(body.reference_price, "reference_price") or 0),
        arithmetic_intensity=body.arithmetic_intensity,
        window_hours=body.window_hours,
        list_ahead_hours=body.list_ahead_hours,
        gate_closure_minutes=body.gate_closure_minutes,
    )

    def render(record: TierRecord) -> dict[str, Any]:
        return tier_view(record)

    return await submit_idempotent(ctx, admin, idempotency_key, body.model_dump(), op, render)


@router.patch(
    "/admin/tiers/{code}", response_model=TierOut, **answers(*BODY, 404, 429, 503, key="admin")
)
async def update_tier(
    code: Code, body: TierPatch, ctx: ContextDep, admin: AdminAccount
) -> dict[str, Any]:
    reference = PRICE.parse(body.reference_price, "reference_price")
    op = UpdateTier(
        code=code,
        status=body.status,
        maker_fee_bps=body.maker_fee_bps,
        taker_fee_bps=body.taker_fee_bps,
        price_band_bps=BAND_PCT.parse(body.price_band_pct, "price_band_pct"),
        shortfall_penalty_bps=PENALTY_PCT.parse(
            body.shortfall_penalty_pct, "shortfall_penalty_pct"
        ),
        reference_price=Price(reference) if reference is not None else None,
        list_ahead_hours=body.list_ahead_hours,
    )
    result: dict[str, Any] = await submit_change(ctx, admin, op, tier_view)
    return result


@router.get("/instruments", response_model=Page[InstrumentOut], **answers(422))
async def list_instruments(
    ctx: ContextDep,
    page: PageDep,
    tier: Annotated[Code | None, Query()] = None,
    state: Annotated[InstrumentState | None, Query()] = None,
) -> dict[str, Any]:
    core = ctx.service.core
    items = [
        i
        for i in core.query.instruments()
        if (tier is None or i.instrument.tier.code == tier)
        and (state is None or i.state.value == state)
    ]
    items.sort(key=lambda i: (i.instrument.window.start, i.symbol))
    indexed = list(enumerate(items, start=1))
    return paginate(indexed, page, lambda x: x[0], lambda x: instrument_view(core, x[1]))


@router.get("/instruments/{symbol}", response_model=InstrumentDetailOut, **answers(404, 422))
async def get_instrument(symbol: Symbol, ctx: ContextDep) -> dict[str, Any]:
    core = ctx.service.core
    return instrument_view(core, core.query.instrument(symbol), detail=True)


async def _instrument_action(
    ctx: Context, admin: AccountRecord, op: HaltInstrument | ResumeInstrument
) -> dict[str, Any]:
    core = ctx.service.core

    def render(inst: InstrumentRecord) -> dict[str, Any]:
        return instrument_view(core, inst, detail=True)

    result: dict[str, Any] = await submit_change(ctx, admin, op, render)
    return result


@router.post(
    "/admin/instruments/{symbol}/halt",
    response_model=InstrumentDetailOut,
    **answers(404, 422, 429, 503, key="admin"),
)
async def halt(symbol: Symbol, ctx: ContextDep, admin: AdminAccount) -> dict[str, Any]:
    return await _instrument_action(ctx, admin, HaltInstrument(SymbolId(symbol)))


@router.post(
    "/admin/instruments/{symbol}/resume",
    response_model=InstrumentDetailOut,
    **answers(404, 422, 429, 503, key="admin"),
)
async def resume(symbol: Symbol, ctx: ContextDep, admin: AdminAccount) -> dict[str, Any]:
    return await _instrument_action(ctx, admin, ResumeInstrument(SymbolId(symbol)))
