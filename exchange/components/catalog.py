"""The hardware catalog (accelerator models with their figures) and the GPU classes over
it, with the members each class derives from the catalog."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from exchange.catalog_log import entry_model
from exchange.components.bounds import CATALOG_INSTALL_MAX, CLASS_LIST_MAX, CODE_MAX, NAME_MAX
from exchange.components.context import Rules
from exchange.decimals import optional_decimal, parse_decimal
from exchange.operations import AddHardware, ConfirmHardware, CreateGpuClass, InstallCatalog
from exchange.products import Precision
from exchange.records import Rejected
from exchange.refusals import Refusal
from pricing import (
    MODEL_ID_MAX,
    VENDOR_MAX,
    AcceleratorModel,
    FigureSubmission,
    GpuClass,
    ModelSubmission,
    PricingError,
    Quality,
    build_model,
    class_members,
    confirm_model,
    with_model,
    with_models,
)

__all__ = ["Catalog", "precision"]


def precision(text: str) -> Precision:
    try:
        return Precision(text)
    except ValueError as exc:
        raise Refusal.INVALID_PRECISION.reject(precision=repr(text[:20])) from exc


class Catalog:
    __slots__ = ("_changed", "_rules", "catalog", "class_members", "gpu_classes")
    #: ``class_members`` (derived from the classes and the catalog) is hashed with what it
    #: derives from: deterministic, and hashing it also catches a drift.
    STATE: ClassVar[dict[str, tuple[str, ...]]] = {
        "catalog": ("catalog",),
        "gpu_classes": ("gpu_classes", "class_members"),
    }
    REFERENCES: ClassVar[tuple[str, ...]] = ("_changed", "_rules")

    def __init__(self, rules: Rules, changed: Callable[[], None]) -> None:
        """``changed`` is called whenever the catalog changes (what caches it drops)."""
        self._rules = rules
        self._changed = changed
        self.catalog: dict[str, AcceleratorModel] = {}
        self.gpu_classes: dict[str, GpuClass] = {}
        self.class_members: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------------ operations
    def install(self, op: InstallCatalog) -> list[AcceleratorModel]:
        """Add the models, or replace the entries of their ids (figures exactly as given;
        an admin's confirmation stays). Every model is checked before any is installed."""
        if not 1 <= len(op.models) <= CATALOG_INSTALL_MAX:
            raise Refusal.INVALID_CATALOG.reject(limit=CATALOG_INSTALL_MAX)
        models = [entry_model(entry) for entry in op.models]
        seen: set[str] = set()
        for model in models:
            if model.id in seen:
                raise Refusal.DUPLICATE_MODEL_ID.reject(model_id=model.id, problem="appears twice")
            seen.add(model.id)
        self.catalog = with_models(self.catalog, models)
        self._catalog_changed()
        return [self.catalog[m.id] for m in models]

    def add_hardware(self, op: AddHardware) -> AcceleratorModel:
        strict = self._rules.admitting
        figures: dict[Precision, FigureSubmission] = {}
        for key, fig in op.figures.items():
            tflops = parse_decimal(fig.tflops, f"figures.{key}", strict=strict)
            accumulation = precision(fig.accumulation) if fig.accumulation else None
            figures[precision(key)] = FigureSubmission(tflops, fig.with_sparsity, accumulation)
        try:
            quality = Quality(op.quality)
        except ValueError as exc:
            raise Refusal.INVALID_QUALITY.reject() from exc
        submission = ModelSubmission(
            vendor=op.vendor,
            model=op.model,
            figures=figures,
            memory_gb=optional_decimal(op.memory_gb, "memory_gb", strict=strict),
            memory_bandwidth_gbs=optional_decimal(
                op.memory_bandwidth_gbs, "memory_bandwidth_gbs", strict=strict
            ),
            tdp_w=optional_decimal(op.tdp_w, "tdp_w", strict=strict),
            quality=quality,
            source=op.source,
            id=op.id,
            confirmed=op.confirmed,
        )
        try:
            model = build_model(submission, self.catalog, strict=strict)
        except PricingError as exc:
            raise Rejected(exc.code, **exc.fields) from exc
        self.catalog = with_model(self.catalog, model)
        self._catalog_changed()
        return model

    def confirm_hardware(self, op: ConfirmHardware) -> AcceleratorModel:
        if op.model_id not in self.catalog:
            raise Refusal.HARDWARE_NOT_FOUND.reject(hardware_id=op.model_id)
        self.catalog = confirm_model(self.catalog, op.model_id)
        self._catalog_changed()
        return self.catalog[op.model_id]

    def _catalog_changed(self) -> None:
        self.class_members = {
            code: class_members(rule, self.catalog) for code, rule in self.gpu_classes.items()
        }
        self._changed()

    def create_gpu_class(self, op: CreateGpuClass) -> GpuClass:
        admitting = self._rules.admitting
        if op.code in self.gpu_classes:
            raise Refusal.GPU_CLASS_EXISTS.reject(code=op.code)
        if not op.code or len(op.code) > CODE_MAX:
            raise Refusal.INVALID_CODE.reject(reason=f"a class code is 1 to {CODE_MAX} characters")
        if admitting and (not op.name.strip() or len(op.name) > NAME_MAX):
            raise Refusal.INVALID_NAME.reject(reason=f"a class name is 1 to {NAME_MAX} characters")
        for names, longest in ((op.vendors, VENDOR_MAX), (op.models, MODEL_ID_MAX)):
            if (
                admitting
                and names is not None
                and (len(names) > CLASS_LIST_MAX or any(len(n) > longest for n in names))
            ):
                raise Refusal.INVALID_CLASS.reject(
                    reason=f"at most {CLASS_LIST_MAX} vendors and models, "
                    f"each at most {VENDOR_MAX} and {MODEL_ID_MAX} characters",
                )
        unknown = [m for m in op.models or () if m not in self.catalog]
        if unknown:
            raise Refusal.HARDWARE_NOT_FOUND.reject(hardware_id=", ".join(unknown[:5]))
        try:
            rule = GpuClass(
                code=op.code,
                name=op.name,
                precision=precision(op.precision),
                min_dense_tflops=parse_decimal(
                    op.min_dense_tflops, "min_dense_tflops", strict=admitting
                ),
                min_memory_gb=parse_decimal(op.min_memory_gb, "min_memory_gb", strict=admitting),
                min_memory_bandwidth_gbs=parse_decimal(
                    op.min_memory_bandwidth_gbs, "min_memory_bandwidth_gbs"
                ),
                vendors=frozenset(op.vendors) if op.vendors is not None else None,
                models=frozenset(op.models) if op.models is not None else None,
            )
        except PricingError as exc:
            raise Rejected(exc.code, **exc.fields) from exc
        self.gpu_classes[rule.code] = rule
        self.class_members[rule.code] = class_members(rule, self.catalog)
        return rule

    # ------------------------------------------------------------------ reads
    def models(self) -> Mapping[str, AcceleratorModel]:
        """The catalog by model id (replaced, never changed in place, when it changes)."""
        return self.catalog

    def has_model(self, model_id: str) -> bool:
        return model_id in self.catalog

    def has_class(self, code: str) -> bool:
        return code in self.gpu_classes

    def members(self, code: str) -> tuple[str, ...]:
        """The model ids of a GPU class (none for an unknown class)."""
        return self.class_members.get(code, ())
