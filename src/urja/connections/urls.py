"""Web (HTML) routes of connections, mounted at /connections/ (API routes live in api.py)."""

from django.urls import path

from . import views

app_name = "connections"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("new/", views.register, name="register"),
    path("applications/<str:number>/", views.application, name="application"),
    path("applications/<str:number>/action/", views.application_action, name="application_action"),
    path("changes/", views.change_queue, name="changes"),
    path("changes/shifting/", views.request_shifting, name="request_shifting"),
    path("changes/<str:number>/", views.change_detail, name="change"),
    path("changes/<str:number>/step/", views.change_step, name="change_step"),
    path("changes/<str:number>/decision/", views.change_action, name="change_action"),
    path("orders/", views.order_queue, name="orders"),
    path("orders/<str:number>/complete/", views.order_action, name="order_action"),
    # public
    path("track/", views.track, name="track"),
]
