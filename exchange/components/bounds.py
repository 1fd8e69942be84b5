"""Bounds of what the core keeps: the longest texts, each the length of the database
column that keeps it (api/db/tables.py), so that no accepted operation can fail to be
written; and the most entries one operation may carry."""

__all__ = [
    "CATALOG_INSTALL_MAX",
    "CLASS_LIST_MAX",
    "CLIENT_ORDER_ID_MAX",
    "CODE_MAX",
    "LOCATION_MAX",
    "NAME_MAX",
    "POOL_DEVICES_MAX",
    "SITE_DECIMAL_MAX",
]

NAME_MAX = 100  # account, site and GPU class names
LOCATION_MAX = 200
CODE_MAX = 32  # tier and GPU class codes
CLIENT_ORDER_ID_MAX = 64
#: Devices one pool may hold.
POOL_DEVICES_MAX = 1_000_000
SITE_DECIMAL_MAX = 20  # a site's PUE, green share and emission factor, as text
#: Vendors or models a GPU class may list.
CLASS_LIST_MAX = 256
#: Most models one InstallCatalog carries (the packaged catalog has a few dozen).
CATALOG_INSTALL_MAX = 1_000
