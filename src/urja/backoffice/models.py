"""Models of backoffice."""
