// The building head's app on the desktop: one phone-sized window (390×844) over app-core's view
// models. Every core call runs on one background dispatcher (`core`), the sync engine syncs on
// demand, on reconnect (the 飞行模式 strip) and every minute, and the window is redrawn on the
// Swing thread from the current state after each tap. `--day` drives the same view models
// through a building (visits, ballots, a correction, a 微心愿) so a viewer can watch.
//
//   java … doorstep.desktop.AppKt STORE_DIR [--server URL --code CODE] [--day] [--large]

package doorstep.desktop

import doorstep.app.BallotViewModel
import doorstep.app.DoorFilter
import doorstep.app.DoorViewModel
import doorstep.app.HomeViewModel
import doorstep.app.JoinEvent
import doorstep.app.JoinViewModel
import doorstep.app.ManualNetwork
import doorstep.app.NoticesViewModel
import doorstep.app.OpenedStore
import doorstep.app.SettingsViewModel
import doorstep.app.SurveyViewModel
import doorstep.app.SyncEngine
import doorstep.app.SyncStatus
import doorstep.app.SyncViewModel
import doorstep.app.SystemClock
import doorstep.app.UnitListEvent
import doorstep.app.UnitListViewModel
import doorstep.app.UrlConnectionTransport
import doorstep.app.WishesViewModel
import doorstep.app.openStore
import java.awt.Component
import java.awt.Container
import java.awt.Dimension
import java.awt.event.MouseAdapter
import java.awt.event.MouseEvent
import java.io.File
import javax.swing.JComponent
import javax.swing.JFileChooser
import javax.swing.JFrame
import javax.swing.JOptionPane
import javax.swing.SwingUtilities
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.CampaignKind
import uniffi.doorstep_ffi.CampaignStatus
import uniffi.doorstep_ffi.Choice
import uniffi.doorstep_ffi.CollectionMethod
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.OrderStatus

/** Where the head is. */
sealed interface Route {
    data object Join : Route
    data object Home : Route
    data class Doors(val building: String) : Route
    data class Door(val building: String, val unit: String) : Route
    data class Ballot(val building: String, val unit: String) : Route
    data class Survey(val building: String, val unit: String) : Route
    data class Wishes(val building: String) : Route
    data object Sync : Route
    data object Notices : Route
    data object Settings : Route
}

