"""Web (HTML) routes of notifications, mounted at /notifications/ (API routes live in api.py)."""

from django.urls import path  # noqa: F401

app_name = "notifications"
urlpatterns: list = []
