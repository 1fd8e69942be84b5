"""suanli trading core: value types, products, order book, matching engine (pure, no I/O)."""
