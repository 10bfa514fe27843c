// What the building head waits for, through the app's own code (app-core view models over the
// generated bindings), with the store plain and encrypted (SQLCipher, key from a PKCS12 file):
// - cold start: from the app's first call into the core (JVM start and JNA loading excluded)
//   to the 门牌列表 of the first building, on a store holding 3 buildings and a day's work;
// - one tap that records a door's outcome (记录结果), at 1 and at 10,000 records in the
//   building's field document.
// Run by `scripts/bindings-test.sh --bench`; prints one JSON object per measurement.

package doorstep.demo

import doorstep.app.DoorViewModel
import doorstep.app.HomeViewModel
import doorstep.app.OpenedStore
import doorstep.app.StoreKeys
import doorstep.app.UnitListViewModel
import doorstep.app.openStore
import doorstep.desktop.Pkcs12StoreKeys
import java.io.File
import java.nio.file.Files
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.seedDemoReplica
import uniffi.doorstep_ffi.testingFillVisits

private fun percentile(sorted: List<Double>, p: Double): Double =
    sorted[((sorted.size - 1) * p).toInt()]

private fun reportMs(name: String, store: String, samples: List<Long>, extra: String = "") {
    val ms = samples.map { it / 1e6 }.sorted()
    println(
        """{"bench":"$name","lang":"kotlin","store":"$store","samples":${ms.size},""" +
            """"p50_ms":${"%.2f".format(percentile(ms, 0.5))},"p95_ms":${"%.2f".format(percentile(ms, 0.95))},""" +
            """"max_ms":${"%.2f".format(ms.last())}$extra}""",
    )
}

/** A plain key source for the "plain" rows: no key at all (DoorstepReplica.open). */
private fun open(path: String, keys: StoreKeys?): DoorstepReplica =
    if (keys == null) DoorstepReplica.open(path) else (openStore(path, keys) as? OpenedStore.Ready)?.replica
        ?: error("the store did not open")

fun main(args: Array<String>) {
    val taps = args.getOrNull(0)?.toInt() ?: 200
    val work = Files.createTempDirectory("doorstep-app-bench").toFile()
    val core = Dispatchers.IO.limitedParallelism(1)
    try {
        // Warm up JNA and the library once: the JVM and JNA are not the app's cold start.
        seedDemoReplica(File(work, "warm.db").path)
        DoorstepReplica.open(File(work, "warm.db").path).buildings()

        for (encrypted in listOf(false, true)) {
            val label = if (encrypted) "encrypted" else "plain"
            val keys = if (encrypted) Pkcs12StoreKeys(File(work, "keys-$label.p12"), "bench".toCharArray()) else null

            // A day's work on building 1: 86 actions (visits at every door, then more).
            val path = File(work, "cold-$label.db").path
            val seed = seedDemoReplica(path)
            open(path, keys).also { r ->
                val doors = r.units("1", seed.resolution).map { it.unit.code }
                repeat(86) { i -> r.recordVisit(seed.resolution, doors[i % doors.size], DoorOutcome.NOT_HOME, "") }
                r.destroy()
            }
            val cold = (0 until 20).map {
                val started = System.nanoTime()
                val replica = open(path, keys)
                runBlocking {
                    HomeViewModel(replica, core).load()
                    val list = UnitListViewModel(replica, "1", seed.resolution, core, this)
                    list.load()
                    check(list.state.value.total == 28)
                }
                val took = System.nanoTime() - started
                replica.destroy()
                took
            }
            reportMs("cold_start_to_unit_list", label, cold, ""","day_actions":86""")

            for (records in listOf(1, 10_000)) {
                val tapPath = File(work, "taps-$label-$records.db").path
                val s = seedDemoReplica(tapPath)
                if (encrypted) open(tapPath, keys).destroy() // encrypts the seeded plain store once
                if (records > 1) testingFillVisits(tapPath, keys?.storeKey(), s.resolution, "1", s.account, (records - 1).toUInt())
                val replica = open(tapPath, keys)
                val doors = replica.units("1", s.resolution).map { it.unit.code }
                if (records == 1) replica.recordVisit(s.resolution, doors[0], DoorOutcome.NOT_HOME, "")
                val n = if (records > 1) minOf(taps, 50) else taps
                val samples = runBlocking {
                    (0 until n).map { i ->
                        val vm = DoorViewModel(replica, "1", s.resolution, doors[i % doors.size], core)
                        val started = System.nanoTime()
                        check(vm.record(DoorOutcome.COME_BACK) == null)
                        System.nanoTime() - started
                    }
                }
                reportMs("tap_record_visit", label, samples, ""","records_before":$records""")
                replica.destroy()
            }
        }
    } finally {
        work.deleteRecursively()
    }
}
