"""Packing: user parts -> size-bounded request bodies, grouped by user (pure)."""
