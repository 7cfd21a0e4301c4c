'use strict'

// node keys.js OUT.json TYPE COUNT
// Generates COUNT private keys of TYPE (ed25519 or rsa, RSA-2048) and writes
// them with their peer ids; bench/run.py caches the file in bench/.scratch.

const crypto = require('crypto')
const fs = require('fs')
const { identityFromPrivateKey, exportIdentity } = require('./common')

async function main () {
  const [out, type, countText] = process.argv.slice(2)
  const count = parseInt(countText, 10)
  if (!out || !['ed25519', 'rsa'].includes(type) || !(count > 0)) {
    console.error('usage: node keys.js OUT.json ed25519|rsa COUNT')
    process.exit(2)
  }
  const opts = type === 'rsa' ? { modulusLength: 2048 } : undefined
  const gen = () => new Promise((resolve, reject) => {
    crypto.generateKeyPair(type, opts, (err, _pub, privateKey) => err ? reject(err) : resolve(privateKey))
  })
  const keys = []
  // the libuv thread pool generates several at once
  while (keys.length < count) {
    const batch = Math.min(8, count - keys.length)
    const made = await Promise.all(Array.from({ length: batch }, gen))
    for (const k of made) keys.push(exportIdentity(identityFromPrivateKey(type, k)))
  }
  fs.writeFileSync(out + '.tmp', JSON.stringify(keys))
  fs.renameSync(out + '.tmp', out)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
