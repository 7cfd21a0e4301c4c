// throwaway micro benchmark (not committed)
const io = require('socket.io-client')
const url = process.argv[2]; const N = +process.argv[3] || 20000; const SIZE = +process.argv[4] || 1024
const opts = { transports: ['websocket'], 'force new connection': true }
const a = io(url, opts), b = io(url, opts)
let ready = 0
function go () {
  if (++ready < 2) return
  a.emit('ss-join', '/ip4/1.1.1.1/tcp/1/ws/p2p-websocket-star/ipfs/QmA', '', () => b.emit('ss-join', '/ip4/1.1.1.2/tcp/1/ws/p2p-websocket-star/ipfs/QmB', '', () => {
    b.on('ss-incomming', (id, from, cb) => { b.emit('socket.io-pull-stream.accept.' + id + '.dialer'); cb() })
    let got = 0; let t0
    b.on('socket.io-pull-stream.queue.X.dialer', (d) => { if (++got === N) { const dt = (Date.now() - t0) / 1000; console.log(JSON.stringify({ events: N, secs: dt, rate: Math.round(N / dt) })); process.exit(0) } })
    a.emit('ss-dial', '/ip4/1.1.1.1/tcp/1/ws/p2p-websocket-star/ipfs/QmA', '/ip4/1.1.1.2/tcp/1/ws/p2p-websocket-star/ipfs/QmB', 'X', (err) => {
      if (err) { console.log('dial err', err); process.exit(1) }
      t0 = Date.now(); const buf = Buffer.alloc(SIZE, 1)
      for (let i = 0; i < N; i++) a.emit('socket.io-pull-stream.queue.X.dialer', buf)
    })
  }))
}
a.on('connect', go); b.on('connect', go)
setTimeout(() => { console.log('timeout'); process.exit(2) }, 120000)
