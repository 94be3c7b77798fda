from django.apps import AppConfig


class MinigridConfig(AppConfig):
    name = "urja.minigrid"
    label = "minigrid"
    verbose_name = "Mini-grid site console"
