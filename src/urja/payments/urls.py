"""Web (HTML) routes of payments, mounted at /payments/ (API routes live in api.py)."""

from django.urls import path  # noqa: F401

app_name = "payments"
urlpatterns: list = []
