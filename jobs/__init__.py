"""Scheduled units of work."""
