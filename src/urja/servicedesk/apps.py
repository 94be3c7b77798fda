from django.apps import AppConfig


class ServicedeskConfig(AppConfig):
    name = "urja.servicedesk"
    label = "servicedesk"
