"""HTTP routes of API v1, one module per group of API.md."""
