"""The cluster bus on Redis: the only module that talks to Redis.

Redis holds, under one key prefix:

* ``peers``: a hash, address → ``[node, socket, seq]``, the shared directory;
* ``owned:<node>``: the addresses each node owns, to clean up after it;
* ``node:<node>``: a key with a TTL each live node keeps refreshing, holding
  where its relay link listens and the token it expects
  (:mod:`~wsstar.cluster.links`);
* ``nodes``: the set of node ids, to find those whose key lapsed;
* ``seq``: the counter that orders claims.

Every change is one script that changes the hash and publishes the change on
the ``directory`` channel in the same step, so subscribers see changes in the
order Redis made them (:mod:`~wsstar.cluster.replica` relies on it).  The
publisher is one task that sends the outbox in order, batched in pipelines.

When Redis is unreachable the node keeps serving its own peers from its
replica; on return it subscribes again, re-reads the hash and makes again
whatever Redis lost of its own (:meth:`ClusterDirectory.end_resync`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from wsstar.cluster.links import LinkAddress
from wsstar.cluster.messages import BadMessage, Claimed, Message, decode, decode_entry
from wsstar.cluster.replica import Change, ClusterDirectory
from wsstar.directory import NodeId

log = logging.getLogger("wsstar.cluster")

#: Most outbox entries sent in one pipeline: one round trip for a burst of
#: joins, without holding a huge batch in memory.
BATCH = 512
#: Seconds between looks for nodes whose liveness key lapsed.
LIVENESS_CHECK_INTERVAL = 1.0
#: Seconds a stopping node waits for the bus's tasks to end.
STOP_WAIT = 3.0
#: Seconds to wait before connecting again after losing Redis (doubling).
RECONNECT_FIRST, RECONNECT_MOST = 0.25, 5.0

_CLAIM = """
local seq = redis.call('INCR', KEYS[2])
local prev = redis.call('HGET', KEYS[1], ARGV[3])
if prev then
  local p = cjson.decode(prev)
  if p[1] ~= ARGV[4] then redis.call('SREM', ARGV[1] .. 'owned:' .. p[1], ARGV[3]) end
end
redis.call('HSET', KEYS[1], ARGV[3], cjson.encode({ARGV[4], ARGV[5], seq}))
redis.call('SADD', ARGV[1] .. 'owned:' .. ARGV[4], ARGV[3])
redis.call('PUBLISH', ARGV[2], cjson.encode({'claim', ARGV[3], ARGV[4], ARGV[5], seq}))
return seq
"""

_RELEASE = """
local cur = redis.call('HGET', KEYS[1], ARGV[3])
if not cur then return 0 end
local p = cjson.decode(cur)
if p[1] ~= ARGV[4] or p[2] ~= ARGV[5] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[3])
redis.call('SREM', ARGV[1] .. 'owned:' .. ARGV[4], ARGV[3])
redis.call('PUBLISH', ARGV[2], cjson.encode({'release', ARGV[3], ARGV[4], ARGV[5], p[3]}))
return 1
"""

# ARGV[4] is "stop" when a node removes itself; otherwise the node is only
# removed if its liveness key has really lapsed (another node may be racing).
_DOWN = """
local key = ARGV[1] .. 'node:' .. ARGV[3]
if ARGV[4] ~= 'stop' and redis.call('EXISTS', key) == 1 then return 0 end
local owned = ARGV[1] .. 'owned:' .. ARGV[3]
for _, a in ipairs(redis.call('SMEMBERS', owned)) do
  local cur = redis.call('HGET', KEYS[1], a)
  if cur and cjson.decode(cur)[1] == ARGV[3] then redis.call('HDEL', KEYS[1], a) end
end
redis.call('DEL', owned, key)
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[2], cjson.encode({'down', ARGV[3]}))
return 1
"""


def redacted(url: str) -> str:
    """``url`` without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


