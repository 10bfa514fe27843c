// The reconnect storm of `server/examples/bench_storm.rs`, against the automerge-repo reference
// sync server (server.mjs) instead of doorstep's:
//
//   node storm.mjs [PHONES…] [--limit SECONDS] [--grace SECONDS] [--port PORT]
//
// (default: storms of 100 and 300 phones, one after another on one server, each with its own
// phones; a storm gives up after --limit seconds, 600 by default; the server is killed --grace
// seconds after the last storm, 0 by default as doorstep's is) → prints a table and writes
// ../../target/bench/automerge-repo-storm.json.
//
// The same workload as doorstep's benchmark. The server runs as its own process. Every phone
// (an automerge-repo Repo in this process, in memory, as doorstep's phones are core replicas
// over in-memory stores) holds three documents of one building the server already has — the
// field document with the roll of 28 units, the work orders and the building's households —
// and records a day offline: 86 one-action changes (28 visits, 25 ballots with 7 candidates
// each and 25 deliveries in the field document, 5 work orders, 3 household corrections). Then
// every phone of the storm connects at once. A phone is done when the server's heads for all
// three of its documents are the phone's own (automerge-repo's sync info for the server's
// storage id): the reference server has no durable acknowledgement, so this is when the
// changes reached its memory, earlier than doorstep's "committed". After the last storm the
// server is killed (SIGKILL), as doorstep's is, and its storage directory is loaded to count the
// (phone, document) pairs missing a change. Server CPU is utime + stime from /proc/PID/stat.
import { spawn } from "node:child_process"
import crypto from "node:crypto"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const here = path.dirname(fileURLToPath(import.meta.url))
const UNITS = 28
const DAY = { visits: 28, ballots: 25, deliveries: 25, orders: 5, householdEdits: 3 }
const CLOCK_TICKS = 100 // sysconf(_SC_CLK_TCK) on Linux
const SERVER = "reference-sync-server" // server.mjs's peer id

// The reference client's WebSocket has no 'error' listener while it connects, so a connection the
// server resets under load throws in this process; the adapter reconnects on its own (after its
// retry interval), so a reset is counted and the storm goes on.
const resets = { count: 0 }
process.on("uncaughtException", e => {
  if (["ECONNRESET", "ECONNREFUSED", "EPIPE"].includes(e.code)) {
    resets.count++
    return
  }
  console.error(e)
  process.exit(1)
})

function parseArgs(argv) {
  const args = { sizes: [], limit: 600, grace: 0, port: 18300 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === "--limit") args.limit = Number(argv[++i])
    else if (arg === "--port") args.port = Number(argv[++i])
    else if (arg === "--grace") args.grace = Number(argv[++i])
    else if (/^\d+$/.test(arg)) args.sizes.push(Number(arg))
    else throw new Error(`unknown argument ${arg}`)
  }
  if (args.sizes.length === 0) args.sizes = [100, 300]
  return args
}

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  // The fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** The process's peak resident memory in MiB (VmHWM). */
function peakRssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)[1])
  return kb / 1024
}

