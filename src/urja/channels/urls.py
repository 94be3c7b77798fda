"""Pages of channels, mounted at /channels/ (the webhooks are at /webhooks/: see webhooks.py)."""

from django.urls import path

from . import views

app_name = "channels"
urlpatterns = [
    path("ebill/<str:token>/", views.ebill, name="ebill"),
    path("inbound/", views.inbound, name="inbound"),
    path("inbound/<int:pk>/answer-again/", views.answer_again, name="answer_again"),
]
