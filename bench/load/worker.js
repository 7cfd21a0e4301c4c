'use strict'

// One load-generator process. bench/run.py starts several of these, sends a
// JSON config as the first line on stdin, then drives them with commands:
//
//   runner -> worker: {"cmd": "go"}, {"cmd": "mark"}, {"cmd": "report"}, {"cmd": "storm"},
//                     {"cmd": "watch", "addr": ...}, {"cmd": "probe", ...}, {"cmd": "exit"}
//   worker -> runner: {"type": "ready"}, {"type": "result", ...}, {"type": "error", "message": ...}
//
// Every socket is a socket.io-client 2 (Engine.IO v3) socket with the websocket
// transport and 'force new connection', as libp2p-websocket-star makes them,
// unless the config says eio: 4 (socket.io-client 4). Times are milliseconds on
// performance.timeOrigin + performance.now(), comparable across processes.

const C = require('./common')

const PS = 'socket.io-pull-stream.'
const ctl = C.control()
let cfg = null

function fail (err) {
  C.send({ type: 'error', message: err && err.stack ? err.stack : String(err) })
  setTimeout(() => process.exit(1), 100)
}
process.on('unhandledRejection', fail)
process.on('uncaughtException', fail)

async function waitCmd (name, timeoutMs) {
  for (;;) {
    const msg = await ctl.next(timeoutMs)
    if (msg.cmd === 'exit') process.exit(0)
    if (msg.cmd === name) return msg
    throw new Error('expected command ' + name + ', got ' + JSON.stringify(msg))
  }
}

async function joinedSocket (ident, addr) {
  const sock = await C.connect(cfg.url, cfg.eio, cfg.timeoutMs)
  await C.join(sock, addr, ident, cfg.timeoutMs)
  return sock
}

async function finish (result) {
  C.send(Object.assign({ type: 'result', cpu: C.cpuSeconds() }, result))
  await waitCmd('exit', cfg.timeoutMs * 10)
}

// ---------------------------------------------------------------- relay

// The raw TCP socket under a socket.io-client socket (websocket transport),
// whose pause() stops the reading as a slow or stalled browser would.
function rawSocket (sock) {
  return sock.io.engine.transport.ws._socket
}

// Read about `rate` bytes a second: after each chunk, stop reading until the
// bytes taken so far are due.
function throttle (sock, rate) {
  const raw = rawSocket(sock)
  let t0 = 0
  let bytes = 0
  let paused = false
  return (n) => {
    if (!t0) t0 = C.now()
    bytes += n
    const wait = t0 + bytes / rate * 1000 - C.now()
    if (wait > 5 && !paused) {
      paused = true
      raw.pause()
      setTimeout(() => { paused = false; raw.resume() }, wait)
    }
  }
}

// Listener peers: accept every incoming dial, count the bytes of the dialer's
// half-stream and note when its end arrives. With `readRate` a listener reads
// about that many bytes a second; with `stall` it stops reading once its first
// chunk has arrived (its stream then never ends here: the runner reads the
// dialer's side).
async function relayListener () {
  const streams = []
  let resolveDone
  const allDone = new Promise((resolve) => { resolveDone = resolve })
  function done () { resolveDone() }
  for (const l of cfg.listeners) {
    const ident = cfg.pool[l.key]
    const sock = await joinedSocket(ident, C.address(ident, l.port))
    const slow = l.readRate ? throttle(sock, l.readRate) : null
    sock.on('ss-incomming', (id, from, cb) => {
      const st = { id, bytes: 0, events: 0, tFirst: 0, tEnd: 0 }
      const half = id + '.dialer'
      sock.on(PS + 'queue.' + half, (data) => {
        if (!st.events) st.tFirst = C.now()
        if (!st.events && l.stall) rawSocket(sock).pause()
        st.events++
        st.bytes += data.length
        if (slow) slow(data.length)
      })
      sock.on(PS + 'error.' + half, (end) => {
        st.tEnd = C.now()
        st.end = end
        sock.off(PS + 'queue.' + half)
        sock.off(PS + 'error.' + half)
        streams.push(st)
        if (streams.length === cfg.expectStreams) done()
      })
      // our own half: end it at once (nothing to send back); a stalled
      // listener keeps it open, as a duplex stream would, so that the cut
      // can reach the dialer on it
      if (!l.stall) {
        sock.once(PS + 'accept.' + id + '.listener', () => sock.emit(PS + 'error.' + id + '.listener', true))
      }
      sock.emit(PS + 'accept.' + half)
      cb()
    })
  }
  C.send({ type: 'ready' })
  await waitCmd('go', cfg.timeoutMs * 10)
  const timer = setTimeout(() => resolveDone(), cfg.runTimeoutMs)
  await allDone
  clearTimeout(timer)
  await finish({ streams })
}

