"""Models of servicedesk."""
