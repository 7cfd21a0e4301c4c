"""The server around the rules: the service (:mod:`~wsstar.server.service`),
its dial records, announcement fan-out, admission limits, HTTP routes,
metrics, configuration and command line, and the one adapter that touches
python-socketio, python-engineio and aiohttp internals
(:mod:`wsstar.server.engineio`)."""