// Dialer peers: each stream dials its listener, then sends size bytes in
// chunk-byte chunks and ends the stream.
async function relayDialer () {
  const socks = []
  for (const d of cfg.dialers) {
    const ident = cfg.pool[d.key]
    const addr = C.address(ident, d.port)
    socks.push({ sock: await joinedSocket(ident, addr), addr, streams: d.streams })
  }
  C.send({ type: 'ready' })
  await waitCmd('go', cfg.timeoutMs * 10)
  const tGo = C.now()
  const errors = []
  const cuts = []
  const jobs = []
  for (const s of socks) {
    for (const st of s.streams) {
      jobs.push((async () => {
        const ack = await C.emitAck(s.sock, cfg.timeoutMs, 'ss-dial', s.addr, st.to, st.id)
        if (ack[0]) {
          errors.push(C.errText(ack[0]))
          return
        }
        const half = st.id + '.dialer'
        if (st.watchCut) {
          // Take the listener's half, as a real dialer does, to hear of a cut.
          s.sock.on(PS + 'error.' + st.id + '.listener', (end) => {
            if (end !== true) cuts.push({ id: st.id, t: C.now(), error: C.errText(end) })
          })
          s.sock.emit(PS + 'accept.' + st.id + '.listener')
        }
        const chunk = Buffer.alloc(st.chunk, 0x5a)
        let left = st.size
        // yield to the event loop every so often so acks and pings get through
        let n = 0
        while (left > 0) {
          const c = left >= chunk.length ? chunk : chunk.subarray(0, left)
          s.sock.emit(PS + 'queue.' + half, c)
          left -= c.length
          if (++n % 64 === 0) await new Promise(setImmediate)
        }
        s.sock.emit(PS + 'error.' + half, true)
      })().catch((e) => errors.push(String(e.message || e))))
    }
  }
  await Promise.all(jobs)
  const tSent = C.now()
  if (cfg.waitCutMs) {
    // Until every watched stream was cut, or the time is up.
    const watched = socks.reduce((n, s) => n + s.streams.filter((st) => st.watchCut).length, 0)
    const until = tGo + cfg.waitCutMs
    while (cuts.length < watched && C.now() < until) await C.sleep(50)
  }
  await finish({ tGo, tSent, errors, cuts })
}

// ---------------------------------------------------------------- dials

// Listener peers for the dial scenario: accept, wait for the dialer's byte and
// for the server's accept of our half, echo the byte back and end both.
async function dialListener () {
  let answered = 0
  for (const l of cfg.listeners) {
    const ident = cfg.pool[l.key]
    const sock = await joinedSocket(ident, C.address(ident, l.port))
    sock.on('ss-incomming', (id, from, cb) => {
      const st = { data: null, accepted: false }
      const inQ = PS + 'queue.' + id + '.dialer'
      const inE = PS + 'error.' + id + '.dialer'
      const outA = PS + 'accept.' + id + '.listener'
      const maybeEcho = () => {
        if (!st.accepted || !st.data) return
        sock.emit(PS + 'queue.' + id + '.listener', st.data)
        sock.emit(PS + 'error.' + id + '.listener', true)
        answered++
      }
      sock.on(inQ, (data) => {
        if (!st.data) {
          st.data = data
          maybeEcho()
        }
      })
      sock.on(inE, () => {
        sock.off(inQ)
        sock.off(inE)
      })
      sock.once(outA, () => {
        st.accepted = true
        maybeEcho()
      })
      sock.emit(PS + 'accept.' + id + '.dialer')
      cb()
    })
  }
  C.send({ type: 'ready' })
  await waitCmd('go', cfg.timeoutMs * 10)
  await waitCmd('stop', cfg.runTimeoutMs + cfg.timeoutMs * 10)
  await finish({ answered })
}

