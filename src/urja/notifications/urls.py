"""Web (HTML) routes of notifications, mounted at /notifications/ (API routes live in api.py)."""

from django.urls import path
from django.utils.translation import gettext_lazy

from . import views

app_name = "notifications"
urlpatterns = [
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/requeue/", views.requeue, name="requeue"),
    path("accounts/<str:consumer_number>/panel/", views.account_panel, name="account_panel"),
]

# Top navigation entry of the back-office shell (see backoffice.navigation).
BACKOFFICE_NAV = [(gettext_lazy("Messages"), "notifications:outbox")]
