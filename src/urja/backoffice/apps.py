from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "urja.backoffice"
    label = "backoffice"
