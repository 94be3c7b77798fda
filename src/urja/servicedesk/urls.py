"""Web (HTML) routes of servicedesk, mounted at /servicedesk/ (API routes live in api.py)."""

from django.urls import path  # noqa: F401

app_name = "servicedesk"
urlpatterns: list = []
