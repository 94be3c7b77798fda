from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "urja.channels"
    label = "channels"
    verbose_name = "Consumer channels (OTP, WhatsApp, SMS pull)"
