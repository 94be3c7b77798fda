"""Web (HTML) routes of reports, mounted at /reports/ (API routes live in api.py)."""

from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("node/<str:level>/<int:node_id>/", views.node, name="node"),
    path("losses/", views.losses, name="losses"),
    path("operations/", views.operations, name="operations"),
    path("outages/", views.outages, name="outages"),
    path("outages/<str:number>/", views.outage, name="outage"),
]
