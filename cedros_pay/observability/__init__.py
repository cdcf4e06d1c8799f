"""Built-in observability hooks (spec 14): Prometheus metrics, logging, SQL instrumentation.

The event types and the hook registry live in `cedros_pay.observability.hooks`, so every
layer can report events without importing Prometheus.
"""

from cedros_pay.observability.logging_hook import LoggingHook
from cedros_pay.observability.prometheus import PrometheusHook, PrometheusMetrics

__all__ = ["LoggingHook", "PrometheusHook", "PrometheusMetrics"]