/** The app: its view models, the sync engine, and what the window shows. */
class DoorstepApp(
    private val replica: DoorstepReplica,
    private val network: ManualNetwork,
    serverUrl: String?,
    large: Boolean = false,
    /** 离开此手机, after 设置 checked that nothing is pending and the head confirmed: the
     *  platform closes the store and deletes it with its key (main() below). */
    onLeave: suspend () -> Unit = { error("this app cannot leave the phone") },
) {
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val core = Dispatchers.IO.limitedParallelism(1)
    private val actions = Mutex()
    private var transport = UrlConnectionTransport(serverUrl ?: "http://127.0.0.1:1", network)
    private var engine = SyncEngine(replica, transport, network, SystemClock, scope)
    var theme = Theme(large)
        private set
    var route: Route = if (replica.identity() == null) Route.Join else Route.Home
        private set

    val join = JoinViewModel(replica, { UrlConnectionTransport(it, network) }, core, Dispatchers.IO, "doorstep desktop")
    val home = HomeViewModel(replica, core)
    val notices = NoticesViewModel(replica, core)
    val settings = SettingsViewModel(replica, core, onLeave = onLeave, large = large)
    val sync = SyncViewModel(replica, core) { engine.syncNow() }
    private var doors: UnitListViewModel? = null
    private var door: DoorViewModel? = null
    private var ballot: BallotViewModel? = null
    private var survey: SurveyViewModel? = null
    private var wishes: WishesViewModel? = null

    /** Called on the Swing thread with the screen to show, after every change. */
    var onScreen: (JComponent) -> Unit = {}

    /** Called after each step of the scripted day with the step's name (the demo saves a PNG). */
    var afterStep: (String) -> Unit = {}

    init {
        serverUrl?.let { join.onEvent(JoinEvent.Server(it)) }
        // Periodically, as WorkManager would on Android; the engine backs off after failures.
        scope.launch {
            while (true) {
                delay(60_000)
                if (route != Route.Join) engine.tick()
                redraw()
            }
        }
        // A sync that brought or delivered something: the open screen and the 通知 count are
        // read again (what the head was typing stays: the view models keep their drafts).
        scope.launch {
            engine.status.collect { status ->
                if (status is SyncStatus.Done) actions.withLock { refresh() }
                redraw()
            }
        }
    }

    /** Reads the current screen's state again from the store. */
    private suspend fun refresh() {
        notices.load()
        when (route) {
            Route.Join -> {}
            Route.Home -> home.load()
            is Route.Doors -> doors?.load()
            is Route.Door -> door?.load()
            is Route.Ballot -> ballot?.load()
            is Route.Survey -> survey?.load()
            is Route.Wishes -> wishes?.load()
            Route.Sync -> sync.load()
            Route.Notices -> {}
            Route.Settings -> settings.load()
        }
    }

    private fun campaign(kind: (CampaignKind) -> Boolean): String? = replica.campaigns()
        .firstOrNull { kind(it.kind) && (it.status == CampaignStatus.PUBLISHED || it.status == CampaignStatus.OPEN) }?.id

    /** The vote or election in the field (a survey has its own screen, 意见征询). */
    private val fieldCampaign get() = campaign { it != CampaignKind.SURVEY } ?: home.state.value.following
    private val surveyCampaign get() = campaign { it == CampaignKind.SURVEY }
    private val firstBuilding get() = replica.identity()?.buildings?.firstOrNull()

    /** What the shell itself refused (no campaign to work on), shown above the screen. */
    var banner: doorstep.app.Refusal? = null
        private set

    /** Moves to [to] and loads its view model; a door screen needs a campaign in the field,
     *  and without one the head stays where they are and reads why. */
    suspend fun go(to: Route) {
        val needed = try {
            withContext(core) {
                when (to) {
                    is Route.Door, is Route.Ballot -> fieldCampaign
                    is Route.Survey -> surveyCampaign
                    else -> ""
                }
            }
        } catch (e: uniffi.doorstep_ffi.ApiException) {
            banner = doorstep.app.Refusals.of(e)
            redraw()
            return
        }
        if (needed == null) {
            banner = doorstep.app.Refusals.of("no_open_campaign")
            redraw()
            return
        }
        banner = null
        route = to
        when (to) {
            Route.Join -> {}
            Route.Home -> home.load()
            is Route.Doors -> UnitListViewModel(replica, to.building, fieldCampaign, core, scope).also { doors = it }.load()
            is Route.Door -> DoorViewModel(replica, to.building, needed, to.unit, core).also { door = it }.load()
            is Route.Ballot -> BallotViewModel(replica, to.building, needed, to.unit, core).also { ballot = it }.load()
            is Route.Survey -> SurveyViewModel(replica, to.building, needed, to.unit, core).also { survey = it }.load()
            is Route.Wishes -> WishesViewModel(replica, to.building, core).also { wishes = it }.load()
            Route.Sync -> { sync.show(engine.status.value); sync.load() }
            Route.Notices -> notices.load()
            Route.Settings -> settings.load()
        }
        redraw()
    }

    /** One tap: what the screen's target named ([ACTION]). */
    fun tap(action: String) {
        inFlight.add(scope.launch { act(action) })
    }

    private val inFlight = java.util.concurrent.ConcurrentLinkedQueue<kotlinx.coroutines.Job>()

    /** Returns once every tap so far has done its work (tests wait on it instead of sleeping). */
    suspend fun awaitTaps() {
        while (true) (inFlight.poll() ?: return).join()
    }

    /** The tap's work, awaited (the scripted day and the tests use it). */
    suspend fun act(action: String) {
        actions.withLock { handle(action) }
        redraw()
    }

    private suspend fun handle(action: String) {
        val (verb, arg) = action.substringBefore(':') to action.substringAfter(':', "")
        val r = route
        when (verb) {
            "airplane" -> network.set(!network.online.value)
            "nav" -> when (arg) {
                "home" -> go(Route.Home)
                "doors" -> firstBuilding?.let { go(Route.Doors(it)) }
                "wishes" -> firstBuilding?.let { go(Route.Wishes(it)) }
                "notices" -> go(Route.Notices)
                "sync" -> go(Route.Sync)
                "settings" -> go(Route.Settings)
            }
            "building" -> go(Route.Doors(arg))
            "filter" -> doors?.onEvent(UnitListEvent.Filter(DoorFilter.valueOf(arg)))
            "door" -> (r as? Route.Doors)?.let { go(Route.Door(it.building, arg)) }
            "outcome" -> { door?.record(DoorOutcome.valueOf(arg)); engine.syncNow() }
            "ballot" -> (r as? Route.Door)?.let { go(Route.Ballot(it.building, it.unit)) }
            "survey" -> (r as? Route.Door)?.let { go(Route.Survey(it.building, it.unit)) }
            "choose" -> {
                val (question, candidate, choice) = arg.split(':')
                ballot?.choose(question, candidate.ifEmpty { null }, Choice.valueOf(choice))
            }
            "method" -> ballot?.collectedBy(CollectionMethod.valueOf(arg))
            "发票" -> ballot?.deliver()
            "收票" -> ballot?.collect()
            "更正选票" -> ballot?.startCorrection()
            "保存更正" -> ballot?.correct()
            "取消", "取消更正" -> { ballot?.cancelCorrection(); sync.cancelReset(); settings.cancelLeave() }
            "move" -> {
                val (order, to) = arg.split(':')
                wishes?.move(order, OrderStatus.valueOf(to))
            }
            "立即同步" -> { engine.syncNow(); sync.show(engine.status.value); sync.load() }
            "长辈模式", "large" -> { settings.toggleLarge(); theme = Theme(settings.state.value.large) }
            "离开此手机" -> settings.requestLeave()
            "确定离开" -> settings.confirmLeave()
            "notices-seen" -> notices.markSeen()
            "join" -> if (join.join() == null && replica.identity() != null) {
                engine.syncNow()
                go(Route.Home)
            }
            "open-qr" -> pickQrImage()?.let { file ->
                join.onEvent(JoinEvent.Scanned(QrImages.decode(file) ?: ""))
            }
            "type-server" -> ask("服务器地址")?.let { join.onEvent(JoinEvent.Server(it)) }
            "type-code" -> ask("入网码")?.let { join.onEvent(JoinEvent.Code(it)) }
        }
        // After a recording action, the door list and home figures are read again on return.
        if (verb in setOf("outcome", "发票", "收票", "保存更正", "move")) home.load()
    }

    /** The screen for the current route, inside the phone's chrome. */
    fun screen(): JComponent {
        val t = theme
        val status = engine.status.value
        val label = { b: String -> "${b}号楼" }
        val (content, nav) = when (val r = route) {
            Route.Join -> joinScreen(join.state.value, t) to null
            Route.Home -> homeScreen(home.state.value, status, t, replica.identity()?.community ?: "") to "nav:home"
            is Route.Doors -> doorListScreen(doors!!.state.value, status, t, label(r.building)) to "nav:doors"
            is Route.Door -> doorScreen(door!!.state.value, t, label(r.building)) to "nav:doors"
            is Route.Ballot -> ballotScreen(ballot!!.state.value, status, t, label(r.building)) to "nav:doors"
            is Route.Survey -> surveyScreen(survey!!.state.value, status, t, label(r.building)) to "nav:doors"
            is Route.Wishes -> wishesScreen(wishes!!.state.value, status, t, label(r.building)) to "nav:wishes"
            Route.Sync -> syncScreen(sync.state.value, t) to "nav:sync"
            Route.Notices -> noticesScreen(notices.state.value, t) to "nav:notices"
            Route.Settings -> settingsScreen(settings.state.value, status, t) to "nav:settings"
        }
        val chrome = phoneChrome(content, t, !network.online.value, nav, notices.state.value.unread, route != Route.Join, banner)
        wire(chrome)
        return chrome
    }

    private fun redraw() {
        SwingUtilities.invokeLater { onScreen(screen()) }
    }

    /** Every component named with an action becomes tappable. */
    private fun wire(c: Component) {
        val action = (c as? JComponent)?.getClientProperty(ACTION) as? String
        if (action != null) {
            c.addMouseListener(object : MouseAdapter() {
                override fun mouseClicked(e: MouseEvent) = tap(action)
            })
            c.cursor = java.awt.Cursor.getPredefinedCursor(java.awt.Cursor.HAND_CURSOR)
        }
        if (c is Container) c.components.forEach(::wire)
    }

    private fun pickQrImage(): File? {
        var picked: File? = null
        SwingUtilities.invokeAndWait {
            val chooser = JFileChooser().apply { dialogTitle = "打开入网二维码图片" }
            if (chooser.showOpenDialog(null) == JFileChooser.APPROVE_OPTION) picked = chooser.selectedFile
        }
        return picked
    }

    private fun ask(what: String): String? {
        var typed: String? = null
        SwingUtilities.invokeAndWait { typed = JOptionPane.showInputDialog(null, what) }
        return typed?.takeIf { it.isNotBlank() }
    }

    /** The scripted "day of canvassing": the real view models, one step at a time. */
    suspend fun canvassingDay(pause: Long = 900) {
        var n = 0
        suspend fun shown(what: String) {
            delay(pause)
            n += 1
            afterStep("%02d-%s".format(n, what.substringBefore(':')))
        }
        suspend fun step(action: String) { act(action); shown(action) }
        val building = firstBuilding ?: return
        go(Route.Home); shown("home")
        step("building:$building")
        val units = replica.units(building, fieldCampaign).map { it.unit.code }.take(6)
        step("airplane")
        for ((i, unit) in units.withIndex()) {
            go(Route.Door(building, unit)); shown("door")
            if (i % 3 == 2) { step("outcome:NOT_HOME"); continue }
            step("outcome:OTHER")
            go(Route.Ballot(building, unit)); shown("ballot")
            val row = ballot!!.state.value.rows.firstOrNull() ?: continue
            step("choose:${row.question}:${row.candidate ?: ""}:YES")
            if (i == 1) step("method:PROXY")
            step("收票")
            if (i == 0) { step("收票"); step("更正选票"); step("choose:${row.question}:${row.candidate ?: ""}:NO"); step("保存更正") }
        }
        go(Route.Wishes(building)); shown("wishes")
        wishes?.create(units.first(), "楼道灯不亮", "3楼楼道灯坏了"); redraw(); shown("wish")
        go(Route.Sync); shown("sync-offline")
        // 飞行模式 off: the engine delivers the day's work on reconnect.
        step("airplane")
        engine.syncNow()
        go(Route.Sync); shown("sync-done")
        go(Route.Home); shown("home-after")
    }
}

