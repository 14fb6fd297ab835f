"""Rapport: an open-source customer relationship platform."""

__version__ = "0.1.0"
