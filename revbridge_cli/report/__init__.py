"""Reporting: the ledger of every user's fate, the rejected file, the summary."""