class RedisBus:
    """Keeps a :class:`ClusterDirectory` and Redis in step, and the node alive."""

    def __init__(
        self,
        url: str,
        directory: ClusterDirectory,
        deliver: Callable[[Change], None],
        node_ttl: float,
        prefix: str = "wsstar:",
    ) -> None:
        """``deliver`` is told of every change other nodes made to the view."""
        self.url = url
        self.node: NodeId = directory.node
        self._directory = directory
        self._deliver = deliver
        self._ttl = node_ttl
        self._prefix = prefix
        self._peers = prefix + "peers"
        self._nodes = prefix + "nodes"
        self._seq = prefix + "seq"
        self._channel = prefix + "directory"
        #: Whether the node is subscribed and in step with Redis now.
        self.up = False
        #: Live nodes, this one included, as of the last liveness check.
        self.nodes = 1
        #: Redis errors and bad messages, for ``wsstar_cluster_bus_errors_total``.
        self.errors = 0
        self._wake = asyncio.Event()
        directory.notify = self._wake.set
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._started = time.time()
        #: This node's relay link, published in its liveness key.
        self.link: LinkAddress | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Leave the cluster: remove this node's addresses from Redis at once."""
        if self._task is not None:
            # The publisher finishes the pipeline it is in: redis-py does not
            # always come back from a command cancelled half-way.
            self._stopping.set()
            self._wake.set()
            done, _ = await asyncio.wait({self._task}, timeout=STOP_WAIT)
            if not done:
                self._task.cancel()
            self._task = None
        client = self._client(socket_timeout=2)
        try:
            await self._down(client, self.node, "stop")
        except (RedisError, OSError) as exc:
            log.warning("could not remove this node's peers from Redis: %s", exc)
        finally:
            await client.aclose()
        self.up = False

    def _client(self, **options: Any) -> aioredis.Redis:
        return aioredis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2, **options
        )

    async def _down(self, client: aioredis.Redis, node: str, how: str) -> None:
        """Remove ``node`` and its addresses: ``how`` is "stop" for this node
        leaving, "lapsed" for one whose liveness key expired."""
        await client.eval(
            _DOWN, 2, self._peers, self._nodes, self._prefix, self._channel, node, how
        )

    # -- the connection -------------------------------------------------------------

    async def _run(self) -> None:
        delay = RECONNECT_FIRST
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await self._session()
            except (RedisError, OSError, BadMessage) as exc:
                self.errors += 1
                if self.up or delay == RECONNECT_FIRST:
                    log.warning(
                        "Redis %s unreachable (%s): serving this node's peers only until it "
                        "is back",
                        redacted(self.url),
                        exc,
                    )
                self.up = False
            if time.monotonic() - started > RECONNECT_MOST:
                delay = RECONNECT_FIRST
            # Waiting to reconnect, unless the node is stopping.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RECONNECT_MOST)

    async def _session(self) -> None:
        """Subscribe, resynchronise, then publish, listen and beat until an error."""
        commands = self._client(socket_timeout=5)
        subscriber = self._client()
        pubsub: Any = subscriber.pubsub(ignore_subscribe_messages=True)
        directory = self._directory
        tasks: list[asyncio.Task[None]] = []
        try:
            await pubsub.subscribe(self._channel)
            await self._beat(commands)
            # What was queued before is redone by the resync below.
            directory.outbox.clear()
            directory.begin_resync()
            tasks.append(asyncio.create_task(self._listen(pubsub)))
            snapshot: list[Claimed] = []
            async for address, raw in commands.hscan_iter(self._peers, count=1000):
                snapshot.append(decode_entry(address, raw))
            self._changed(directory.end_resync(snapshot))
            await self._check_nodes(commands)
            self.up = True
            log.info("cluster node %s in step with Redis (%d nodes)", self.node, self.nodes)
            tasks.append(asyncio.create_task(self._publish(commands)))
            tasks.append(asyncio.create_task(self._keep_alive(commands)))
            # Until one fails, or the publisher returns because we are stopping.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_WAIT)
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # seen: the first one was raised above
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            with contextlib.suppress(RedisError, OSError):
                await subscriber.aclose()
            with contextlib.suppress(RedisError, OSError):
                await commands.aclose()

    def _changed(self, change: Change) -> None:
        if change:
            self._deliver(change)

    async def _listen(self, pubsub: Any) -> None:
        async for item in pubsub.listen():
            if item.get("type") != "message":
                continue
            try:
                message: Message = decode(item["data"])
            except BadMessage as exc:
                self.errors += 1
                log.warning("ignoring a message on %s: %s", self._channel, exc)
                continue
            self._changed(self._directory.apply(message))
        raise RedisError("subscription ended")

    async def _publish(self, commands: aioredis.Redis) -> None:
        outbox = self._directory.outbox
        claim = commands.register_script(_CLAIM)
        release = commands.register_script(_RELEASE)
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping.is_set():
                return  # the stop removes all of this node's entries at once
            while outbox:
                pipe = commands.pipeline(transaction=False)
                for _ in range(min(BATCH, len(outbox))):
                    change = outbox.popleft()
                    owner = change.owner
                    args = (self._prefix, self._channel, change.address, owner.node, owner.socket)
                    if change.kind == "claim":
                        await claim(keys=[self._peers, self._seq], args=args, client=pipe)
                    else:
                        await release(keys=[self._peers], args=args, client=pipe)
                await pipe.execute()

    async def link_of(self, node: NodeId) -> LinkAddress | None:
        """Where ``node``'s relay link listens, from its liveness key."""
        client = self._client(socket_timeout=2)
        try:
            info = await client.get(self._prefix + "node:" + node)
        except RedisError as exc:
            raise ConnectionError(f"Redis: {exc}") from None
        finally:
            await client.aclose()
        try:
            link = json.loads(info)["link"] if info is not None else None
            return LinkAddress(str(link[0]), int(link[1]), str(link[2])) if link else None
        except (ValueError, TypeError, KeyError, IndexError):
            return None

    async def _beat(self, commands: aioredis.Redis) -> None:
        link = self.link
        info = json.dumps(
            {
                "started": self._started,
                "link": [link.host, link.port, link.token] if link is not None else None,
            }
        )
        pipe = commands.pipeline(transaction=False)
        pipe.set(self._prefix + "node:" + self.node, info, px=int(self._ttl * 1000))
        pipe.sadd(self._nodes, self.node)
        await pipe.execute()

    async def _keep_alive(self, commands: aioredis.Redis) -> None:
        """Refresh this node's key well within its TTL, and notice nodes whose
        key lapsed: their peers vanish from every view."""
        beat_every = self._ttl / 3
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(min(LIVENESS_CHECK_INTERVAL, beat_every))
            if time.monotonic() - last_beat >= beat_every:
                await self._beat(commands)
                last_beat = time.monotonic()
            await self._check_nodes(commands)

    async def _check_nodes(self, commands: aioredis.Redis) -> None:
        # Strings: the clients decode responses.
        listed = {str(m) for m in await commands.smembers(self._nodes)}
        others = sorted(listed - {self.node})
        alive: set[str] = {self.node}
        if others:
            pipe = commands.pipeline(transaction=False)
            for node in others:
                pipe.exists(self._prefix + "node:" + node)
            for node, exists in zip(others, await pipe.execute(), strict=True):
                if exists:
                    alive.add(node)
                else:
                    log.info("cluster node %s stopped refreshing its key: its peers are gone", node)
                    await self._down(commands, node, "lapsed")
        change = Change()
        for node in self._directory.remote_nodes() - alive:
            self._directory.drop_node(node, change)
        self._changed(change)
        self.nodes = len(alive)
