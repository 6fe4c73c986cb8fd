"""What nameko's RPC declares on the broker, confined to the caller's own names
(DESIGN §3.4a, issue 13 item 5).

nameko 2.14.1 (``nameko/rpc.py``, ``nameko/standalone/rpc.py``) uses:

- the topic exchange ``nameko-rpc`` (``get_rpc_exchange``), which every RPC
  queue and reply queue declares *non-passively* — that takes the configure
  right on it, and with it the right to delete the exchange (every binding
  gone: an outage) and to re-declare it with an ``alternate-exchange`` of
  one's own (every request of that outage, tokens included, routed to a
  queue one reads);
- a service's queue ``rpc-<service>``, bound with ``<service>.*``;
  requests are published with ``<service>.<method>``;
- a caller's reply queue ``rpc.reply-<caller>-<uuid>`` (``x-expires`` 5 min),
  bound with the bare ``<uuid>``, which every request carries in
  ``reply_to`` — so any service a caller asks learns that key and could bind
  a queue of its own with it, reading every reply the caller gets from
  anyone (an identity login answer: a live token).

Here, on every Dibao RPC queue (:class:`OwnRpcConsumer`, the service side of
``shared.rpc.rpc``) and reply queue (:class:`OwnReplyListener`, every proxy
:func:`shared.broker.rpc_proxy` makes):

- a restricted user (its own broker user, :func:`shared.broker.restricted`)
  declares ``nameko-rpc`` passively — ``dibao broker setup`` declares it —
  so no broker user holds configure on it;
- a reply queue is bound by its own name, ``rpc.reply-<caller>-<uuid>``,
  and that is its ``reply_to``; the broker's topic permissions let only the
  caller's user bind that key (:func:`shared.broker.rpc_topic_permissions`).

nameko's responder needs nothing new: it publishes the reply to whatever
``reply_to`` says. A plain nameko caller (its reply key a bare uuid) is
refused the binding when broker users are on.
"""
from __future__ import annotations

import logging
import uuid

from amqp.exceptions import AccessRefused
from kombu import Exchange, Queue
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TTL, RpcConsumer, get_rpc_exchange
from nameko.standalone.rpc import SingleThreadedReplyListener

from shared.broker import restricted
from shared.config import complete_amqp_ssl

log = logging.getLogger(__name__)


def rpc_exchange(config: dict) -> Exchange:
    """``nameko-rpc`` as nameko declares it — passively for a restricted user."""
    exchange = get_rpc_exchange(config)
    if not restricted(config):
        return exchange
    return Exchange(exchange.name, type=exchange.type, durable=exchange.durable, passive=True)


def reply_queue_name(caller: str) -> str:
    """A fresh reply queue's name, which is also its routing key."""
    return RPC_REPLY_QUEUE_TEMPLATE.format(caller, uuid.uuid4())


class OwnRpcConsumer(RpcConsumer):
    """nameko's RPC consumer (``rpc-<service>`` bound with ``<service>.*``),
    on ``nameko-rpc`` declared passively by a restricted user. Every service
    that answers RPC has it, so it is also where a container's ``AMQP_SSL``
    is completed as :func:`shared.config.load_config` completes it — under
    ``nameko run``, which reads config.yml itself — before nameko's own
    consumers connect (Dibao's own connections and proxies complete it
    themselves: :func:`shared.broker.ssl_options`)."""

    def bind(self, container):
        complete_amqp_ssl(container.config)
        return super().bind(container)

    def handle_result(self, message, result, exc_info):
        """nameko's, except that a reply the broker refuses to route (a
        ``reply_to`` no caller may bind, sent by a broken or hostile caller)
        is logged and the request acknowledged: in nameko the error ends the
        worker thread with an exception, which kills the whole container."""
        try:
            return super().handle_result(message, result, exc_info)
        except AccessRefused as exc:
            log.warning("%s: the reply to %r was refused by the broker (%s); request dropped",
                        self.container.service_name, message.properties.get("reply_to"), exc)
            self.queue_consumer.ack_message(message)
            return result, exc_info

    def setup(self):
        if self.queue is None:
            super().setup()
            self.queue = Queue(self.queue.name, exchange=rpc_exchange(self.container.config),
                               routing_key=self.queue.routing_key, durable=True)


class OwnReplyListener(SingleThreadedReplyListener):
    """A standalone proxy's reply listener whose queue is bound by its own
    name (``rpc.reply-<caller>-<uuid>``, the ``reply_to`` of its requests)."""

    def setup(self):
        name = reply_queue_name(self.container.service_name)
        self.routing_key = name
        self.queue = Queue(name, exchange=rpc_exchange(self.container.config), routing_key=name,
                           queue_arguments={"x-expires": RPC_REPLY_QUEUE_TTL})
        self.queue_consumer.register_provider(self)
