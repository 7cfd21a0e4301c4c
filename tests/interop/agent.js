'use strict'
// Real libp2p-websocket-star nodes, driven by the Python tests over stdio.
//
// Requests are JSON lines {"id": n, "cmd": ..., ...}; each gets exactly one
// reply {"id": n, "ok": true, ...} or {"id": n, "ok": false, "error": msg}.
// Asynchronous happenings are lines {"event": ...}.

const crypto = require('crypto')
const readline = require('readline')
const WebsocketStar = require('libp2p-websocket-star')
const PeerId = require('peer-id')
const multiaddr = require('multiaddr')
const pull = require('pull-stream')

const nodes = new Map()

function send (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function event (name, fields) {
  send(Object.assign({ event: name }, fields))
}

process.on('uncaughtException', (err) => event('uncaught', { error: String(err && err.stack) }))
process.on('unhandledRejection', (err) => event('uncaught', { error: String(err && err.stack) }))

function node (name) {
  const n = nodes.get(name)
  if (!n) throw new Error('no node named ' + name)
  return n
}

function sha256 (buf) {
  return crypto.createHash('sha256').update(buf).digest('hex')
}

// Dial `addr`, write `bytes` random bytes in `chunk`-sized pieces, read the
// echo to its end and report both hashes.
function dialEcho (n, addr, bytes, chunk, cb) {
  const data = crypto.randomBytes(bytes)
  const pieces = []
  for (let i = 0; i < bytes; i += chunk) pieces.push(data.slice(i, i + chunk))
  const started = Date.now()
  let failed = false
  const conn = n.transport.dial(multiaddr(addr), (err) => {
    if (err) { failed = true; cb(err) }
  })
  pull(
    pull.values(pieces),
    conn,
    pull.collect((err, bufs) => {
      if (failed) return
      if (err) return cb(err)
      const got = Buffer.concat(bufs)
      cb(null, { sent: sha256(data), received: sha256(got), bytes: got.length, ms: Date.now() - started })
    })
  )
}

// A pull-stream source fed by `write` requests: the test decides when bytes
// flow, so it can cut a connection while a stream is open.
function pushable () {
  const queue = []
  let pending = null
  let ended = null
  const source = (abort, cb) => {
    if (abort) { ended = abort; return cb(abort) }
    if (queue.length) return cb(null, queue.shift())
    if (ended) return cb(ended)
    pending = cb
  }
  source.push = (buf) => {
    if (pending) { const cb = pending; pending = null; cb(null, buf) } else queue.push(buf)
  }
  return source
}

const streams = new Map()

const commands = {
  create (req, cb) {
    const opts = { keyType: req.keyType || 'rsa' }
    if (opts.keyType === 'rsa') opts.bits = req.bits || 2048
    PeerId.create(opts, (err, id) => {
      if (err) return cb(err)
      const transport = new WebsocketStar({ id })
      transport.discovery.on('peer', (info) => {
        event('peer', { node: req.name, id: info.id.toB58String(), addr: info.multiaddrs.toArray().map(String)[0] })
      })
      nodes.set(req.name, { id, transport, listener: null })
      cb(null, { peerId: id.toB58String() })
    })
  },

  listen (req, cb) {
    const n = node(req.name)
    // Echo every incoming connection, and say when its incoming side ends;
    // with sink: true, only take in what arrives and report its hash.
    const listener = n.transport.createListener((conn) => {
      let bytes = 0
      if (req.sink) {
        const hash = crypto.createHash('sha256')
        pull(pull.empty(), conn)
        pull(conn, pull.drain((buf) => { bytes += buf.length; hash.update(buf) }, (err) => {
          event('sink_end', { node: req.name, bytes, sha256: hash.digest('hex'), error: err && err !== true ? String(err.message || err) : null })
        }))
        return
      }
      pull(
        conn,
        pull.through((buf) => { bytes += buf.length }, (err) => {
          event('echo_end', { node: req.name, bytes, error: err && err !== true ? String(err.message || err) : null })
        }),
        conn
      )
    })
    listener.on('error', (err) => event('listener_error', { node: req.name, error: String(err && err.message) }))
    listener.on('close', () => event('close', { node: req.name }))
    n.listener = listener
    const addr = req.addr || (req.server + '/ipfs/' + n.id.toB58String())
    listener.listen(multiaddr(addr), (err) => {
      if (err) return cb(err)
      cb(null, { addr })
    })
  },

  dial (req, cb) {
    const n = node(req.name)
    const conn = n.transport.dial(multiaddr(req.addr), (err) => {
      if (err) return cb(err)
      pull(pull.empty(), conn, pull.onEnd(() => {}))
      cb(null, {})
    })
  },

  // Dial and write `bytes` random bytes as fast as the connection takes them,
  // then end; the reply gives their hash (the receiving end reports its own).
  dial_send (req, cb) {
    const n = node(req.name)
    const chunk = req.chunk || 65536
    const data = crypto.randomBytes(req.bytes)
    const pieces = []
    for (let i = 0; i < req.bytes; i += chunk) pieces.push(data.slice(i, i + chunk))
    const conn = n.transport.dial(multiaddr(req.addr), (err) => {
      if (err) return cb(err)
      cb(null, { sent: sha256(data) })
    })
    pull(pull.values(pieces), conn, pull.drain())
  },

  dial_echo (req, cb) {
    dialEcho(node(req.name), req.addr, req.bytes, req.chunk || 65536, cb)
  },

  parallel_dial_echo (req, cb) {
    const n = node(req.name)
    const results = []
    let left = req.count
    for (let i = 0; i < req.count; i++) {
      dialEcho(n, req.addr, req.bytes, req.chunk || 65536, (err, res) => {
        results[i] = err ? { error: err.message } : res
        if (--left === 0) cb(null, { results })
      })
    }
  },

  open_stream (req, cb) {
    const n = node(req.name)
    const source = pushable()
    let received = 0
    const conn = n.transport.dial(multiaddr(req.addr), (err) => {
      if (err) return cb(err)
      streams.set(req.stream, source)
      cb(null, {})
    })
    pull(
      source,
      conn,
      pull.drain((buf) => {
        received += buf.length
        event('stream_data', { stream: req.stream, bytes: received })
      }, (err) => {
        event('stream_end', { stream: req.stream, bytes: received, error: err ? String(err.message || err) : null })
      })
    )
  },

  write (req, cb) {
    const source = streams.get(req.stream)
    if (!source) throw new Error('no stream named ' + req.stream)
    source.push(crypto.randomBytes(req.bytes))
    cb(null, {})
  },

  // Leave the rendezvous server abruptly, open connections and all, as a
  // closed browser tab does (listener.close() would wait for them to end).
  drop (req, cb) {
    const n = node(req.name)
    n.listener.io.disconnect()
    cb(null, {})
  },

  close (req, cb) {
    const n = node(req.name)
    if (!n.listener) return cb(null, {})
    n.listener.close(() => cb(null, {}))
  },

  exit (req, cb) {
    cb(null, {})
    setImmediate(() => process.exit(0))
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let req
  try {
    req = JSON.parse(line)
  } catch (e) {
    return event('bad_request', { line })
  }
  let replied = false
  const reply = (err, res) => {
    if (replied) return event('double_reply', { id: req.id, error: err && err.message })
    replied = true
    if (err) send({ id: req.id, ok: false, error: String(err.message || err) })
    else send(Object.assign({ id: req.id, ok: true }, res))
  }
  try {
    const handler = commands[req.cmd]
    if (!handler) throw new Error('unknown command ' + req.cmd)
    handler(req, reply)
  } catch (err) {
    reply(err)
  }
})

process.stdin.on('end', () => process.exit(0))
