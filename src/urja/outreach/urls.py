"""Web (HTML) routes of outreach, mounted at /outreach/ (API routes live in api.py)."""

from django.urls import path

from . import views

app_name = "outreach"
urlpatterns = [
    path("", views.events, name="events"),
    path("events/<int:event_id>/", views.event, name="event"),
    path("issues/", views.issues, name="issues"),
    path("issues/<int:issue_id>/status/", views.issue_status, name="issue_status"),
]
