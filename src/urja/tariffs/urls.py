"""Web (HTML) routes of tariffs, mounted at /tariffs/ (API routes live in api.py)."""

from django.urls import path  # noqa: F401

app_name = "tariffs"
urlpatterns: list = []
