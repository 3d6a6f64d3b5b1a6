"""Detection benchmark: physics-based scenarios on three networks, scored the way the field scores.

`python -m bench.detection` simulates a fixed suite (held-out seeds, cached under ~/.cache), replays it
through the shipped default rules and prints recall, precision, false alerts per zone-week and time to
detect per event kind, LeakDB's time-step metrics for water beside LeakDB's minimum-night-flow
baseline on the same data, and whether the project's targets are met.
"""
