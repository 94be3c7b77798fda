"""Web (HTML) routes of metering, mounted at /metering/ (API routes live in api.py)."""

from django.urls import path

from . import pages, views

app_name = "metering"
urlpatterns = [
    path("meters/", views.meter_list, name="meters"),
    path("work/", pages.meter_work, name="work"),
    path("work/<str:action>/", pages.meter_action, name="action"),
    path("imports/", pages.upload, name="upload"),
    path("imports/<int:batch_id>/", pages.import_report, name="import_report"),
    path("imports/<int:batch_id>/report.csv", pages.import_report_csv, name="import_report_csv"),
    path("meters/<str:serial>/", views.meter_detail, name="meter"),
    path("meters/<str:serial>/sheet/", views.particulars_sheet, name="sheet"),
    path("accounts/<str:consumer_number>/", views.account_page, name="account"),
    path("accounts/<str:consumer_number>/panel/", views.account_panel, name="account_panel"),
    path("review/", views.review_queue, name="review"),
    path("review/<int:reading_id>/", views.review_action, name="review_action"),
    path("commands/", views.commands, name="commands"),
    path("commands/<str:command_id>/retry/", views.command_retry, name="command_retry"),
    path("route-book/", views.route_book, name="route_book"),
    path("route-book/reading/", views.route_reading, name="route_reading"),
]
