"""Django format modules (settings.FORMAT_MODULE_PATH): dd-mm-yyyy in every language of the UI."""
