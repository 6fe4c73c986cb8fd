"""Channels that carry a message to a household: plugins.

A channel is a :class:`Channel` subclass registered in the entry-point
group ``dibao.channels``; config ``NOTIFY_CHANNELS`` lists the active ones,
comma-separated (default ``file``). A province adds its SMS gateway by
shipping a package with its own entry point.

Shipped:

- ``file``: appends one JSON line per message to
  ``DATA_DIR/messages/outbox.jsonl``, which an operator reads and delivers
  (by phone, letter or in person).
- ``smtp``: mails the message to ``<phone>@SMTP_TO_DOMAIN`` through the
  relay at ``SMTP_HOST:SMTP_PORT`` (an e-mail-to-SMS gateway), from
  ``SMTP_FROM``; a household without a phone number is skipped.

Logs show phone numbers masked.
"""
from __future__ import annotations

import json
import logging
import os
import re
import smtplib
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from importlib.metadata import entry_points

from nameko.extensions import DependencyProvider

from shared.config import data_dir
from shared.masking import mask_phone

log = logging.getLogger(__name__)

GROUP = "dibao.channels"


class DeliveryFailed(RuntimeError):
    """A channel could not deliver: the event is retried with back-off, then parked."""


@dataclass(frozen=True)
class OutgoingMessage:
    event_id: str
    kind: str            # the decision event's type, e.g. case_approved
    household_id: str
    community_code: str
    head_name: str
    phone: str | None
    subject: str
    text: str


class Channel:
    """Base of the channel plugins: built once per container with the config."""

    name = "channel"

    def __init__(self, config: dict):
        self.config = config

    def reaches(self, message: OutgoingMessage) -> bool:
        """Whether this channel can carry the message (e.g. it needs a phone)."""
        return True

    def send(self, message: OutgoingMessage) -> None:
        """Deliver, or raise: the event is retried with back-off, then parked."""
        raise NotImplementedError


class FileChannel(Channel):
    name = "file"

    def __init__(self, config: dict):
        super().__init__(config)
        self.path = data_dir(config) / "messages" / "outbox.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, message: OutgoingMessage) -> None:
        line = (json.dumps(asdict(message), ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)   # one write of one line: replicas may append to the same file
            os.fsync(fd)
        finally:
            os.close(fd)
        log.info("message %s to household %s (%s) written to %s", message.kind, message.household_id,
                 mask_phone(message.phone) or "no phone", self.path)


class SmtpChannel(Channel):
    name = "smtp"
    TIMEOUT = 20  # seconds for the relay to answer

    def __init__(self, config: dict):
        super().__init__(config)
        self.host = config.get("SMTP_HOST") or "127.0.0.1"
        self.port = int(config.get("SMTP_PORT") or 25)
        self.sender = config.get("SMTP_FROM") or "dibao@localhost"
        self.domain = config.get("SMTP_TO_DOMAIN") or "sms.localhost"

    def reaches(self, message: OutgoingMessage) -> bool:
        return bool(message.phone)

    def send(self, message: OutgoingMessage) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = f"{re.sub(r'[^0-9+]', '', message.phone)}@{self.domain}"
        mail["Subject"] = message.subject
        mail["X-Dibao-Event-Id"] = message.event_id
        mail.set_content(message.text)
        with smtplib.SMTP(self.host, self.port, timeout=self.TIMEOUT) as smtp:
            smtp.send_message(mail)
        log.info("message %s to household %s sent by SMTP to %s@%s", message.kind, message.household_id,
                 mask_phone(message.phone), self.domain)


def load_channels(config: dict) -> list[Channel]:
    """The channels NOTIFY_CHANNELS names, built; an unknown name fails at start-up."""
    wanted = config.get("NOTIFY_CHANNELS") or "file"
    names = [n.strip() for n in (wanted.split(",") if isinstance(wanted, str) else wanted) if n.strip()]
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise LookupError(f"NOTIFY_CHANNELS names unknown channel(s) {', '.join(unknown)}; "
                          f"installed ({GROUP}): {', '.join(sorted(found)) or 'none'}")
    channels = []
    for name in names:
        cls = found[name].load()
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise TypeError(f"channel {name!r} is not a services.notify.channels.Channel")
        channels.append(cls(config))
    return channels


class Channels(DependencyProvider):
    """The active channels, built once per container."""

    def setup(self):
        self.channels = load_channels(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.channels
