"""Jira connector."""
