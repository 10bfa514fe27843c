// The phone API on the JVM through the generated Kotlin bindings: offline work on a seeded
// replica, errors and panics as ApiException, and a full enroll → offline → sync round trip
// against a real `doorstep-server demo`, checked through the admin API.
//
// Run by scripts/bindings-test.sh: java -ea ... doorstep.demo.DoorstepTestKt <server-binary>
// Checks use check(), which works with or without -ea; the script passes -ea anyway.

package doorstep.demo

import doorstep.app.Clock
import doorstep.app.ManualNetwork
import doorstep.app.NextStep
import doorstep.app.SyncEngine
import doorstep.app.SyncStatus
import doorstep.app.UrlConnectionTransport
import doorstep.app.DoorFilter
import doorstep.app.DoorStatus
import doorstep.app.UnitListEvent
import doorstep.app.UnitListViewModel
import doorstep.desktop.PHONE_HEIGHT
import doorstep.desktop.PHONE_WIDTH
import doorstep.desktop.Theme
import doorstep.desktop.doorListScreen
import doorstep.desktop.homeScreen
import doorstep.app.HomeViewModel
import doorstep.app.DoorViewModel
import doorstep.desktop.doorScreen
import doorstep.desktop.screenshot
import doorstep.desktop.syncStripText
import doorstep.app.Refusals
import doorstep.app.OpenedStore
import doorstep.app.openStore
import doorstep.desktop.Pkcs12StoreKeys
import java.io.File
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.nio.file.Files
import uniffi.doorstep_ffi.Answer
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.Choice
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.HouseholdEdit
import uniffi.doorstep_ffi.OrderStatus
import uniffi.doorstep_ffi.QuestionKind
import uniffi.doorstep_ffi.SyncTransport
import uniffi.doorstep_ffi.TransportException
import uniffi.doorstep_ffi.refusalCodes
import uniffi.doorstep_ffi.seedDemoReplica
import uniffi.doorstep_ffi.testingPanic

/** Counts results and prints one line per test; the last line is `N passed, N failed`. */
class Runner {
    var passed = 0
    var failed = 0

    fun test(name: String, body: () -> Unit) {
        try {
            body()
            passed += 1
            println("ok    $name")
        } catch (e: Throwable) {
            failed += 1
            println("FAIL  $name: $e")
            e.printStackTrace(System.out)
        }
    }
}

/** `block` must throw an exception of type [T]; returns it. */
inline fun <reified T : Throwable> expectThrows(block: () -> Unit): T {
    try {
        block()
    } catch (e: Throwable) {
        check(e is T) { "expected ${T::class.simpleName}, got $e" }
        return e
    }
    error("expected ${T::class.simpleName}, nothing was thrown")
}

fun yes(vararg candidates: String) =
    Answer(choice = null, candidates = candidates.associateWith { Choice.YES }, options = listOf())

