// FFI overhead from Kotlin: opening a replica that holds three building documents, N small
// `identity` reads and N `recordVisit` calls through the generated bindings (compare
// bindings/examples/bench_ffi.rs).
// Run by `scripts/bindings-test.sh --bench`; prints one JSON object per measurement.

package doorstep.demo

import java.io.File
import java.nio.file.Files
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.seedDemoReplica

fun report(name: String, calls: Int, nanos: Long) {
    val ms = nanos / 1e6
    println("""{"bench":"$name","lang":"kotlin","calls":$calls,"total_ms":${"%.1f".format(ms)},"per_call_us":${"%.1f".format(ms * 1000 / calls)}}""")
}

fun main(args: Array<String>) {
    val calls = args.getOrNull(0)?.toInt() ?: 10_000
    val work = Files.createTempDirectory("doorstep-bench").toFile()
    try {
        // Warm up JNA and the library once, so the open below measures the replica alone.
        seedDemoReplica(File(work, "warm.db").path)
        DoorstepReplica.open(File(work, "warm.db").path).buildings()

        val openPath = File(work, "open.db").path
        seedDemoReplica(openPath)
        var started = System.nanoTime()
        val opened = DoorstepReplica.open(openPath)
        report("open_replica", 1, System.nanoTime() - started)
        started = System.nanoTime()
        check(opened.buildings().size == 3)
        report("first_read_3_buildings", 1, System.nanoTime() - started)

        started = System.nanoTime()
        for (i in 0 until calls) opened.identity()
        report("identity", calls, System.nanoTime() - started)

        val path = File(work, "visits.db").path
        val seed = seedDemoReplica(path)
        val replica = DoorstepReplica.open(path)
        val units = seed.buildings.flatMap { b -> replica.units(b, null).map { it.unit.code } }
        started = System.nanoTime()
        for (i in 0 until calls) {
            replica.recordVisit(seed.resolution, units[i % units.size], DoorOutcome.NOT_HOME, "")
        }
        report("record_visit", calls, System.nanoTime() - started)
    } finally {
        work.deleteRecursively()
    }
}
