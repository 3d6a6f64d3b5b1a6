"""The rules engine: validated rule files in, detections out; pure, vectorised, no I/O."""