function startServer(dir, port) {
  const child = spawn(process.execPath, [path.join(here, "server.mjs"), dir, String(port)], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  return new Promise((resolve, reject) => {
    let out = ""
    child.stdout.on("data", chunk => {
      out += chunk
      if (/listening \d+/.test(out)) resolve(child)
    })
    child.on("exit", code => reject(new Error(`the server exited (${code}) before listening`)))
  })
}

/** The three documents of one building as the server holds them before the day. */
function buildingDocs(building) {
  const roll = {}
  const households = {}
  for (let u = 0; u < UNITS; u++) {
    const unit = `${building}-${1 + Math.floor(u / 14)}-${101 + (u % 14)}`
    roll[unit] = {
      unit,
      voter_key: `vk-${building}-${u}`,
      area_m2: "89.50",
      owners: [`业主${u}`],
    }
    households[unit] = {
      unit,
      residents: 3,
      contact: `1380000${String(u).padStart(4, "0")}`,
      notes: "",
    }
  }
  return {
    field: { campaign: "election-2025", building, roll, visits: {}, ballots: {}, deliveries: {} },
    orders: { building, orders: {} },
    building: { building, households },
  }
}

/** Resolves when the server's storage reported `handle`'s heads equal to `heads` (the sync
 * info automerge-repo keeps under the storage id the server announced when it connected). */
function whenServerHas(repo, handle, heads) {
  const want = [...heads].sort().join()
  const has = () => {
    const storageId = repo.getStorageIdOfPeer(SERVER)
    if (storageId === undefined) return false
    const info = handle.getSyncInfo(storageId)
    return info !== undefined && [...info.lastHeads].sort().join() === want
  }
  if (has()) return Promise.resolve()
  return new Promise(resolve => {
    const check = () => {
      if (has()) {
        handle.off("remote-heads", check)
        resolve()
      }
    }
    handle.on("remote-heads", check)
  })
}

/** Put every building's documents on the server through one connected repo; their bytes. */
async function seed(url, count, firstBuilding) {
  const repo = new Repo({ network: [new WebSocketClientAdapter(url)], peerId: `seeder-${firstBuilding}`, sharePolicy: async () => true })
  const buildings = []
  for (let b = 0; b < count; b++) {
    const docs = buildingDocs(firstBuilding + b)
    const handles = {}
    for (const [kind, value] of Object.entries(docs)) handles[kind] = repo.create(value)
    buildings.push(handles)
  }
  await Promise.all(
    buildings.flatMap(handles => Object.values(handles).map(h => whenServerHas(repo, h, h.heads()))),
  )
  const out = buildings.map(handles =>
    Object.fromEntries(
      Object.entries(handles).map(([kind, h]) => [kind, { id: h.documentId, bytes: A.save(h.doc()) }]),
    ),
  )
  await repo.shutdown()
  return out
}

/** A phone: its own repo holding one building's documents, with a day of work done offline. */
function phoneWithDay(i, docs) {
  const repo = new Repo({ network: [], peerId: `phone-${i}`, sharePolicy: async () => true })
  const handles = {}
  for (const [kind, { id, bytes }] of Object.entries(docs)) handles[kind] = repo.import(bytes, { docId: id })
  const units = Object.keys(handles.field.doc().roll)
  const now = () => new Date().toISOString()
  const device = `device-${i}`
  for (let v = 0; v < DAY.visits; v++) {
    const id = crypto.randomUUID()
    const unit = units[v % units.length]
    handles.field.change(d => {
      d.visits[id] = { id, unit, outcome: v % 3 === 0 ? "not_home" : "collected", note: "", at: now(), by: `head-${i}`, device }
    })
  }
  for (let b = 0; b < DAY.ballots; b++) {
    const id = crypto.randomUUID()
    const unit = units[b]
    const candidates = {}
    for (let c = 1; c <= 7; c++) candidates[`cand-${c}`] = "yes"
    handles.field.change(d => {
      d.ballots[id] = { id, unit, voter_key: d.roll[unit].voter_key, answers: { q1: { candidates } }, at: now(), by: `head-${i}`, device }
    })
  }
  for (let o = 0; o < DAY.orders; o++) {
    const id = crypto.randomUUID()
    handles.orders.change(d => {
      d.orders[id] = { id, unit: units[o], title: "楼道灯不亮", detail: "三楼到四楼", events: [{ to: "open", at: now(), by: `head-${i}` }] }
    })
  }
  for (let x = 0; x < DAY.deliveries; x++) {
    const id = crypto.randomUUID()
    const unit = units[x % units.length]
    handles.field.change(d => {
      d.deliveries[id] = { id, unit, at: now(), by: `head-${i}`, device }
    })
  }
  for (let h = 0; h < DAY.householdEdits; h++) {
    handles.building.change(d => {
      d.households[units[h]].residents = 2 + h
    })
  }
  return { repo, handles }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

async function storm(url, serverPid, phones, limit) {
  const cpu0 = cpuSeconds(serverPid)
  const resets0 = resets.count
  const phonesCpu0 = process.cpuUsage()
  const t0 = performance.now()
  const done = []
  const waits = phones.map(async phone => {
    phone.repo.networkSubsystem.addNetworkAdapter(new WebSocketClientAdapter(url))
    await Promise.all(Object.values(phone.handles).map(h => whenServerHas(phone.repo, h, h.heads())))
    done.push(performance.now() - t0)
  })
  let timer
  const limited = new Promise(resolve => {
    timer = setTimeout(resolve, limit * 1000)
  })
  await Promise.race([Promise.all(waits), limited])
  clearTimeout(timer)
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuSeconds(serverPid) - cpu0
  const phonesCpu = process.cpuUsage(phonesCpu0)
  done.sort((a, b) => a - b)
  return {
    phones: phones.length,
    done: done.length,
    seconds,
    phones_per_s: done.length / seconds,
    p50_ms: percentile(done, 50),
    p99_ms: percentile(done, 99),
    server_cpu_s: cpu,
    server_cpu_per_phone_ms: done.length ? (cpu * 1000) / done.length : null,
    // This process's CPU during the storm: is the server or the phones' side the bottleneck?
    phones_process_cpu_s: (phonesCpu.user + phonesCpu.system) / 1e6,
    connections_reset: resets.count - resets0,
  }
}

/** The (phone, document) pairs whose changes the server's storage does not hold. */
async function lostAfterKill(dir, phones) {
  const repo = new Repo({ storage: new NodeFSStorageAdapter(dir), network: [], peerId: "verifier" })
  let lost = 0
  let checked = 0
  for (const phone of phones) {
    for (const handle of Object.values(phone.handles)) {
      checked++
      let stored
      try {
        stored = await repo.find(handle.documentId)
      } catch {
        lost++
        continue
      }
      if (!A.hasHeads(stored.doc(), A.getHeads(handle.doc()))) lost++
    }
  }
  await repo.shutdown()
  return { checked, lost }
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "automerge-repo-storm-"))
  const child = await startServer(dir, args.port)
  const url = `ws://127.0.0.1:${args.port}`
  const rows = []
  const everyPhone = []
  let building = 0
  try {
    for (const size of args.sizes) {
      const seedStart = performance.now()
      const docs = await seed(url, size, building)
      building += size
      const phones = docs.map((d, i) => phoneWithDay(everyPhone.length + i, d))
      console.error(`${size} phones ready in ${((performance.now() - seedStart) / 1000).toFixed(1)} s; storm`)
      const row = await storm(url, child.pid, phones, args.limit)
      row.server_peak_rss_mib = peakRssMiB(child.pid)
      rows.push(row)
      everyPhone.push(...phones)
      for (const phone of phones) phone.repo.networkSubsystem.disconnect()
    }
    await new Promise(resolve => setTimeout(resolve, args.grace * 1000))
  } finally {
    child.kill("SIGKILL")
  }
  await new Promise(resolve => child.once("exit", resolve))
  const verified = await lostAfterKill(dir, everyPhone)
  console.log("| phones | done | in | phones / s | p50 / p99 | server CPU | per phone | server peak RSS | phones' process CPU | connections reset |")
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  for (const r of rows) {
    console.log(
      `| ${r.phones} | ${r.done} | ${r.seconds.toFixed(2)} s | ${r.phones_per_s.toFixed(1)} | ` +
        `${r.p50_ms.toFixed(0)} / ${r.p99_ms.toFixed(0)} ms | ${r.server_cpu_s.toFixed(2)} s | ` +
        `${r.server_cpu_per_phone_ms === null ? "—" : r.server_cpu_per_phone_ms.toFixed(1) + " ms"} | ` +
        `${r.server_peak_rss_mib.toFixed(0)} MiB | ${r.phones_process_cpu_s.toFixed(2)} s | ${r.connections_reset} |`,
    )
  }
  console.log(
    `after SIGKILL ${args.grace} s after the last storm: ${verified.lost} of ${verified.checked} ` +
      "(phone, document) pairs missing a change",
  )
  const out = path.join(here, "../../target/bench/automerge-repo-storm.json")
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify(
      {
        bench: "storm",
        server: "automerge-repo 2.5.6 reference sync server (server.mjs), Node filesystem storage",
        actions_per_phone: DAY.visits + DAY.ballots + DAY.deliveries + DAY.orders + DAY.householdEdits,
        grace_seconds: args.grace,
        runs: rows,
        verified_pairs: verified.checked,
        lost: verified.lost,
      },
      null,
      2,
    ),)
  console.log(`wrote ${path.relative(process.cwd(), out)}`)
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
