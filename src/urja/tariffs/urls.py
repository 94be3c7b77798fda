"""Web (HTML) routes of tariffs, mounted at /tariffs/ (API routes live in api.py)."""

from django.urls import path

from . import views

app_name = "tariffs"
urlpatterns: list = [
    path("", views.browser, name="browser"),
    path("calculator/", views.calculator, name="calculator"),
    path("<int:pk>/", views.version_detail, name="version"),
]
