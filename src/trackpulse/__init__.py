"""trackpulse: Jira and Trello delivery metrics."""
__version__ = "0.1.0"
