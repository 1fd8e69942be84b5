"""Sellers' sites and pools, and the capacity book over them: what each pool delivers of
a tier per hour, and the pool-hours reserved by sell orders and committed to contracts."""

from __future__ import annotations

from fractions import Fraction
from typing import ClassVar

from exchange.capacity import CapacityBook
from exchange.components.accounts import Accounts
from exchange.components.bounds import LOCATION_MAX, NAME_MAX, POOL_DEVICES_MAX, SITE_DECIMAL_MAX
from exchange.components.catalog import Catalog
from exchange.components.clock import Time
from exchange.components.context import Rules
from exchange.decimals import optional_decimal, parse_decimal
from exchange.operations import AddPool, RegisterSite
from exchange.products import Tier
from exchange.records import PoolRecord, Rejected, SiteRecord
from exchange.refusals import Refusal
from pricing import PricingError, make_site, pool_ineligibility, rated_pf, to_quantity

__all__ = ["Sites"]


class Sites:
    __slots__ = (
        "_accounts",
        "_caps",
        "_catalog",
        "_rules",
        "_time",
        "capacity",
        "owner_pools",
        "owner_sites",
        "pools",
        "sites",
    )
    #: The indexes by owner (derived from the records they index) are hashed with them:
    #: deterministic, and hashing them also catches an index that drifted.
    STATE: ClassVar[dict[str, tuple[str, ...]]] = {
        "sites": ("sites", "owner_sites"),
        "pools": ("pools", "owner_pools"),
        "capacity": ("capacity",),
    }
    REFERENCES: ClassVar[tuple[str, ...]] = ("_accounts", "_caps", "_catalog", "_rules", "_time")

    def __init__(
        self,
        time: Time,
        rules: Rules,
        accounts: Accounts,
        catalog: Catalog,
        caps: dict[tuple[int, str], int],
    ) -> None:
        """``caps`` caches what a pool delivers of a tier (emptied when the catalog changes)."""
        self._time = time
        self._rules = rules
        self._accounts = accounts
        self._catalog = catalog
        self._caps = caps
        self.sites: dict[int, SiteRecord] = {}
        self.owner_sites: dict[int, list[int]] = {}  # owner -> its site ids, in order
        self.pools: dict[int, PoolRecord] = {}
        self.owner_pools: dict[int, list[int]] = {}  # owner -> its pool ids, in order
        self.capacity = CapacityBook()

    # ------------------------------------------------------------------ operations
    def register_site(self, op: RegisterSite) -> SiteRecord:
        self._accounts.account(op.owner)
        name = op.name.strip()
        if not name or len(name) > NAME_MAX:
            raise Refusal.INVALID_NAME.reject(reason=f"a site name is 1 to {NAME_MAX} characters")
        if op.location is not None and len(op.location) > LOCATION_MAX:
            raise Refusal.INVALID_LOCATION.reject(limit=LOCATION_MAX)
        column = SITE_DECIMAL_MAX
        strict = self._rules.admitting
        pue = parse_decimal(op.pue, "pue", column=column, strict=strict)
        green = parse_decimal(op.green_share, "green_share", column=column, strict=strict)
        factor = optional_decimal(
            op.emission_factor, "emission_factor", column=column, strict=strict
        )
        site_id = self._time.peek_id("site")
        try:
            site = make_site(str(site_id), op.region, pue, green, factor)
        except PricingError as exc:
            raise Rejected(exc.code, **exc.fields) from exc
        limit = self._rules.limits.sites
        if len(self.owner_sites.get(op.owner, ())) >= limit:
            raise Refusal.TOO_MANY_SITES.reject(limit=limit)
        self._time.next_id("site")
        record = SiteRecord(site_id, op.owner, name, op.location, site)
        self.sites[site_id] = record
        self.owner_sites.setdefault(op.owner, []).append(site_id)
        return record

    def add_pool(self, op: AddPool) -> PoolRecord:
        site = self.sites.get(op.site_id)
        if site is None or site.owner != op.owner:
            raise Refusal.SITE_NOT_FOUND.reject(site_id=op.site_id)
        if not self._catalog.has_model(op.hardware_id):
            raise Refusal.HARDWARE_NOT_FOUND.reject(hardware_id=op.hardware_id)
        if not 1 <= op.count <= POOL_DEVICES_MAX:
            raise Refusal.INVALID_COUNT.reject(
                reason=f"a pool holds 1 to {POOL_DEVICES_MAX:,} devices"
            )
        limit = self._rules.limits.pools
        if len(self.owner_pools.get(op.owner, ())) >= limit:
            raise Refusal.TOO_MANY_POOLS.reject(limit=limit)
        record = PoolRecord(
            self._time.next_id("pool"), op.owner, op.site_id, op.hardware_id, op.count
        )
        self.pools[record.id] = record
        self.owner_pools.setdefault(op.owner, []).append(record.id)
        return record

    # ------------------------------------------------------------------ reads
    def owned_pool(self, owner: int, pool_id: int) -> PoolRecord | None:
        pool = self.pools.get(pool_id)
        return pool if pool is not None and pool.owner == owner else None

    def pool_counts(self) -> dict[int, int]:
        """Devices per pool id."""
        return {pool.id: pool.count for pool in self.pools.values()}

    def pool_rated_pf(self, pool: PoolRecord, tier: Tier) -> Fraction:
        return rated_pf(
            self._catalog.models()[pool.hardware_id],
            tier.precision,
            arithmetic_intensity=tier.arithmetic_intensity,
        )

    def pool_cap(self, pool: PoolRecord, tier: Tier) -> int:
        """Quantity units of ``tier`` the pool delivers per hour; 0 when not eligible."""
        key = (pool.id, tier.code)
        cap = self._caps.get(key)
        if cap is None:
            catalog = self._catalog
            reason = pool_ineligibility(
                pool.as_pricing_pool(),
                {str(s.id): s.site for s in (self.sites[pool.site_id],)},
                catalog.models(),
                tier,
                catalog.members(tier.gpu_class),
            )
            cap = 0 if reason else to_quantity(self.pool_rated_pf(pool, tier) * pool.count)
            self._caps[key] = cap
        return cap

    def eligible_pools(self, owner: int, tier: Tier) -> list[tuple[int, int]]:
        """[(pool id, quantity units per hour)] of ``owner``'s pools that deliver ``tier``."""
        out = []
        pools = self.pools
        for pool_id in self.owner_pools.get(owner, ()):
            cap = self.pool_cap(pools[pool_id], tier)
            if cap > 0:
                out.append((pool_id, cap))
        return out

    def check(self) -> None:
        self.capacity.check()
