"""Web (HTML) routes of customers, mounted at /customers/ (API routes live in api.py)."""

from django.urls import path

from . import views

app_name = "customers"
urlpatterns: list = [
    path("new/", views.register, name="register"),
    path("consumers/<int:consumer_id>/", views.consumer, name="consumer"),
    path("consumers/<int:consumer_id>/documents/", views.add_document, name="add_document"),
    path("consumers/<int:consumer_id>/documents/<int:document_id>/", views.document_file, name="document_file"),
    path("consumers/<int:consumer_id>/accounts/new/", views.open_account, name="open_account"),
]
