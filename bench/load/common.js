'use strict'

// Shared pieces of the load generator: identities (libp2p key encoding and
// peer ids with Node's crypto only), socket.io connections of both protocol
// generations, acked emits with timeouts, the WebSocketStar join with the
// crypto challenge, and the line protocol spoken with bench/run.py.

const crypto = require('crypto')
const fs = require('fs')
const readline = require('readline')

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

function base58btc (buf) {
  let zeros = 0
  while (zeros < buf.length && buf[zeros] === 0) zeros++
  let n = BigInt('0x' + (buf.length ? buf.toString('hex') : '0'))
  let out = ''
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out
    n /= 58n
  }
  return '1'.repeat(zeros) + out
}

function varint (n) {
  const bytes = []
  while (n >= 0x80) {
    bytes.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  bytes.push(n)
  return Buffer.from(bytes)
}

// marshalled PublicKey protobuf: 08 <type> 12 <varint len> <data>
function marshalPublicKey (type, data) {
  return Buffer.concat([Buffer.from([0x08, type, 0x12]), varint(data.length), data])
}

function identityFromPrivateKey (type, privateKey) {
  const spki = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  let marshalled
  let multihash
  if (type === 'ed25519') {
    marshalled = marshalPublicKey(1, spki.subarray(spki.length - 32))
    // identity multihash: 00 <len> <bytes>
    multihash = Buffer.concat([Buffer.from([0x00, marshalled.length]), marshalled])
  } else if (type === 'rsa') {
    marshalled = marshalPublicKey(0, spki)
    const digest = crypto.createHash('sha256').update(marshalled).digest()
    multihash = Buffer.concat([Buffer.from([0x12, 0x20]), digest])
  } else {
    throw new Error('unknown key type ' + type)
  }
  return { type, id: base58btc(multihash), pubHex: marshalled.toString('hex'), key: privateKey }
}

function generateIdentity (type) {
  const opts = type === 'rsa' ? { modulusLength: 2048 } : undefined
  const { privateKey } = crypto.generateKeyPairSync(type, opts)
  return identityFromPrivateKey(type, privateKey)
}

function exportIdentity (ident) {
  return {
    type: ident.type,
    id: ident.id,
    pkcs8: ident.key.export({ type: 'pkcs8', format: 'der' }).toString('base64')
  }
}

function loadIdentities (file) {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'))
  return raw.map((r) => {
    const key = crypto.createPrivateKey({ key: Buffer.from(r.pkcs8, 'base64'), format: 'der', type: 'pkcs8' })
    const ident = identityFromPrivateKey(r.type, key)
    if (ident.id !== r.id) throw new Error('key cache is inconsistent: ' + r.id)
    return ident
  })
}

function sign (ident, nonce) {
  const data = Buffer.from(nonce, 'utf8')
  const sig = ident.type === 'rsa' ? crypto.sign('sha256', data, ident.key) : crypto.sign(null, data, ident.key)
  return sig.toString('hex')
}

function address (ident, port) {
  return '/ip4/127.0.0.1/tcp/' + port + '/ws/p2p-websocket-star/ipfs/' + ident.id
}

// n-th address of a pool: distinct for up to pool.length * 65535 values of n
function poolAddress (pool, n) {
  const ident = pool[n % pool.length]
  const port = 1 + (Math.floor(n / pool.length) % 65535)
  return { ident, addr: address(ident, port) }
}

function now () {
  return performance.timeOrigin + performance.now()
}

function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

let ioV2 = null
let ioV4 = null

function connect (url, eio, timeoutMs) {
  let sock
  if (eio === 4) {
    if (!ioV4) ioV4 = require('socket.io-client-v4')
    sock = ioV4(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: timeoutMs })
  } else {
    if (!ioV2) ioV2 = require('socket.io-client')
    sock = ioV2(url, {
      transports: ['websocket'],
      'force new connection': true,
      reconnection: false,
      timeout: timeoutMs
    })
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.close()
      reject(new Error('connect timed out'))
    }, timeoutMs)
    sock.once('connect', () => {
      clearTimeout(timer)
      resolve(sock)
    })
    const fail = (err) => {
      clearTimeout(timer)
      sock.close()
      reject(new Error('connect failed: ' + (err && err.message ? err.message : err)))
    }
    sock.once('connect_error', fail)
    sock.once('connect_timeout', fail)
  })
}

function emitAck (sock, timeoutMs, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(args[0] + ' ack timed out')), timeoutMs)
    sock.emit(...args, (...reply) => {
      clearTimeout(timer)
      resolve(reply)
    })
  })
}

function errText (e) {
  return typeof e === 'string' ? e : JSON.stringify(e)
}

// ss-join with the crypto challenge; resolves to { peers, tSig } where tSig is
// when the signed answer was sent
async function join (sock, addr, ident, timeoutMs) {
  const first = await emitAck(sock, timeoutMs, 'ss-join', addr, ident.pubHex)
  if (first[0]) throw new Error('join refused: ' + errText(first[0]))
  if (typeof first[1] !== 'string') throw new Error('no challenge nonce (is the challenge on?)')
  const sig = sign(ident, first[1])
  const tSig = now()
  const second = await emitAck(sock, timeoutMs, 'ss-join', addr, sig)
  if (second[0]) throw new Error('join failed: ' + errText(second[0]))
  return { peers: second[2] || [], tSig }
}

// Line protocol with the runner: one JSON object per line both ways.
function send (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function control () {
  const queue = []
  const waiting = []
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    if (!line.trim()) return
    const msg = JSON.parse(line)
    const w = waiting.shift()
    if (w) w(msg)
    else queue.push(msg)
  })
  // the runner went away: leave at once
  rl.on('close', () => process.exit(3))
  return {
    next (timeoutMs) {
      if (queue.length) return Promise.resolve(queue.shift())
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiting.indexOf(done)
          if (i >= 0) waiting.splice(i, 1)
          reject(new Error('no command from the runner within ' + timeoutMs + ' ms'))
        }, timeoutMs)
        function done (msg) {
          clearTimeout(timer)
          resolve(msg)
        }
        waiting.push(done)
      })
    }
  }
}

function cpuSeconds () {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

// run fn over items with at most `limit` in flight
async function pool (items, limit, fn) {
  let i = 0
  const runners = []
  for (let k = 0; k < Math.min(limit, items.length); k++) {
    runners.push((async () => {
      while (i < items.length) {
        const item = items[i++]
        await fn(item)
      }
    })())
  }
  await Promise.all(runners)
}

module.exports = {
  base58btc,
  generateIdentity,
  exportIdentity,
  loadIdentities,
  identityFromPrivateKey,
  sign,
  address,
  poolAddress,
  now,
  sleep,
  connect,
  emitAck,
  join,
  errText,
  send,
  control,
  cpuSeconds,
  pool
}
