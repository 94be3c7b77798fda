from django.urls import path

from . import views

app_name = "backoffice"
urlpatterns: list = [
    path("", views.home, name="home"),
]
