"""The edge agent: readers -> on-disk outbox -> MQTT."""
