"""The RPC contracts: what each service's RPC methods accept and answer.

One module per serving service (``contracts/rpc/intake.py``, ``review.py``,
``payments.py``, ``audit.py``, ``identity.py``, ``notify.py``): the marshmallow schemas the service loads
its input with and dumps its answers with, and the same ones the gateway
checks an HTTP request with and describes its API with (OpenAPI, generated:
services/gateway/api/). Like the event contracts they import only the
platform (``shared``) and marshmallow; a service imports its own as
``from contracts.rpc import intake as schemas``.
"""