// Dialer peers: `inflight` dials at a time per socket until `count` dials are
// done; a dial is done when the 1-byte echo and the end of the listener's half
// have arrived. Latency: ss-dial sent -> echo received.
async function dialDialer () {
  const socks = []
  for (const d of cfg.dialers) {
    const ident = cfg.pool[d.key]
    const addr = C.address(ident, d.port)
    socks.push({ sock: await joinedSocket(ident, addr), addr, to: d.to })
  }
  C.send({ type: 'ready' })
  await waitCmd('go', cfg.timeoutMs * 10)
  const tGo = C.now()
  const deadline = tGo + cfg.runTimeoutMs
  const latencies = []
  const errors = {}
  let started = 0
  let seq = 0
  const payload = Buffer.from([0x2a])

  function oneDial (s) {
    const id = cfg.tag + '-' + (seq++)
    const inQ = PS + 'queue.' + id + '.listener'
    const inE = PS + 'error.' + id + '.listener'
    return new Promise((resolve) => {
      const t0 = C.now()
      let tEcho = 0
      const timer = setTimeout(() => finishDial('dial timed out (runner)'), cfg.timeoutMs)
      function finishDial (err) {
        clearTimeout(timer)
        s.sock.off(inQ)
        s.sock.off(inE)
        if (err) errors[err] = (errors[err] || 0) + 1
        else latencies.push(tEcho - t0)
        resolve()
      }
      s.sock.on(inQ, () => { if (!tEcho) tEcho = C.now() })
      s.sock.on(inE, (end) => finishDial(end === true && tEcho ? null : 'bad end: ' + C.errText(end)))
      s.sock.emit('ss-dial', s.addr, s.to, id, (err) => {
        if (err) return finishDial(C.errText(err))
        s.sock.emit(PS + 'accept.' + id + '.listener')
        s.sock.emit(PS + 'queue.' + id + '.dialer', payload)
        s.sock.emit(PS + 'error.' + id + '.dialer', true)
      })
    })
  }

  const loops = []
  for (const s of socks) {
    for (let k = 0; k < cfg.inflight; k++) {
      loops.push((async () => {
        while (started < cfg.count && C.now() < deadline) {
          started++
          await oneDial(s)
        }
      })())
    }
  }
  await Promise.all(loops)
  await finish({ tGo, tEnd: C.now(), latencies, errors })
}

// ---------------------------------------------------------------- joins

// Persistent sockets; each joins (challenge and answer), leaves, and joins
// again with the next identity of the pool. Latency: first ss-join sent ->
// final ack.
async function joinLoop () {
  const socks = []
  for (let k = 0; k < cfg.sockets; k++) socks.push(await C.connect(cfg.url, cfg.eio, cfg.timeoutMs))
  C.send({ type: 'ready' })
  await waitCmd('go', cfg.timeoutMs * 10)
  const tGo = C.now()
  const deadline = tGo + cfg.runTimeoutMs
  const latencies = []
  const errors = {}
  let n = 0
  await Promise.all(socks.map(async (sock) => {
    while (n < cfg.count && C.now() < deadline) {
      const { ident, addr } = C.poolAddress(cfg.pool, cfg.offset + (n++) * cfg.stride)
      const t0 = C.now()
      try {
        await C.join(sock, addr, ident, cfg.timeoutMs)
        latencies.push(C.now() - t0)
        sock.emit('ss-leave', addr)
      } catch (e) {
        const m = String(e.message || e)
        errors[m] = (errors[m] || 0) + 1
        if (!sock.connected) return
      }
    }
  }))
  await finish({ tGo, tEnd: C.now(), latencies, errors })
}

