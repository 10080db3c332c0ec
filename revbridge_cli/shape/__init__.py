"""Shaping: a raw record -> checked user parts in the API's shape (pure)."""
