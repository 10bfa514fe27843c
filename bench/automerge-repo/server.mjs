// The automerge-repo reference sync server, as `automerge-repo-sync-server` runs it: one Repo
// with a WebSocket server adapter and the Node filesystem storage adapter, sharing nothing
// unasked (`sharePolicy` false), keeping every document a peer syncs.
//
//   node server.mjs <storage dir> <port>
//
// Prints `listening <port>` once it accepts connections. Run by storm.mjs as its own
// process; see docs/perf.md, "Against the automerge-repo reference server".
import http from "node:http"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const [dir, port] = process.argv.slice(2)
if (!dir || !port) {
  console.error("usage: node server.mjs <storage dir> <port>")
  process.exit(2)
}

const wss = new WebSocketServer({ noServer: true })
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain" })
  res.end("automerge-repo sync server\n")
})
server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, ws => wss.emit("connection", ws, request))
})

const repo = new Repo({
  network: [new WebSocketServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: "reference-sync-server", // storm.mjs finds the server's storage id under this name
  sharePolicy: async () => false,
})

server.listen(Number(port), "127.0.0.1", () => {
  console.log(`listening ${port}`)
})
