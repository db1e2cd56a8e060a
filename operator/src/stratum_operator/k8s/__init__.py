"""A small Kubernetes API client on aiohttp, one verb per module (as kopf's own client):
``applying`` (server-side apply), ``fetching``, ``patching``, ``deleting``.

kopf watches and handles StratumPools; these are the calls the handlers make on the
children. Credentials come from the same login kopf performed (``session.configure``).
"""
