"""The outbox of deliveries (pending, sent, failed) and the dispatcher that drains it."""
