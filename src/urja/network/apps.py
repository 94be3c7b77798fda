from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "urja.network"
    label = "network"
