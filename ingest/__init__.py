"""Adapters in: MQTT source and publisher, payload decoders, topic scheme, replay files."""