fun main(args: Array<String>) {
    val serverBinary = args.getOrNull(0) ?: error("usage: DoorstepTest <doorstep-server binary>")
    val work = Files.createTempDirectory("doorstep-kotlin").toFile()
    val r = Runner()

    // ---------------------------------------------------------------------------------------
    // Offline, on a replica seeded without a server.
    // ---------------------------------------------------------------------------------------
    val seededPath = File(work, "seeded.db").path
    val seed = seedDemoReplica(seededPath)
    val phone = DoorstepReplica.open(seededPath)

    r.test("a seeded replica lists its buildings, units, campaigns and questions") {
        check(phone.buildings().map { it.id } == listOf("1", "2", "3"))
        val units = phone.units("1", seed.resolution)
        check(units.size == 28) { "building 1 has 28 units, got ${units.size}" }
        check(units.all { it.visits == 0u && !it.ballotRecorded && it.lastOutcome == null })
        val campaigns = phone.campaigns().associateBy { it.id }
        val question = campaigns.getValue(seed.resolution).questions.single()
        check(question.kind is QuestionKind.Resolution)
        val survey = campaigns.getValue(seed.survey).questions.single().kind
        check(survey is QuestionKind.Survey && survey.options.map { it.id } == listOf("a", "b", "c"))
    }

    r.test("visits, a delivery, a ballot and its correction are recorded and shown") {
        val unit = phone.units("2", seed.resolution).first().unit.code
        phone.recordVisit(seed.resolution, unit, DoorOutcome.NOT_HOME, "")
        phone.recordVisit(seed.resolution, unit, DoorOutcome.DELIVERED, "left the paper")
        phone.recordDelivery(seed.resolution, unit)
        val first = phone.recordBallot(seed.resolution, unit, mapOf("q1" to Answer(Choice.YES, mapOf(), listOf())), null)
        phone.recordBallot(seed.resolution, unit, mapOf("q1" to Answer(Choice.NO, mapOf(), listOf())), first)
        val view = phone.units("2", seed.resolution).first { it.unit.code == unit }
        check(view.visits == 2u && view.lastOutcome == DoorOutcome.DELIVERED && view.ballotRecorded)
        check(phone.attention().ballotConflicts.isEmpty()) { "a correction is not a conflict" }
    }

    r.test("a survey answer is recorded, and too many choices are refused with the rule's reason") {
        val unit = phone.units("3", seed.survey).first().unit.code
        phone.recordSurveyAnswer(seed.survey, unit, mapOf("s1" to listOf("a", "c")), null)
        val refused = expectThrows<ApiException.NotAllowed> {
            phone.recordSurveyAnswer(seed.survey, unit, mapOf("s1" to listOf("a", "b", "c")), null)
        }
        check(refused.code == "invalid_answer") { "${refused.code}: ${refused.reason}" }
        val shown = Refusals.of(refused)
        check(shown.sentence.startsWith("选票的填写不符合要求") && shown.next == NextStep.FIX_INPUT) { shown }
    }

    r.test("a household correction and a work order through its lifecycle") {
        val unit = phone.units("1", null).first().unit.code
        phone.editHousehold(unit, HouseholdEdit(phone = "13900000000", residents = 4L))
        val household = phone.units("1", null).first { it.unit.code == unit }.household!!
        check(household.phone == "13900000000" && household.residents == 4L)
        val order = phone.createOrder(unit, "修理楼道灯", "3楼灯不亮")
        for (to in listOf(OrderStatus.UNDER_REVIEW, OrderStatus.PUBLISHED, OrderStatus.CLAIMED, OrderStatus.IN_PROGRESS, OrderStatus.DONE)) {
            phone.moveOrder("1", order, to, "", null)
        }
        val stored = phone.orders("1").single { it.id == order }
        check(stored.status == OrderStatus.DONE && stored.assignee == seed.account && stored.events.size == 5)
        val refused = expectThrows<ApiException.NotAllowed> { phone.moveOrder("1", order, OrderStatus.CLAIMED, "", null) }
        check(refused.code == "order_transition") { "${refused.code}: ${refused.reason}" }
        check(Refusals.of(refused).next == NextStep.SYNC_FIRST)
    }

    r.test("门牌列表: doors grouped by 单元 and 楼层 with their chips; filters count and narrow") {
        runBlocking {
            val core = Dispatchers.Default.limitedParallelism(1)
            val vm = UnitListViewModel(phone, "3", seed.resolution, core, this)
            vm.load()
            val all = vm.state.value
            check(!all.loading && all.error == null && all.total > 0) { all }
            check(all.groups.first().title.matches(Regex("\\d+单元 · -?\\d+层"))) { all.groups.first().title }
            val rows = all.groups.flatMap { it.rows }
            check(rows.size == all.total)
            check(rows.all { it.owner.isEmpty() || it.owner.contains('*') || it.owner.length <= 1 || it.owner.startsWith("（") }) { "owners are masked" }
            // One door not at home twice, one collected: their chips say so.
            // (the last door: the tests below use the first ones)
            val door = rows.last { it.status == DoorStatus.NOT_VISITED }.unit
            phone.recordVisit(seed.resolution, door, DoorOutcome.NOT_HOME, "")
            phone.recordVisit(seed.resolution, door, DoorOutcome.NOT_HOME, "")
            vm.load()
            val chip = vm.state.value.groups.flatMap { it.rows }.single { it.unit == door }.chip
            check(chip == "不在家×2") { chip }
            val todo = vm.state.value.counts.getValue(DoorFilter.TO_DO)
            vm.onEvent(UnitListEvent.Filter(DoorFilter.NOT_VISITED))
            val narrowed = vm.state.value
            check(narrowed.groups.flatMap { it.rows }.all { it.status == DoorStatus.NOT_VISITED })
            check(narrowed.groups.sumOf { it.rows.size } == narrowed.counts.getValue(DoorFilter.NOT_VISITED))
            check(todo >= narrowed.counts.getValue(DoorFilter.NOT_VISITED))
        }
        // The screen over that state, at normal and large text, kept as test artefacts.
        val shots = File(System.getProperty("doorstep.screenshots") ?: work.path)
        val vm = runBlocking {
            UnitListViewModel(phone, "3", seed.resolution, Dispatchers.Default, this).also { it.load() }
        }
        val strip = SyncStatus.Offline(pending = 5, lastSyncAt = 1_767_000_000_000)
        for (large in listOf(false, true)) {
            val file = File(shots, if (large) "door-list-large.png" else "door-list.png")
            screenshot(doorListScreen(vm.state.value, strip, Theme(large), "3号楼"), file)
            val image = javax.imageio.ImageIO.read(file)
            check(image.width == PHONE_WIDTH && image.height == PHONE_HEIGHT)
            // Dark text is drawn in the list area (not a blank or all-header image).
            val dark = (0 until image.width step 2).sumOf { x ->
                (400 until image.height step 4).count { y -> (image.getRGB(x, y) and 0xFF) < 0x60 }
            }
            check(dark > 200) { "the list has text: $dark dark samples in ${file.name}" }
        }
        check(syncStripText(strip).startsWith("离线 · 5 条待同步 · 上次同步 "))

        // 首页: every assigned building's progress in the campaign being worked, and the cards.
        val home = HomeViewModel(phone, Dispatchers.Default)
        runBlocking { home.load() }
        val h = home.state.value
        check(h.error == null && h.campaigns.isNotEmpty() && h.following != null) { h }
        check(h.buildings.map { it.id } == listOf("1", "2", "3")) { h.buildings }
        val line3 = h.buildings.single { it.id == "3" }.line
        check(Regex("3号楼 已走访 \\d+/28 户 · 已收回 \\d+ 票").matches(line3)) { line3 }
        for (large in listOf(false, true)) {
            val file = File(shots, if (large) "home-large.png" else "home.png")
            screenshot(homeScreen(h, strip, Theme(large), "太平洋花园"), file)
            check(javax.imageio.ImageIO.read(file).width == PHONE_WIDTH)
        }
        val missing = expectThrows<ApiException.InvalidInput> { phone.units("42", null) }
        check(Refusals.of(missing).next == NextStep.SYNC_FIRST)
    }

    r.test("the encrypted store: a plain one is migrated keeping every record, a wrong key changes nothing") {
        val dir = File(work, "encrypted").apply { mkdirs() }
        val path = File(dir, "phone.db").path
        val s = seedDemoReplica(path)
        val plain = DoorstepReplica.open(path)
        plain.recordVisit(s.resolution, plain.units("1", s.resolution).first().unit.code, DoorOutcome.NOT_HOME, "")
        val names = plain.buildings().flatMap { b -> plain.units(b.id, null).flatMap { it.unit.ownerNames } }
            .filter { it.length >= 2 }
        check(names.size > 50) { "the seeded register has names: ${names.size}" }
        val pending = plain.pendingCount()
        plain.destroy()

        val keys = Pkcs12StoreKeys(File(dir, "keys.p12"), "demo-keystore".toCharArray())
        val opened = openStore(path, keys)
        check(opened is OpenedStore.Ready) { opened }
        val replica = opened.replica
        check(replica.pendingCount() == pending)
        check(replica.units("1", s.resolution).sumOf { it.visits.toInt() } == 1)
        check(replica.buildings().flatMap { b -> replica.units(b.id, null).flatMap { it.unit.ownerNames } }
            .filter { it.length >= 2 } == names)
        replica.destroy()
        check(File(dir, "keys.p12").exists())

        fun bytes() = dir.listFiles()!!.filter { it.name.startsWith("phone.db") }.sortedBy { it.name }
            .map { it.name to it.readBytes() }
        val onDisk = bytes()
        check(onDisk.none { (name, _) -> name.endsWith(".plain") || name.endsWith(".encrypting") }) { onDisk.map { it.first } }
        val text = String(onDisk.flatMap { it.second.toList() }.toByteArray(), Charsets.ISO_8859_1)
        val readable = names.filter { text.contains(String(it.toByteArray(Charsets.UTF_8), Charsets.ISO_8859_1)) }
        check(readable.isEmpty()) { "${readable.size} names readable in the store" }

        val other = Pkcs12StoreKeys(File(dir, "other.p12"), "demo-keystore".toCharArray())
        val refused = openStore(path, other)
        check(refused is OpenedStore.Refused && refused.refusal.code == "wrong_key") { refused }
        check(refused.refusal.next == NextStep.ASK_OFFICE)
        val after = bytes()
        check(after.map { it.first } == onDisk.map { it.first } &&
            after.zip(onDisk).all { (a, b) -> a.second.contentEquals(b.second) }) { "nothing changed on disk" }
        val again = openStore(path, keys)
        check(again is OpenedStore.Ready && again.replica.pendingCount() == pending)
        (again as OpenedStore.Ready).replica.destroy()
    }

    // 选票, 意见征询, 微心愿, 同步, 设置: their view models and screens (ScreensTest.kt).
    workScreenTests(r, phone, seed, File(System.getProperty("doorstep.screenshots") ?: work.path))

    r.test("every code a refusal can carry has a Chinese sentence in the app") {
        val codes = refusalCodes()
        check(codes.size > 40 && "not_assigned" in codes && "not_on_phone" in codes) { codes }
        val missing = codes.filterNot { Refusals.knows(it) }
        check(missing.isEmpty()) { "no sentence for $missing" }
        check(Refusals.of("a_code_from_a_newer_server").sentence.contains("没有丢失"))
    }

    r.test("what has not reached this phone yet says: sync first") {
        val e = expectThrows<ApiException.InvalidInput> { phone.units("99", null) }
        check(e.code == "not_on_phone") { "${e.code}: ${e.reason}" }
        check(Refusals.of(e).next == NextStep.SYNC_FIRST)
    }

    r.test("bad input is ApiException.InvalidInput and leaves nothing pending") {
        val before = phone.pendingCount()
        val bad = expectThrows<ApiException.InvalidInput> { phone.recordVisit(seed.resolution, "nonsense", DoorOutcome.OTHER, "") }
        check(bad.code == "invalid_input") { bad.code }
        expectThrows<ApiException.InvalidInput> { phone.createOrder("1-1-0101", "  ", "") }
        expectThrows<ApiException.InvalidInput> { phone.resetDocument("no/such/kind/of/doc") }
        check(phone.pendingCount() == before)
    }

    r.test("a panic inside Rust arrives as ApiException.Storage, and the replica still works") {
        val e = expectThrows<ApiException.Storage> { testingPanic("deliberate panic from the test") }
        check(e.reason.contains("deliberate panic")) { e.reason }
        check(phone.buildings().size == 3)
    }

    r.test("the same replica is safe to use from several threads at once") {
        val units = phone.units("3", seed.resolution).map { it.unit.code }.take(8)
        val threads = units.map { unit ->
            Thread { phone.recordVisit(seed.resolution, unit, DoorOutcome.COME_BACK, "") }
        }
        threads.forEach { it.start() }
        threads.forEach { it.join() }
        val counts = phone.units("3", seed.resolution).filter { it.unit.code in units }.map { it.visits }
        check(counts.all { it == 1u }) { "every thread's visit is kept: $counts" }
    }

    // ---------------------------------------------------------------------------------------
    // Against a real server.
    // ---------------------------------------------------------------------------------------
    val server = DemoServer(serverBinary, File(work, "server.sqlite"), adminPassword = "kotlin-binding-passphrase")
    val campaign = "election-2025"
    val phonePath = File(work, "phone.db").path
    var online: DoorstepReplica? = null
    val offlineUnits = mutableListOf<String>()
    val offlineVisits = mutableListOf<String>()
    val offlineBallots = mutableListOf<String>()
    var beforeOffline: FieldNumbers? = null

    try {
        server.start()

        r.test("enroll with a code from the server and sync the assigned building") {
            val p = DoorstepReplica.open(phonePath)
            online = p
            val identity = p.enroll(server.url, server.codes.getValue("1"), "JVM test phone")
            check(identity != null && identity.buildings == listOf("1")) { "identity: $identity" }
            val report = p.sync()
            check(report.complete && report.rejected.isEmpty()) { "report: $report" }
            check(p.buildings().map { it.id } == listOf("1"))
            val election = p.campaigns().single { it.id == campaign }
            val kind = election.questions.single().kind
            check(kind is QuestionKind.Election && kind.candidates.size == 9) { "$kind" }
            check(p.units("1", campaign).size == 28)
            check(p.pendingCount() == 0uL) { "nothing is pending right after a sync" }
            beforeOffline = AdminChecks(server).numbers(campaign, "1")
        }

        server.stop()

        r.test("offline: visits and ballots are recorded while the server is down") {
            val p = online ?: error("not enrolled")
            expectThrows<ApiException.Network> { p.sync() }
            val units = p.units("1", campaign).map { it.unit.code }
            offlineUnits.addAll(units.take(4))
            for (unit in offlineUnits) {
                offlineVisits.add(p.recordVisit(campaign, unit, DoorOutcome.COLLECTED, ""))
                p.recordDelivery(campaign, unit)
            }
            offlineUnits.take(3).forEach { unit ->
                offlineBallots.add(p.recordBallot(campaign, unit, mapOf("q1" to yes("cand-1", "cand-2", "cand-3")), null))
            }
            // The owner of the first unit corrects their ballot: it supersedes the first one.
            p.recordBallot(campaign, offlineUnits[0], mapOf("q1" to yes("cand-1", "cand-4")), offlineBallots[0])
            check(p.pendingCount() > 0uL)
            check(p.units("1", campaign).count { it.ballotRecorded } == 3)
        }

        server.start()

        r.test("after a restart, sync delivers the offline work and the admin API shows it") {
            val p = online ?: error("not enrolled")
            val report = p.sync()
            check(report.complete && report.rejected.isEmpty()) { "report: $report" }
            check(p.pendingCount() == 0uL) { "pending after sync: ${p.pendingCount()}" }
            val admin = AdminChecks(server)
            val was = beforeOffline ?: error("no numbers from before the offline work")
            val now = admin.numbers(campaign, "1")
            check(now.visits == was.visits + 4 && now.deliveries == was.deliveries + 4) { "$was -> $now" }
            // Three owners returned ballots; the corrected one counts once, as corrected.
            check(now.ballots == was.ballots + 3 && now.returned == was.returned + 3) { "$was -> $now" }
            val moved = now.yes.mapValues { (c, n) -> n - (was.yes[c] ?: 0) }.filterValues { it != 0 }
            check(moved == mapOf("cand-1" to 3, "cand-2" to 2, "cand-3" to 2, "cand-4" to 1)) { "tally moved by $moved" }
            check(offlineBallots[0] in now.superseded) { "superseded: ${now.superseded}" }
            val csv = admin.exportedVisits(campaign)
            check(offlineVisits.all { it in csv }) { "every offline visit is in the export" }
        }

        r.test("the app's own HTTP stack (SyncTransport) enrolls and syncs a second phone") {
            val transport = JdkHttpTransport(server.url)
            val second = DoorstepReplica.open(File(work, "second.db").path)
            val identity = second.enrollVia(transport, server.url, server.codes.getValue("2"), "JVM second phone")
            check(identity?.buildings == listOf("2")) { "identity: $identity" }
            val report = second.syncVia(transport)
            check(report.complete && transport.requests >= 2) { "report: $report, requests: ${transport.requests}" }
            val unit = second.units("2", campaign).first().unit.code
            second.recordVisit(campaign, unit, DoorOutcome.REFUSED, "")
            check(second.syncVia(transport).complete && second.pendingCount() == 0uL)
        }

        r.test("the sync engine: offline work waits, reconnecting delivers it, a dead server backs off") {
            var now = 1_800_000_000_000L
            val clock = Clock { now }
            val network = ManualNetwork(online = true)
            val transport = UrlConnectionTransport(server.url, network)
            val p = DoorstepReplica.open(File(work, "engine.db").path)
            p.enrollVia(transport, server.url, server.codes.getValue("4"), "JVM engine phone")
            runBlocking {
                val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
                val engine = SyncEngine(p, transport, network, clock, scope)
                check(engine.syncNow() is SyncStatus.Done)
                val first = p.units("4", campaign).first().unit.code
                val door = DoorViewModel(p, "4", campaign, first, Dispatchers.Default)
                check(door.record(DoorOutcome.COME_BACK, "下午再来") == null)
                check(engine.syncNow() is SyncStatus.Done)
                val before = AdminChecks(server).numbers(campaign, "4")

                // 飞行模式: three doors recorded; syncing says offline and sends nothing.
                network.set(false)
                val units = p.units("4", campaign).map { it.unit.code }.take(3)
                units.forEach { p.recordVisit(campaign, it, DoorOutcome.NOT_HOME, "") }
                val sent = transport.requests
                val offline = engine.syncNow()
                check(offline is SyncStatus.Offline && offline.pending >= 1 && offline.lastSyncAt != null) { offline }
                check(transport.requests == sent) { "an offline phone sends nothing" }
                // 门户详情: the morning's visit is on the server, the offline one waits.
                door.load()
                val lines = door.state.value.lines
                check(lines.map { it.mark } == listOf("✓已同步", "⏳待同步") && door.state.value.waiting == 1) { lines }
                check(lines[0].what == "走访：约定再访" && lines[0].note == "下午再来") { lines }
                val shots = File(System.getProperty("doorstep.screenshots") ?: work.path)
                screenshot(doorScreen(door.state.value, Theme(false), "4号楼"), File(shots, "door.png"))
                screenshot(doorScreen(door.state.value, Theme(true), "4号楼"), File(shots, "door-large.png"))

                // The network comes back: the engine syncs by itself.
                network.set(true)
                val done = withTimeout(60_000) { engine.status.first { it is SyncStatus.Done } } as SyncStatus.Done
                check(done.pending == 0L && done.rejected.isEmpty()) { done }
                val after = AdminChecks(server).numbers(campaign, "4")
                check(after.visits == before.visits + 3) { "$before -> $after" }
                door.load()
                check(door.state.value.waiting == 0 && door.state.value.lines.all { it.synced }) { door.state.value }

                // A server that cannot be reached: retry later, doubling, not before the time.
                val dead = SyncEngine(p, UrlConnectionTransport("http://127.0.0.1:${DemoServer.freePort()}"), network, clock, scope)
                val failed = dead.syncNow()
                check(failed is SyncStatus.Failed && failed.refusal.next == NextStep.RETRY_LATER && failed.retryAt == now + 5_000) { failed }
                check(dead.tick() === failed) { "no retry before the back-off ends" }
                now += 5_000
                val again = dead.tick()
                check(again is SyncStatus.Failed && again.retryAt == now + 10_000) { again }
                scope.cancel()
            }
        }

        r.test("transport failures from the app arrive as Network and RejectedByServer") {
            val down = object : SyncTransport {
                override fun postSync(body: ByteArray, token: String): ByteArray = throw TransportException.Network("airplane mode")
                override fun postEnroll(body: ByteArray): ByteArray = throw TransportException.Network("airplane mode")
            }
            val third = DoorstepReplica.open(File(work, "third.db").path)
            val network = expectThrows<ApiException.Network> { third.enrollVia(down, server.url, "AAAA-BBBB", "x") }
            check(network.reason.contains("airplane mode"))
            val refused = expectThrows<ApiException.RejectedByServer> {
                third.enrollVia(JdkHttpTransport(server.url), server.url, "AAAA-BBBB-CCCC", "x")
            }
            check(refused.code == "invalid_enrollment_code") { "${refused.code}: ${refused.reason}" }
            check(Refusals.of(refused).next == NextStep.ENROLL_AGAIN)
            val notYet = expectThrows<ApiException.InvalidInput> { third.sync() }
            check(notYet.code == "not_enrolled") { "${notYet.code}: ${notYet.reason}" }
            check(third.identity() == null)
        }
    } finally {
        server.stop()
    }

    // A field day through the app's view models, against a server of its own.
    scenarioTests(r, serverBinary, work)

    println("${r.passed} passed, ${r.failed} failed")
    work.deleteRecursively()
    kotlin.system.exitProcess(if (r.failed == 0) 0 else 1)
}
