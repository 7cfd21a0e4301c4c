"""Cluster mode: several server processes that are one swarm, through Redis.

The layers, as in the rest of wsstar:

* :mod:`~wsstar.cluster.messages`: what nodes tell each other, as plain
  values, and their wire form; no I/O.
* :mod:`~wsstar.cluster.replica`: the directory of a cluster node, a replica
  of the whole swarm kept in memory, so that join acks, announcements and dial
  look-ups never wait on Redis.  It decides, from sequence numbers Redis
  assigns, which of two racing claims wins, with no I/O of its own: local
  changes go to an outbox, remote ones are applied by the caller.
* :mod:`~wsstar.cluster.redis_bus`: the only module that talks to Redis:
  scripts that change the shared directory and publish the change atomically,
  the subscriber, liveness keys, and resynchronisation after an outage.
* :mod:`~wsstar.cluster.frames`: the wire form of node links; no I/O.
* :mod:`~wsstar.cluster.links`: direct TCP links between nodes, found through
  Redis, for dials and relayed bytes between their sockets.  What travels on
  them is decided by the rules (:mod:`wsstar.star.routes`) and the service
  (:mod:`wsstar.server.crossing`).
"""
