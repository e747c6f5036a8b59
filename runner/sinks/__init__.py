"""Where a run's events go besides the store: the terminal, MQTT."""
