// Prints doorstep's storm beside the reference server's, storm by storm, and writes
// target/bench/storm-compare.json: node compare.mjs <doorstep storm.json> <automerge-repo json>
import fs from "node:fs"

const [doorstepFile, referenceFile] = process.argv.slice(2)
const doorstep = JSON.parse(fs.readFileSync(doorstepFile, "utf8"))
const reference = JSON.parse(fs.readFileSync(referenceFile, "utf8"))
const rows = []
console.log("| phones | doorstep phones / s | reference phones / s (done of all) | ratio | doorstep CPU / phone | reference CPU / phone |")
console.log("|---:|---:|---:|---:|---:|---:|")
for (const ours of doorstep.runs) {
  const theirs = reference.runs.find(r => r.phones === ours.phones)
  if (!theirs) continue
  const ratio = ours.phones_per_second / theirs.phones_per_s
  rows.push({ phones: ours.phones, doorstep: ours.phones_per_second, reference: theirs.phones_per_s, reference_done: theirs.done, ratio })
  console.log(
    `| ${ours.phones} | ${ours.phones_per_second.toFixed(1)} | ${theirs.phones_per_s.toFixed(1)} (${theirs.done} of ${theirs.phones}) | ` +
      `${ratio.toFixed(1)}× | ${ours.server_cpu_ms_per_phone.toFixed(1)} ms | ` +
      `${theirs.server_cpu_per_phone_ms === null ? "—" : theirs.server_cpu_per_phone_ms.toFixed(1) + " ms"} |`,
  )
}
console.log(`lost after SIGKILL: doorstep ${doorstep.lost} of ${doorstep.verified_pairs}, reference ${reference.lost} of ${reference.verified_pairs}`)
fs.writeFileSync("target/bench/storm-compare.json", JSON.stringify({ storms: rows, doorstep_lost: doorstep.lost, reference_lost: reference.lost }, null, 2))
console.log("wrote target/bench/storm-compare.json")
