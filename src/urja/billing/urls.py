"""Web (HTML) routes of billing, mounted at /billing/ (API routes live in api.py)."""

from django.urls import path  # noqa: F401

app_name = "billing"
urlpatterns: list = []
