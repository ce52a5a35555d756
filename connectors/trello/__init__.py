"""Trello connector."""
