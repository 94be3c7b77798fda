"""Web (HTML) routes of servicedesk, mounted at /servicedesk/ (API routes live in api.py)."""

from django.urls import path
from django.utils.translation import gettext_lazy

from . import views

app_name = "servicedesk"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk-assign/", views.bulk_assign, name="bulk_assign"),
    path("notices/read/", views.read_notices, name="read_notices"),
    path("desk/", views.desk, name="desk"),
    path("r/<str:number>/", views.request_detail, name="request"),
    path("r/<str:number>/action/", views.request_action, name="request_action"),
    path("accounts/<str:consumer_number>/panel/", views.account_panel, name="account_panel"),
    path("compliance/", views.compliance, name="compliance"),
    path("compensation/", views.compensation, name="compensation"),
    path("outages/", views.outages, name="outages"),
    # public
    path("track/", views.track, name="track"),
    path("feedback/<str:token>/", views.feedback, name="feedback"),
]

# Top navigation entries of the back-office shell (see backoffice.navigation).
BACKOFFICE_NAV = [
    (gettext_lazy("Requests"), "servicedesk:queue"),
    (gettext_lazy("Register complaint"), "servicedesk:desk"),
    (gettext_lazy("SLA compliance"), "servicedesk:compliance"),
    (gettext_lazy("Outages"), "servicedesk:outages"),
]
