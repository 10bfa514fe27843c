// The work screens — 选票, 意见征询, 微心愿, 同步, 设置 — driven headless through their view
// models on a seeded replica of their own (so other tests' doors are untouched), checking what
// a building head would notice, and painted at normal and large text into PNGs that are
// checked for size, drawn text, tap targets of at least 60 px and text that is not cut off.
//
// Called from DoorstepTest's main, or alone:
//   java ... -Ddoorstep.screenshots=DIR doorstep.demo.ScreensTestKt

package doorstep.demo

import doorstep.app.BallotMode
import doorstep.app.BallotResult
import doorstep.app.BallotViewModel
import doorstep.app.DocumentLabels
import doorstep.app.DoorStatus
import doorstep.app.DoorViewModel
import doorstep.app.NextStep
import doorstep.app.PENDING_WORK
import doorstep.app.Refusals
import doorstep.app.SettingsViewModel
import doorstep.app.SurveyViewModel
import doorstep.app.SyncScreenState
import doorstep.app.SyncStatus
import doorstep.app.SyncViewModel
import doorstep.app.WishesViewModel
import doorstep.app.rejectionRow
import doorstep.app.statusOf
import doorstep.app.wishActions
import doorstep.desktop.MIN_TAP
import doorstep.desktop.PHONE_HEIGHT
import doorstep.desktop.PHONE_WIDTH
import doorstep.desktop.TAP
import doorstep.desktop.Theme
import doorstep.desktop.ballotScreen
import doorstep.desktop.newWishScreen
import doorstep.desktop.screenshot
import doorstep.desktop.settingsScreen
import doorstep.desktop.surveyScreen
import doorstep.desktop.syncScreen
import doorstep.desktop.wishesScreen
import java.awt.Component
import java.awt.Container
import java.io.File
import java.nio.file.Files
import javax.imageio.ImageIO
import javax.swing.JComponent
import javax.swing.JLabel
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import uniffi.doorstep_ffi.Choice
import uniffi.doorstep_ffi.CollectionMethod
import uniffi.doorstep_ffi.DemoSeed
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.OrderStatus
import uniffi.doorstep_ffi.Rejection
import uniffi.doorstep_ffi.SaleStatus
import uniffi.doorstep_ffi.seedDemoReplica

/**
 * Paints [screen] at normal or large text into `shots/<name>.png` / `<name>-large.png` and
 * checks the image: the phone's size, dark text in the content area, every tap target at least
 * [MIN_TAP] high, and no label wider than the room it was given (cut-off text).
 */
fun checkScreen(shots: File, name: String, large: Boolean, screen: JComponent) {
    val file = File(shots, if (large) "$name-large.png" else "$name.png")
    screenshot(screen, file)
    val image = ImageIO.read(file)
    check(image.width == PHONE_WIDTH && image.height == PHONE_HEIGHT) { "${file.name}: ${image.width}×${image.height}" }
    // Dark text is drawn below the title bar and the sync strip (not a blank or header-only
    // image); sampled as in the door-list check (dark ink, dark red included; the blue bar is not).
    val dark = (0 until image.width step 2).sumOf { x ->
        (200 until image.height step 4).count { y -> (image.getRGB(x, y) and 0xFF) < 0x60 }
    }
    check(dark > 200) { "${file.name}: the content has text: $dark dark samples" }
    val taps = mutableListOf<Component>()
    val cut = mutableListOf<String>()
    fun walk(c: Component) {
        if (c.name?.startsWith(TAP) == true) taps.add(c)
        if (c is JLabel && c.isVisible && c.width > 0) {
            // A wrapped paragraph asks for its width; a one-line label (a button's preferred
            // size is set by hand) needs its text's width plus its insets.
            val needs = if (c.text.startsWith("<html>")) c.preferredSize.width
            else c.getFontMetrics(c.font).stringWidth(c.text) + c.insets.left + c.insets.right
            if (needs > c.width + 1) cut.add("${c.text.take(30)} ($needs > ${c.width})")
        }
        if (c is Container) c.components.forEach(::walk)
    }
    walk(screen)
    check(taps.isNotEmpty()) { "${file.name}: no tap targets found" }
    val small = taps.filter { it.height < MIN_TAP || it.width < MIN_TAP }.map { "${it.name} ${it.width}×${it.height}" }
    check(small.isEmpty()) { "${file.name}: tap targets under $MIN_TAP px: $small" }
    check(cut.isEmpty()) { "${file.name}: text cut off: $cut" }
}

