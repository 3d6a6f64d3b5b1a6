"""Alert lifecycle (dedup, grade, ack/resolve), notifiers, and later routing and the console API."""