// ---------------------------------------------------------------- scale

// Holds cfg.count joined peers; counts the ws-peer events they receive. The
// runner marks the start of a window, asks for a report at its end, and can
// ask every peer to note when a given address is first announced to it.
async function scaleHolder () {
  const peers = []
  let received = 0
  let watch = null
  let watchTimes = []
  let disconnected = 0
  const errors = {}
  const tStart = C.now()
  const joinDeadline = tStart + cfg.joinTimeoutMs
  const idx = Array.from({ length: cfg.count }, (_, k) => cfg.offset + k * cfg.stride)
  await C.pool(idx, cfg.concurrency, async (n) => {
    if (C.now() > joinDeadline) {
      errors['join phase deadline'] = (errors['join phase deadline'] || 0) + 1
      return
    }
    const { ident, addr } = C.poolAddress(cfg.pool, n)
    // a busy server may time a connection out: try again while there is time
    for (let attempt = 0; attempt < 3 && C.now() < joinDeadline; attempt++) {
      let sock
      try {
        sock = await C.connect(cfg.url, cfg.eio, cfg.timeoutMs)
        const p = { sock, addr, gotWatch: false }
        sock.on('ws-peer', (a) => {
          received++
          if (watch !== null && a === watch && !p.gotWatch) {
            p.gotWatch = true
            watchTimes.push(C.now())
          }
        })
        sock.on('disconnect', () => { disconnected++ })
        await C.join(sock, addr, ident, cfg.timeoutMs)
        peers.push(p)
        return
      } catch (e) {
        const m = String(e.message || e)
        errors[m] = (errors[m] || 0) + 1
        if (sock) sock.close()
      }
    }
  })
  C.send({ type: 'ready', joined: peers.length, tJoined: C.now(), tStart, errors })
  for (;;) {
    const msg = await ctl.next(cfg.runTimeoutMs)
    if (msg.cmd === 'exit') process.exit(0)
    if (msg.cmd === 'mark') {
      received = 0
      C.send({ type: 'marked', t: C.now(), cpu: C.cpuSeconds() })
    } else if (msg.cmd === 'report') {
      const connected = peers.filter((p) => p.sock.connected).length
      C.send({ type: 'report', t: C.now(), cpu: C.cpuSeconds(), received, connected, peers: peers.length, disconnected })
    } else if (msg.cmd === 'watch') {
      watch = msg.addr
      watchTimes = []
      for (const p of peers) p.gotWatch = false
      C.send({ type: 'watching' })
    } else if (msg.cmd === 'watched') {
      const connected = peers.filter((p) => p.sock.connected).length
      C.send({ type: 'watched', times: watchTimes, connected })
    } else if (msg.cmd === 'probe') {
      // join one more peer; report when its signed answer was sent
      const { ident, addr } = C.poolAddress(cfg.pool, msg.n)
      try {
        const sock = await C.connect(cfg.url, cfg.eio, cfg.timeoutMs * 4)
        const t0 = C.now()
        const r = await C.join(sock, addr, ident, cfg.timeoutMs * 4)
        peers.push({ sock, addr, gotWatch: true })
        C.send({ type: 'probed', addr, t0, tSig: r.tSig, tAck: C.now(), peersListed: r.peers.length })
      } catch (e) {
        C.send({ type: 'probed', addr, error: String(e.message || e) })
      }
    } else {
      throw new Error('unknown command ' + JSON.stringify(msg))
    }
  }
}

// ---------------------------------------------------------------- formation

