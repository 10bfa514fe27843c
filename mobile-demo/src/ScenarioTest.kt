// A building head's field day through the app's own view models against a real server: joining
// from the QR image the server rendered, a building's doors and ballots recorded in airplane
// mode, delivered when the network returns, checked through the admin API, and an officer's
// decision on a conflicting ballot arriving in 通知. Plus: the UI keeps answering while a sync
// waits on a server that does not answer.

package doorstep.demo

import doorstep.app.BallotResult
import doorstep.app.BallotViewModel
import doorstep.app.DoorViewModel
import doorstep.app.JoinEvent
import doorstep.app.JoinViewModel
import doorstep.app.ManualNetwork
import doorstep.app.NoticesViewModel
import doorstep.app.SyncEngine
import doorstep.app.SyncStatus
import doorstep.app.UnitListViewModel
import doorstep.app.UrlConnectionTransport
import doorstep.desktop.QrImages
import java.io.File
import java.util.Base64
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.doorstep_ffi.Choice
import uniffi.doorstep_ffi.CollectionMethod
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.SyncTransport
import uniffi.doorstep_ffi.TransportException

private fun obj(v: Any?): Map<*, *> = v as? Map<*, *> ?: error("expected a JSON object, got $v")
private fun list(v: Any?): List<*> = v as? List<*> ?: error("expected a JSON array, got $v")

/** A new one-time code for [accountId] from the admin API, as the QR image file it renders. */
private fun qrImageFor(server: DemoServer, token: String, accountId: String, into: File): File {
    val issued = obj(server.post("/api/v1/admin/accounts/$accountId/enrollment-codes", null, token))
    val png = Base64.getDecoder().decode(issued["qr_png"] as String)
    return into.also { it.writeBytes(png) }
}

/** Collects the owner's ballot at [unit]: the first candidate yes, the rest left blank. */
private suspend fun collect(vm: BallotViewModel): BallotResult {
    vm.load()
    val row = vm.state.value.rows.firstOrNull() ?: error("no choices on the paper: ${vm.state.value}")
    vm.choose(row.question, row.candidate, Choice.YES)
    return vm.collect()
}