fun workScreenTests(r: Runner, phone: DoorstepReplica, seed: DemoSeed, shots: File) {
    // A replica of these tests' own, so the doors the other tests use stay as they expect.
    val dir = Files.createTempDirectory("doorstep-screens").toFile()
    val seeded = seedDemoReplica(File(dir, "screens.db").path)
    val p = DoorstepReplica.open(File(dir, "screens.db").path)
    check(seeded.resolution == seed.resolution && seeded.survey == seed.survey) { "the seeds agree on their campaigns" }
    val core = Dispatchers.Default.limitedParallelism(1)
    val lastSync = 1_767_000_000_000L
    fun strip() = SyncStatus.Offline(pending = p.pendingCount().toLong(), lastSyncAt = lastSync)
    // Doors in building 2 whose owner has no other door, so "the door" and "the owner" agree.
    val owners = p.units("2", null).groupingBy { it.unit.ownerKey }.eachCount()
    val doors = p.units("2", seeded.resolution)
        .filter { it.unit.saleStatus == SaleStatus.SOLD && owners[it.unit.ownerKey] == 1 }
        .map { it.unit.code }
    val ballotDoor = doors[2]
    val surveyDoor = doors[3]

    val ballots = BallotViewModel(p, "2", seeded.resolution, ballotDoor, core)
    var firstBallot: String? = null

    r.test("选票: delivering then collecting a ballot shows on the door") {
        runBlocking {
            ballots.load()
            val s0 = ballots.state.value
            check(!s0.loading && s0.error == null && s0.rows.map { it.question } == listOf("q1")) { s0 }
            check(s0.statusLine == "未发票" && !s0.ownerHasBallot && s0.ballots.isEmpty()) { s0.statusLine }
            check(s0.owner.contains('*') || s0.owner.length <= 1 || s0.owner.startsWith("（")) { "the owner is masked" }
            check(ballots.deliver() == null) { ballots.state.value.error!! }
            check(ballots.state.value.deliveries == 1 && ballots.state.value.statusLine.startsWith("已发票")) { ballots.state.value.statusLine }
            val delivered = p.units("2", seeded.resolution).single { it.unit.code == ballotDoor }
            // (Failure messages name statuses and counts only: a UnitView holds residents' names.)
            check(statusOf(delivered) == DoorStatus.DELIVERED && delivered.visits == 1u) { "the door list says ${statusOf(delivered)}, ${delivered.visits} visits" }
            ballots.choose("q1", null, Choice.YES)
            check(ballots.state.value.rows.single().choice == Choice.YES)
            val done = ballots.collect()
            check(done is BallotResult.Recorded) { done }
            firstBallot = (done as BallotResult.Recorded).id
            val s = ballots.state.value
            check(s.ownerHasBallot && s.effectiveCount == 1 && s.statusLine.startsWith("已收票")) { s.statusLine }
            check(s.notice == "已收回选票，待同步" && s.rows.single().choice == null) { s }
            check(s.ballots.single().mark == "有效 · ⏳待同步") { s.ballots }
            // The door list and the door's timeline say so too.
            val view = p.units("2", seeded.resolution).single { it.unit.code == ballotDoor }
            check(view.ballotRecorded && statusOf(view) == DoorStatus.COLLECTED && view.visits == 2u) { "${statusOf(view)}, ${view.visits} visits" }
            val door = DoorViewModel(p, "2", seeded.resolution, ballotDoor, core)
            door.load()
            val lines = door.state.value.lines.map { it.what }
            check(lines.sorted() == listOf("发出选票", "收回选票", "走访：已发票", "走访：已收票").sorted()) { lines }
            check(door.state.value.lines.all { it.mark == "⏳待同步" } && door.state.value.waiting == 4) { door.state.value.lines }
        }
    }

    r.test("选票: a second collection warns 该户已有选票; the correction supersedes the first (one ballot counts)") {
        runBlocking {
            val before = p.pendingCount()
            ballots.choose("q1", null, Choice.NO)
            val second = ballots.collect()
            check(second is BallotResult.AlreadyHasBallot && second.warning.startsWith("该户已有选票")) { second }
            val warned = ballots.state.value
            check(warned.warning!!.startsWith("该户已有选票") && warned.ballots.size == 1) { warned }
            check(p.pendingCount() == before) { "nothing was recorded" }
            check(warned.rows.single().choice == Choice.NO) { "the owner's choice is kept for the correction" }
            for (large in listOf(false, true)) checkScreen(shots, "ballot", large, ballotScreen(warned, strip(), Theme(large), "2号楼"))
            // 委托代签: the paper being recorded is signed by the owner's written proxy.
            val proxy = warned.copy(warning = null, method = CollectionMethod.PROXY)
            checkScreen(shots, "ballot-proxy", false, ballotScreen(proxy, strip(), Theme(false), "2号楼"))

            ballots.startCorrection()
            check(ballots.state.value.mode == BallotMode.CORRECT && ballots.state.value.warning == null)
            val corrected = ballots.correct()
            check(corrected is BallotResult.Recorded) { corrected }
            val s = ballots.state.value
            check(s.ballots.size == 2 && s.effectiveCount == 1) { s.ballots }
            check(s.ballots[0].id == firstBallot && !s.ballots[0].effective && s.ballots[0].mark.startsWith("已被更正")) { s.ballots }
            check(s.ballots[1].correction && s.ballots[1].effective && s.mode == BallotMode.COLLECT) { s.ballots }
            check(s.statusLine.startsWith("已收票")) { s.statusLine }
            val timeline = p.unitTimeline(seeded.resolution, ballotDoor)
            check(timeline.single { it.id == (corrected as BallotResult.Recorded).id }.supersedes == firstBallot)
            check(p.attention().ballotConflicts.isEmpty()) { "a correction is not a conflict" }
            check(p.units("2", seeded.resolution).filter { it.unit.code == ballotDoor }.count { it.ballotRecorded } == 1)
        }
    }

    r.test("意见征询: too many choices is refused with the rule's sentence; a fitting answer is kept") {
        runBlocking {
            val survey = SurveyViewModel(p, "2", seeded.survey, surveyDoor, core)
            survey.load()
            val q = survey.state.value.current!!
            check(q.options.map { it.id } == listOf("a", "b", "c") && q.maxChoices == 2 && survey.state.value.progress == "第 1/1 题") { q }
            listOf("a", "b", "c").forEach(survey::toggle)
            check(survey.state.value.current!!.countLine == "已选 3 项 · 最多选 2 项（多选了 1 项）") { survey.state.value.current!!.countLine }
            val before = p.pendingCount()
            val refused = survey.submit()
            check(refused is BallotResult.Refused && refused.refusal.code == "invalid_answer") { refused }
            val shown = survey.state.value.error!!
            check(shown.code == "invalid_answer" && shown.next == NextStep.FIX_INPUT) { shown }
            check(shown.sentence == Refusals.of("invalid_answer").sentence) { "the rule's own sentence" }
            check(p.pendingCount() == before && survey.state.value.answers.isEmpty()) { "nothing was recorded" }
            check(survey.state.value.current!!.chosen == 3) { "the picks stay for the head to fix" }
            for (large in listOf(false, true)) checkScreen(shots, "survey", large, surveyScreen(survey.state.value, strip(), Theme(large), "2号楼"))

            survey.toggle("c")
            val kept = survey.submit()
            check(kept is BallotResult.Recorded && survey.state.value.error == null) { kept }
            check(survey.state.value.ownerHasAnswer && survey.state.value.answers.size == 1) { survey.state.value }
            val again = survey.submit()
            check(again is BallotResult.AlreadyHasBallot && survey.state.value.warning!!.startsWith("该户已答过")) { again }
        }
    }

    val wishes = WishesViewModel(p, "2", core)
    var firstOrder = ""

    r.test("微心愿: a new request is listed and goes take → in progress → done, in Chinese words") {
        runBlocking {
            wishes.load()
            check(wishes.state.value.rows.isEmpty() && wishes.state.value.dispatcher) { wishes.state.value }
            val door = wishes.state.value.doors.first { it.unit == doors[4] }
            check(door.room.matches(Regex("\\d+单元 \\S+"))) { door.room }
            check(wishes.create(door.unit, "帮忙换楼道灯泡", "3楼楼道灯不亮，老人晚上看不见") == null) { wishes.state.value.error!! }
            val row = wishes.state.value.rows.single()
            firstOrder = row.id
            check(row.title == "帮忙换楼道灯泡" && row.room == door.room && row.statusLabel == "已登记 · 待审核") { row }
            check(wishes.state.value.notice!!.startsWith("已记录心愿")) { wishes.state.value.notice!! }
            // Follow the buttons the screen offers, step by step, as the head (also dispatcher) taps them.
            val seen = mutableListOf<String>()
            for (tap in listOf("开始审核", "审核通过 · 发布", "接单", "开始办理", "已办好")) {
                val now = wishes.state.value.rows.single { it.id == firstOrder }
                val action = now.actions.firstOrNull { it.label == tap } ?: error("no 「$tap」 on ${now.statusLabel}: ${now.actions}")
                check(wishes.move(firstOrder, action.to) == null) { wishes.state.value.error!! }
                seen.add(wishes.state.value.rows.single { it.id == firstOrder }.statusLabel)
            }
            check(seen == listOf("审核中", "已发布 · 待接单", "已接单", "办理中", "已办好 · 待居民确认")) { seen }
            val done = wishes.state.value.rows.single { it.id == firstOrder }
            check(done.mine && done.assigneeLine == "我负责" && done.status == OrderStatus.DONE) { done }
            check(done.actions.map { it.label } == listOf("居民已确认", "居民有异议", "联系不上居民")) { done.actions }

            // An order the 支部 dispatched to this head: 接单 starts it at once.
            val second = p.createOrder(doors[5], "陪同去社区医院", "")
            for (to in listOf(OrderStatus.UNDER_REVIEW, OrderStatus.PUBLISHED)) p.moveOrder("2", second, to, "", null)
            p.moveOrder("2", second, OrderStatus.DISPATCHED, "", seeded.account)
            wishes.load()
            val dispatched = wishes.state.value.rows.single { it.id == second }
            check(dispatched.statusLabel == "已派单 · 待接单" && dispatched.actions.map { it.label } == listOf("接单 · 开始办理")) { dispatched }
            check(wishes.move(second, dispatched.actions.single().to) == null) { wishes.state.value.error!! }
            check(wishes.state.value.rows.single { it.id == second }.statusLabel == "办理中")
            check(wishes.state.value.open == 2 && wishes.state.value.mineOpen == 2) { wishes.state.value }
            // A third through the 记录新心愿 form: a suggestion tapped, no door yet, then the door.
            wishes.startNew()
            wishes.editDraft(title = "代缴水电费")
            val noDoor = wishes.submitNew()
            check(noDoor?.code == "no_door" && wishes.state.value.draft != null) { "${noDoor?.code}" }
            wishes.editDraft(unit = doors[6], detail = "每月月初")
            for (large in listOf(false, true)) checkScreen(shots, "wishes-new", large, newWishScreen(wishes.state.value, strip(), Theme(large), "2号楼"))
            check(wishes.submitNew() == null && wishes.state.value.draft == null) { wishes.state.value.error!! }
            check(wishes.state.value.rows.any { it.title == "代缴水电费" && it.status == OrderStatus.SUBMITTED })
            // An empty title is refused by the core, with its code.
            wishes.startNew(doors[6])
            wishes.editDraft(title = "   ")
            val empty = wishes.submitNew()
            check(empty?.code == "invalid_input" && empty.next == NextStep.FIX_INPUT && wishes.state.value.draft != null) { "${empty?.code}" }
            wishes.cancelNew()
            for (large in listOf(false, true)) checkScreen(shots, "wishes", large, wishesScreen(wishes.state.value, strip(), Theme(large), "2号楼"))
        }
    }

    r.test("微心愿: an illegal move is refused with its code and the order stays as it was") {
        runBlocking {
            val refused = wishes.move(firstOrder, OrderStatus.CLAIMED)
            check(refused != null && refused.code == "order_transition" && refused.next == NextStep.SYNC_FIRST) { refused!! }
            check(wishes.state.value.error?.code == "order_transition")
            val row = wishes.state.value.rows.single { it.id == firstOrder }
            check(row.status == OrderStatus.DONE && row.statusLabel == "已办好 · 待居民确认") { row }
            check(OrderStatus.CLAIMED !in row.actions.map { it.to }) { "the screen never offers it" }
            val order = p.orders("2").single { it.id == firstOrder }
            check(wishActions(order, "someone-else", dispatcher = false).isEmpty()) { "nothing for a stranger" }
        }
    }

    r.test("同步: pending is listed, a refusal reads by its code, and 重置此文档 asks first") {
        runBlocking {
            val sync = SyncViewModel(p, core)
            sync.show(strip())
            val s0 = sync.state.value
            check(!s0.loading && s0.error == null && s0.pending == p.pendingCount().toLong() && s0.pending > 0) { s0 }
            check(s0.pendingLine == "${s0.pending} 条记录待同步" && s0.rejections.isEmpty()) { s0 }

            // A refused document as the sync reports it: words for the document, sentence by code.
            val labels = DocumentLabels.read(p)
            val row = rejectionRow(Rejection("field/${seeded.resolution}/2", "campaign_closed", "campaign is closed"), labels)
            check(row.what == "2号楼 · ${p.campaigns().single { it.id == seeded.resolution }.title} · 走访与选票") { row.what }
            check(row.refusal == Refusals.of("campaign_closed") && !row.resetAdvised)
            val broken = rejectionRow(Rejection("orders/tpy/3", "unapplicable_changes", "x"), labels)
            check(broken.what == "3号楼 · 微心愿" && broken.resetAdvised && broken.next == "请重置此文档") { broken }
            check(labels.of("something/new") == "something/new")

            // Reset: nothing happens before 确定; 取消 keeps everything.
            p.createOrder(p.units("3", null).first().unit.code, "修理单元门禁", "")
            val docId = "orders/tpy/3"
            sync.load()
            val before = sync.state.value.pending
            sync.requestReset(docId)
            val asking = sync.state.value
            check(asking.confirm?.docId == docId && asking.confirm!!.what == "3号楼 · 微心愿" && asking.confirm!!.sentence.contains("会被删除")) { asking.confirm!! }
            check((asking.status as SyncStatus.Offline).pending == asking.pending) { "the strip and the heading agree: ${asking.status}" }
            check(p.orders("3").size == 1 && p.pendingCount().toLong() == before) { "nothing was reset yet" }
            for (large in listOf(false, true)) checkScreen(shots, "sync", large, syncScreen(asking, Theme(large)))
            sync.cancelReset()
            check(sync.state.value.confirm == null && p.orders("3").size == 1)
            sync.requestReset(docId)
            check(sync.confirmReset() == null) { sync.state.value.error!! }
            check(p.orders("3").isEmpty() && sync.state.value.pending < before) { "${sync.state.value.pending} vs $before" }
            check(sync.state.value.confirm == null && sync.state.value.notice!!.startsWith("已重置")) { sync.state.value }

            // The layout of refused documents (the sync report's rows), checked as an image too.
            val refused = SyncScreenState(
                status = SyncStatus.Done(lastSync, sync.state.value.pending, listOf(row, broken).map { Rejection(it.docId, it.code, "") }),
                pending = sync.state.value.pending,
                rejections = listOf(row, broken),
                loading = false,
            )
            for (large in listOf(false, true)) checkScreen(shots, "sync-rejected", large, syncScreen(refused, Theme(large)))
        }
    }

    r.test("设置: 长辈模式 is state; leaving is refused while work is pending, asks first when none is") {
        runBlocking {
            var left = 0
            val settings = SettingsViewModel(p, core, onLeave = { left += 1 })
            settings.load()
            val s = settings.state.value
            check(s.enrolled && s.roles == "楼栋长、支部派单员" && s.buildings == "1号楼、2号楼、3号楼" && s.device.isNotEmpty()) { s }
            check(!s.large)
            settings.toggleLarge()
            check(settings.state.value.large)
            settings.toggleLarge()
            val refused = settings.requestLeave()
            check(refused != null && refused.code == PENDING_WORK && refused.next == NextStep.SYNC_FIRST) { refused!! }
            check(refused.sentence.contains("${p.pendingCount()} 条记录没有同步") && !settings.state.value.confirmLeave)
            check(settings.confirmLeave()?.code == PENDING_WORK && left == 0) { "never left with work pending" }
            for (large in listOf(false, true)) {
                settings.setLarge(large)
                checkScreen(shots, "settings", large, settingsScreen(settings.state.value, strip(), Theme(settings.state.value.large)))
            }

            // A phone with nothing waiting (every document as the server has it): leaving asks, then hands over.
            val quiet = seedDemoReplica(File(dir, "quiet.db").path)
            val q = DoorstepReplica.open(File(dir, "quiet.db").path)
            val community = q.identity()!!.community
            val ids = quiet.buildings.flatMap { b -> listOf("building/$community/$b", "orders/$community/$b") + listOf(quiet.resolution, quiet.survey).map { "field/$it/$b" } } +
                listOf(quiet.resolution, quiet.survey).map { "campaign/$it" }
            ids.forEach(q::resetDocument)
            check(q.pendingCount() == 0uL) { "pending ${q.pendingCount()}" }
            val leaving = SettingsViewModel(q, core, onLeave = { left += 1 })
            check(leaving.requestLeave() == null && leaving.state.value.confirmLeave && left == 0) { leaving.state.value }
            leaving.cancelLeave()
            check(!leaving.state.value.confirmLeave && left == 0)
            leaving.requestLeave()
            check(leaving.confirmLeave() == null && left == 1 && leaving.state.value.left) { leaving.state.value }
            q.close()
        }
    }

    p.close()
    dir.deleteRecursively()
}

/** The work-screen tests alone: `N passed, N failed`, exit 1 on a failure. */
fun main() {
    val r = Runner()
    val work = Files.createTempDirectory("doorstep-screens-main").toFile()
    val path = File(work, "seeded.db").path
    val seed = seedDemoReplica(path)
    val phone = DoorstepReplica.open(path)
    val shots = File(System.getProperty("doorstep.screenshots") ?: work.path)
    workScreenTests(r, phone, seed, shots)
    phone.close()
    println("${r.passed} passed, ${r.failed} failed")
    work.deleteRecursively()
    kotlin.system.exitProcess(if (r.failed == 0) 0 else 1)
}
