from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "urja.reports"
    label = "reports"
    verbose_name = "Reports and energy accounting"