fun scenarioTests(r: Runner, serverBinary: String, work: File) {
    val server = DemoServer(serverBinary, File(work, "scenario.sqlite"), adminPassword = "scenario-passphrase")
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    val core = Dispatchers.IO.limitedParallelism(1)
    val campaign = "election-2025"
    try {
        server.start()
        val admin = server.adminToken()
        val accounts = list(server.get("/api/v1/admin/accounts", admin)).map(::obj)
        val headId = accounts.single { it["login"] == server.logins.getValue("1") }["id"] as String
        val head = DoorstepReplica.open(File(work, "scenario-head.db").path)
        val network = ManualNetwork(online = true)
        val transport = UrlConnectionTransport(server.url, network)
        val engine = SyncEngine(head, transport, network, doorstep.app.SystemClock, scope)
        val deputy = DoorstepReplica.open(File(work, "scenario-deputy.db").path)
        var deputyBallot: BallotResult? = null
        lateinit var doors: List<String>

        r.test("扫码加入: the head's app reads the QR image the server rendered and joins building 1") {
            val image = qrImageFor(server, admin, headId, File(work, "enroll-head.png"))
            val text = QrImages.decode(image) ?: error("ZXing read no QR code in ${image.name}")
            check(text.startsWith("doorstep://enroll?")) { text }
            val join = JoinViewModel(head, { UrlConnectionTransport(it, network) }, core, Dispatchers.IO, "scenario phone")
            join.onEvent(JoinEvent.Scanned("https://example.org/not-a-code"))
            check(join.state.value.error?.code == "not_an_enrollment_code")
            join.onEvent(JoinEvent.Scanned(text))
            check(join.state.value.server == server.url) { join.state.value }
            val refusal = runBlocking { join.join() }
            check(refusal == null) { "joined: $refusal" }
            val joined = join.state.value.joined ?: error("no identity: ${join.state.value}")
            check(joined.buildings == listOf("1")) { joined }
            check(joined.line.contains("负责 1号楼")) { joined.line }
            // The same code again is refused by the server, with the next step in words.
            val again = JoinViewModel(DoorstepReplica.open(File(work, "scenario-other.db").path), { UrlConnectionTransport(it) }, core, Dispatchers.IO, "x")
            again.onEvent(JoinEvent.Scanned(text))
            check(runBlocking { again.join() }?.code == "invalid_enrollment_code")
            val first = runBlocking { engine.syncNow() }
            check(first is SyncStatus.Done && first.pending == 0L) { first }
            doors = head.units("1", campaign).map { it.unit.code }
            check(doors.size == 28) { doors.size }

            // A deputy for building 1 joins from a QR image of their own.
            val community = head.identity()!!.community
            val deputyId = obj(server.post("/api/v1/admin/accounts",
                """{"login":"deputy-1","display_name":"副楼长","roles":["building_head"]}""", admin))["id"] as String
            server.post("/api/v1/admin/assignments",
                """{"account_id":"$deputyId","community":"$community","building":"1"}""", admin)
            val deputyJoin = JoinViewModel(deputy, { UrlConnectionTransport(it) }, core, Dispatchers.IO, "deputy phone")
            deputyJoin.onEvent(JoinEvent.Scanned(QrImages.decode(qrImageFor(server, admin, deputyId, File(work, "enroll-deputy.png")))!!))
            check(runBlocking { deputyJoin.join() } == null && deputyJoin.state.value.joined?.buildings == listOf("1"))
            deputy.syncVia(UrlConnectionTransport(server.url))
        }

        val before = AdminChecks(server).numbers(campaign, "1")
        r.test("airplane mode: 28 doors and 25 ballots (one a correction) wait on the phone, nothing is sent") {
            network.set(false)
            val sent = transport.requests
            runBlocking {
                for (unit in doors) {
                    val door = DoorViewModel(head, "1", campaign, unit, core)
                    door.load()
                    check(door.record(DoorOutcome.OTHER, "见面") == null)
                    check(door.state.value.lines.single().mark == "⏳待同步") { door.state.value.lines }
                }
                for ((i, unit) in doors.take(25).withIndex()) {
                    val vm = BallotViewModel(head, "1", campaign, unit, core)
                    // The third owner is away: their daughter signs with a written authorisation.
                    if (i == 2) vm.collectedBy(CollectionMethod.PROXY)
                    val result = collect(vm)
                    check(result is BallotResult.Recorded) { "$unit: $result" }
                    check(vm.state.value.method == CollectionMethod.DOOR) { "the next paper starts as collected at the door" }
                    if (i == 2) check(vm.state.value.ballots.single().where == "本户 · 委托代签") { vm.state.value.ballots }
                }
                // The owner of the first door changes their mind: a second collection warns,
                // and the correction replaces the first ballot.
                val vm = BallotViewModel(head, "1", campaign, doors[0], core)
                check(collect(vm) is BallotResult.AlreadyHasBallot)
                vm.startCorrection()
                val row = vm.state.value.rows.first()
                vm.choose(row.question, row.candidate, Choice.NO)
                check(vm.correct() is BallotResult.Recorded)
                check(vm.state.value.effectiveCount == 1 && vm.state.value.ballots.size == 2) { vm.state.value.ballots }
            }
            // The deputy, offline too, collects the owner's ballot at the second door.
            deputyBallot = runBlocking { collect(BallotViewModel(deputy, "1", campaign, doors[1], core)) }
            val status = runBlocking { engine.syncNow() }
            check(status is SyncStatus.Offline && status.pending > 0) { status }
            check(transport.requests == sent) { "an offline phone sent ${transport.requests - sent} requests" }
        }

        r.test("airplane mode off: the work is delivered, pending drops to 0, the admin API shows it") {
            runBlocking {
                val done = async { withTimeout(60_000) { engine.status.first { it is SyncStatus.Done } } }
                network.set(true)
                val status = done.await() as SyncStatus.Done
                check(status.pending == 0L && status.rejected.isEmpty()) { status }
            }
            check(head.pendingCount() == 0UL)
            val after = AdminChecks(server).numbers(campaign, "1")
            // 28 door outcomes, and each of the 26 collections (one a correction) is a 已收票 visit.
            check(after.visits - before.visits == 28 + 26) { "$before → $after" }
            check(after.ballots - before.ballots == 25) { "$before → $after" }
            check(after.superseded.size - before.superseded.size == 1) { "$before → $after" }
            // The ballots export says how each came back: one by proxy, the rest at the door.
            val ballots = server.getText("/api/v1/admin/campaigns/$campaign/exports/ballots.csv", server.adminToken())
                .lines().filter { doors.take(25).any { d -> it.contains(",$d,") } }
            check(ballots.count { it.contains(",proxy,") } == 1) { ballots }
            check(ballots.count { it.contains(",door,") } >= 25) { ballots }
            val door = DoorViewModel(head, "1", campaign, doors[0], core)
            runBlocking { door.load() }
            check(door.state.value.lines.all { it.mark == "✓已同步" } && door.state.value.waiting == 0) { door.state.value.lines }
        }

        r.test("通知: a deputy's competing ballot is settled by the officer, and the decision reaches the head") {
            // The deputy recorded a ballot at a door where the head did too, each phone offline.
            check(deputyBallot is BallotResult.Recorded) { "the deputy's ballot: $deputyBallot" }
            check(deputy.pendingCount() > 0UL)
            deputy.syncVia(UrlConnectionTransport(server.url))
            check(deputy.pendingCount() == 0UL)

            val officer = server.officerToken()
            val conflicts = list(obj(server.get("/api/v1/admin/campaigns/$campaign/conflicts", officer))["conflicts"]).map(::obj)
            check(conflicts.size == 1) { conflicts }
            val chosen = obj(list(conflicts[0]["ballots"]).first())["id"] as String
            server.post("/api/v1/admin/campaigns/$campaign/adjudications",
                """{"voter_key":"${conflicts[0]["voter_key"]}","chosen":"$chosen","reason":"业主当面确认"}""", officer)

            val notices = NoticesViewModel(head, core)
            runBlocking {
                notices.load()
                check(notices.state.value.lines.isEmpty())
                check(engine.syncNow() is SyncStatus.Done)
                notices.load()
            }
            val s = notices.state.value
            check(s.unread == 1 && s.lines.single().unread && s.lines.single().mark == "新") { s }
            check(s.lines.single().title.contains(doors[1]) && s.lines.single().detail.contains("业主当面确认")) { s.lines }
            // Whose ballot counts, in words: the head's own or the deputy's.
            val mine = chosen == head.unitTimeline(campaign, doors[1]).lastOrNull { it.kind == uniffi.doorstep_ffi.TimelineKind.BALLOT && it.by == head.identity()!!.account }?.id
            check(s.lines.single().detail.contains(if (mine) "以您在" else "以另一位楼栋长在")) { s.lines.single().detail }
            // The decision as 通知 shows it, at normal and large text.
            val shots = File(System.getProperty("doorstep.screenshots") ?: work.path)
            for (large in listOf(false, true)) {
                val file = File(shots, if (large) "notices-decision-large.png" else "notices-decision.png")
                doorstep.desktop.screenshot(doorstep.desktop.noticesScreen(s, doorstep.desktop.Theme(large)), file)
                check(javax.imageio.ImageIO.read(file).width == doorstep.desktop.PHONE_WIDTH)
            }
            runBlocking { notices.markSeen() }
            check(notices.state.value.unread == 0 && notices.state.value.lines.single().mark == "已读")
        }

        r.test("the UI keeps answering while a sync waits on a server that does not answer") {
            val release = CountDownLatch(1)
            val entered = CountDownLatch(1)
            val stuck = object : SyncTransport {
                override fun postSync(body: ByteArray, token: String): ByteArray {
                    entered.countDown()
                    release.await(120, TimeUnit.SECONDS)
                    throw TransportException.Network("the server did not answer")
                }

                override fun postEnroll(body: ByteArray): ByteArray = throw TransportException.Network("not used")
            }
            val slow = SyncEngine(head, stuck, ManualNetwork(true), doorstep.app.SystemClock, scope)
            runBlocking {
                val syncing = async(Dispatchers.Default) { slow.syncNow() }
                check(entered.await(30, TimeUnit.SECONDS)) { "the sync reached the network" }
                check(slow.status.value is SyncStatus.Syncing)
                // Meanwhile: the unit list loads, and a door's outcome is recorded.
                val list = UnitListViewModel(head, "1", campaign, core, this)
                withTimeout(10_000) { list.load() }
                check(list.state.value.total == 28 && list.state.value.error == null)
                val door = DoorViewModel(head, "1", campaign, doors[27], core)
                withTimeout(10_000) { check(door.record(DoorOutcome.COME_BACK) == null) }
                check(slow.status.value is SyncStatus.Syncing) { "still waiting on the server" }
                release.countDown()
                check(syncing.await() is SyncStatus.Failed)
            }
            check(head.pendingCount() > 0UL)
        }
    } finally {
        scope.cancel()
        server.stop()
    }
}
