"""Pairsync: keeps the contacts of two apps in sync, from the user's own laptop."""

__version__ = "0.1.0"
