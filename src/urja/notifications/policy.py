"""Delivery policy (data/notifications/delivery.toml): retry limits and backoff. Pure functions."""

from dataclasses import dataclass

from urja.core import regdata

DELIVERY_FILE = "notifications/delivery.toml"


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int
    backoff_base_seconds: float
    backoff_factor: float
    backoff_max_seconds: float
    sending_timeout_seconds: float
    queued_grace_seconds: float
    batch_size: int
    http_timeout_seconds: float

    def backoff_seconds(self, attempts: int) -> float:
        """Delay before the next attempt after `attempts` failed attempts (1 → base, 2 → base·factor, ...),
        capped at backoff_max_seconds."""
        if attempts < 1:
            return 0.0
        return min(self.backoff_base_seconds * self.backoff_factor ** (attempts - 1), self.backoff_max_seconds)

    def schedule(self) -> list[float]:
        """The delays between all attempts of one message (max_attempts - 1 of them)."""
        return [self.backoff_seconds(n) for n in range(1, self.max_attempts)]


def load_policy() -> DeliveryPolicy:
    doc = regdata.load(DELIVERY_FILE)
    retry, dispatch, http = doc["retry"], doc["dispatch"], doc.get("http", {})
    return DeliveryPolicy(
        max_attempts=int(retry["max_attempts"]),
        backoff_base_seconds=float(retry["backoff_base_seconds"]),
        backoff_factor=float(retry["backoff_factor"]),
        backoff_max_seconds=float(retry["backoff_max_seconds"]),
        sending_timeout_seconds=float(dispatch["sending_timeout_seconds"]),
        queued_grace_seconds=float(dispatch["queued_grace_seconds"]),
        batch_size=int(dispatch["batch_size"]),
        http_timeout_seconds=float(http.get("timeout_seconds", 10)),
    )
