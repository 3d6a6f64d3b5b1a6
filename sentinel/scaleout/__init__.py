"""Scale-out on Apache Kafka with faust-streaming: the same engine, one pipeline per zone, many workers.

    MQTT --(ingest.kafka_bridge)--> readings topic, keyed by zone --(Faust agent, worker.py)-->
        zone pipeline (zoned.py; state in a changelog-backed table) --> detections / alerts / dead-letter
        topics --(sink agent)--> store (SQLite or InfluxDB) and notifiers

Faust stays behind `worker.py`: the engine and `zoned.py` know nothing of it.
"""
