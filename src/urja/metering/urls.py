"""Web (HTML) routes of metering, mounted at /metering/ (API routes live in api.py)."""

from django.urls import path  # noqa: F401

app_name = "metering"
urlpatterns: list = []
