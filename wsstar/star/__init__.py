"""The websocket-star rules, as plain synchronous code that knows nothing of
sockets: :mod:`~wsstar.star.rendezvous` (join, leave, dial),
:mod:`~wsstar.star.relay` (the pull-stream proxy), :mod:`~wsstar.star.announce`
(the re-announcement schedule), :mod:`~wsstar.star.flow` (which relay sources
are held), :mod:`~wsstar.star.routes` (this node's sockets' part in relays
another node keeps) and :mod:`~wsstar.star.effects` (what they ask the I/O
layer to do)."""