// Forms a swarm: on 'go', joins cfg.count peers, cfg.concurrency at a time,
// and reports when all are in. On 'storm', drops every socket at once and
// brings each back at its own random moment within cfg.spreadMs, as browsers
// do after a server restart, and reports when all have rejoined. Counts the
// ws-peer events received (each is parsed by socket.io-client, as a real
// client's would be).
async function formation () {
  const idx = Array.from({ length: cfg.count }, (_, k) => cfg.offset + k * cfg.stride)
  const socks = new Map()
  let received = 0
  let errors = {}
  async function bring (n) {
    const { ident, addr } = C.poolAddress(cfg.pool, n)
    for (let attempt = 0; attempt < 3; attempt++) {
      let sock
      try {
        sock = await C.connect(cfg.url, cfg.eio, cfg.timeoutMs)
        sock.on('ws-peer', () => { received++ })
        await C.join(sock, addr, ident, cfg.timeoutMs)
        socks.set(n, sock)
        return
      } catch (e) {
        const m = String(e.message || e)
        errors[m] = (errors[m] || 0) + 1
        if (sock) sock.close()
      }
    }
  }
  const connected = () => [...socks.values()].filter((s) => s.connected).length
  C.send({ type: 'ready' })
  await waitCmd('go', cfg.runTimeoutMs)
  const t0 = C.now()
  await C.pool(idx, cfg.concurrency, bring)
  C.send({ type: 'formed', t0, t1: C.now(), joined: socks.size, received, errors })
  await waitCmd('storm', cfg.runTimeoutMs)
  for (const s of socks.values()) s.close()
  socks.clear()
  errors = {}
  received = 0
  const tDrop = C.now()
  await Promise.all(idx.map(async (n) => {
    await C.sleep(Math.random() * cfg.spreadMs)
    await bring(n)
  }))
  C.send({ type: 'rejoined', t0: tDrop, t1: C.now(), joined: socks.size, received, errors })
  await waitCmd('report', cfg.runTimeoutMs)
  C.send({ type: 'report', connected: connected(), joined: socks.size })
  await waitCmd('exit', cfg.runTimeoutMs)
}

// ---------------------------------------------------------------- churn

// `concurrency` loops each: new socket, join, disconnect; `count` cycles.
async function churn () {
  C.send({ type: 'ready' })
  await waitCmd('go', cfg.timeoutMs * 10)
  const tGo = C.now()
  const deadline = tGo + cfg.runTimeoutMs
  const latencies = []
  const errors = {}
  let n = 0
  const loops = []
  for (let k = 0; k < cfg.concurrency; k++) {
    loops.push((async () => {
      while (n < cfg.count && C.now() < deadline) {
        const { ident, addr } = C.poolAddress(cfg.pool, cfg.offset + (n++) * cfg.stride)
        const t0 = C.now()
        let sock
        try {
          sock = await C.connect(cfg.url, cfg.eio, cfg.timeoutMs)
          await C.join(sock, addr, ident, cfg.timeoutMs)
          latencies.push(C.now() - t0)
        } catch (e) {
          const m = String(e.message || e)
          errors[m] = (errors[m] || 0) + 1
        } finally {
          if (sock) sock.close()
        }
      }
    })())
  }
  await Promise.all(loops)
  await finish({ tGo, tEnd: C.now(), latencies, errors })
}

// ---------------------------------------------------------------- main

const roles = {
  'relay-listener': relayListener,
  'relay-dialer': relayDialer,
  'dial-listener': dialListener,
  'dial-dialer': dialDialer,
  join: joinLoop,
  'scale-holder': scaleHolder,
  formation,
  churn
}

async function main () {
  cfg = await ctl.next(30000)
  cfg.eio = cfg.eio || 3
  cfg.timeoutMs = cfg.timeoutMs || 20000
  cfg.runTimeoutMs = cfg.runTimeoutMs || 120000
  cfg.pool = C.loadIdentities(cfg.keys)
  // hard stop whatever happens
  setTimeout(() => {
    C.send({ type: 'error', message: 'worker lifetime exceeded' })
    process.exit(4)
  }, cfg.lifetimeMs || 900000).unref()
  const role = roles[cfg.role]
  if (!role) throw new Error('unknown role ' + cfg.role)
  await role()
  process.exit(0)
}

main().catch(fail)