/** Opens the window (needs a display: `xvfb-run` on a server). */
fun showWindow(app: DoorstepApp): JFrame {
    val frame = JFrame("doorstep · 楼栋长")
    SwingUtilities.invokeAndWait {
        frame.defaultCloseOperation = JFrame.EXIT_ON_CLOSE
        frame.contentPane.preferredSize = Dimension(PHONE_WIDTH, PHONE_HEIGHT)
        frame.isResizable = false
        app.onScreen = { screen ->
            frame.contentPane.removeAll()
            frame.contentPane.add(screen)
            frame.contentPane.revalidate()
            frame.contentPane.repaint()
        }
        frame.contentPane.add(app.screen())
        frame.pack()
        frame.isVisible = true
    }
    return frame
}

fun main(args: Array<String>) {
    val dir = File(args.firstOrNull() ?: error("usage: App STORE_DIR [--server URL --code CODE] [--day] [--large]"))
    fun option(name: String): String? = args.indexOf(name).takeIf { it >= 0 }?.let { args.getOrNull(it + 1) }
    dir.mkdirs()
    val keys = Pkcs12StoreKeys(File(dir, "keys.p12"), "doorstep-desktop".toCharArray())
    val replica = when (val opened = openStore(File(dir, "phone.db").path, keys)) {
        is OpenedStore.Ready -> opened.replica
        is OpenedStore.Refused -> error(opened.refusal.sentence)
    }
    val leave: suspend () -> Unit = {
        // Nothing is pending (设置 checked): the store and its key go, and the phone can be
        // handed on; it joins again with a new code.
        replica.destroy()
        dir.listFiles()?.filter { it.name.startsWith("phone.db") || it.name == "keys.p12" }?.forEach { it.delete() }
        SwingUtilities.invokeAndWait { JOptionPane.showMessageDialog(null, "这台手机上的资料已删除，可以交还手机。") }
        kotlin.system.exitProcess(0)
    }
    val app = DoorstepApp(replica, ManualNetwork(true), option("--server"), large = "--large" in args, onLeave = leave)
    option("--code")?.let { app.join.onEvent(JoinEvent.Code(it)) }
    val frame = showWindow(app)
    System.getenv("DOORSTEP_SHOTS")?.let { dir ->
        app.afterStep = { name ->
            SwingUtilities.invokeAndWait {
                val pane = frame.contentPane
                val image = java.awt.image.BufferedImage(pane.width, pane.height, java.awt.image.BufferedImage.TYPE_INT_RGB)
                val g = image.createGraphics()
                pane.printAll(g)
                g.dispose()
                File(dir).mkdirs()
                javax.imageio.ImageIO.write(image, "png", File(dir, "$name.png"))
            }
        }
    }
    app.scope.launch {
        if (app.route == Route.Join && option("--code") != null) app.act("join")
        if (app.route != Route.Join) app.go(Route.Home)
        if ("--day" in args) {
            delay(1500)
            app.canvassingDay()
            println("the day is done: ${replica.pendingCount()} records wait to sync")
            if ("--exit" in args) kotlin.system.exitProcess(0)
        }
    }
}
