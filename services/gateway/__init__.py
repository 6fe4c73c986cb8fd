"""The gateway (前台): the HTTP JSON API and the web console of Dibao.

It owns no data. Every request that acts for a person is made over RPC
*with that person's identity token* — the bearer token of an API client or
the console's session cookie — so each service checks the person's roles
and jurisdiction itself and records the command as theirs; the gateway's
own identity (``service:gateway``) may call only ``identity.revocations``
(shared/permissions.py). See docs/console.md.
"""
