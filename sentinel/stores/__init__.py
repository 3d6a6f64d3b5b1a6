"""Where readings, detections, alert changes and dead letters are kept (SQLite by default, InfluxDB)."""
