'use strict'
// Whole libp2p@0.25 nodes (libp2p-websocket-star@0.10.2 transport and
// discovery, mplex, secio), as js-ipfs of that time ran them.
//
//   node swarm.js <ws-star server multiaddr> <nodes> <together|sequential>
//
// Creates the nodes, starts them (all at once, or each once the one before
// has started), prints {"ms": …} when every node is connected to every other
// (ms from the first start; null after 20 s), and exits, which drops every
// connection at once, as closing the browser tabs would.
const Libp2p = require('libp2p')
const WStar = require('libp2p-websocket-star')
const Mplex = require('libp2p-mplex')
const SECIO = require('libp2p-secio')
const PeerInfo = require('peer-info')
const PeerId = require('peer-id')

const [server, count, mode] = [process.argv[2], Number(process.argv[3]), process.argv[4]]
const GIVE_UP_MS = 20000

function make (cb) {
  PeerId.create({ keyType: 'ed25519' }, (err, id) => {
    if (err) return cb(err)
    const info = new PeerInfo(id)
    info.multiaddrs.add(server)
    const ws = new WStar({ id })
    cb(null, new Libp2p({
      peerInfo: info,
      modules: { transport: [ws], streamMuxer: [Mplex], connEncryption: [SECIO], peerDiscovery: [ws.discovery] },
      config: { peerDiscovery: { autoDial: true, websocketStar: { enabled: true } } }
    }))
  })
}

function makeAll (n, cb) {
  const nodes = []
  let made = 0
  for (let i = 0; i < n; i++) {
    make((err, node) => {
      if (err) throw err
      nodes[i] = node
      if (++made === n) cb(nodes)
    })
  }
}

makeAll(count, (nodes) => {
  const ids = new Set(nodes.map((n) => n.peerInfo.id.toB58String()))
  const connected = nodes.map(() => new Set())
  const finish = (ms) => {
    console.log(JSON.stringify({ ms, connected: connected.map((s) => s.size) }))
    process.exit(ms === null ? 1 : 0)
  }
  const t0 = Date.now()
  setTimeout(() => finish(null), GIVE_UP_MS)
  nodes.forEach((n, i) => n.on('peer:connect', (peer) => {
    const id = peer.id.toB58String()
    if (ids.has(id)) connected[i].add(id)
    if (connected.every((s) => s.size >= count - 1)) finish(Date.now() - t0)
  }))
  const start = (i) => nodes[i].start((err) => {
    if (err) throw err
    if (mode === 'sequential' && i + 1 < count) start(i + 1)
  })
  if (mode === 'sequential') start(0)
  else nodes.forEach((_, i) => start(i))
})
