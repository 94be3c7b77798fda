from django.urls import path

from . import views

app_name = "portal"
urlpatterns: list = [
    path("", views.home, name="home"),
]
