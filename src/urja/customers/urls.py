"""Web (HTML) routes of customers, mounted at /customers/ (API routes live in api.py)."""

from django.urls import path  # noqa: F401

app_name = "customers"
urlpatterns: list = []
