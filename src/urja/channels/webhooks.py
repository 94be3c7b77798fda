"""The inbound webhooks, mounted at /webhooks/ by urja/urls.py (no trailing slash: the providers'
documented addresses)."""

from django.urls import path

from . import views

app_name = "webhooks"
urlpatterns = [
    path("whatsapp", views.whatsapp, name="whatsapp"),
    path("sms", views.sms, name="sms"),
    path("ping", views.ping, name="ping"),
]
