"""Web (HTML) routes of tariffs, mounted at /tariffs/ (API routes live in api.py)."""

from django.urls import path
from django.utils.translation import gettext_lazy

from . import views

app_name = "tariffs"
BACKOFFICE_NAV = [(gettext_lazy("Tariffs"), "tariffs:browser"), (gettext_lazy("Bill calculator"), "tariffs:calculator")]
urlpatterns: list = [
    path("", views.browser, name="browser"),
    path("calculator/", views.calculator, name="calculator"),
    path("<int:pk>/", views.version_detail, name="version"),
]
