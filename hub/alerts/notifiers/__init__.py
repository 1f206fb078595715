"""Where alerts go: one module per notifier behind `Notifier`, each delivered by its own `Courier`."""

from hub.alerts.notifiers.base import Courier, Notifier, NotifyError

__all__ = ["Courier", "Notifier", "NotifyError"]
