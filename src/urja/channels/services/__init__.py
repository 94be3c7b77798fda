"""Services of channels (the only code that changes its state): one-time codes, portal sign-in,
contact changes and consent, and the WhatsApp / SMS conversations."""
