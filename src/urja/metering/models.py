"""Models of metering."""
