"""Merchant webhook delivery over HTTP (spec 20): signed POSTs, one circuit breaker per
destination, and the dead-letter file."""

from cedros_pay.integrations.webhooks.dead_letters import DeadLetterFile, failed_webhook
from cedros_pay.integrations.webhooks.sender import (
    Deferred,
    Delivered,
    DestinationBreakers,
    Failed,
    Outcome,
    WebhookSender,
    destination,
    loggable_url,
    sign,
)

__all__ = [
    "DeadLetterFile",
    "Deferred",
    "Delivered",
    "DestinationBreakers",
    "Failed",
    "Outcome",
    "WebhookSender",
    "destination",
    "failed_webhook",
    "loggable_url",
    "sign",
]
