"""Prometheus metrics: the instruments of one app, and the /metrics endpoint with its scrape-time readings."""

from herald.metrics.instruments import Metrics

__all__ = ["Metrics"]
