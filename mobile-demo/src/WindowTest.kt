// The app in a real window under Xvfb: every screen of the running app (not a rendering of a
// state) at normal and large text, kept as PNGs, and taps delivered as mouse clicks on the
// window's components reach the view models: the 飞行模式 strip switches the network off, a
// door outcome is recorded, the bottom navigation moves between screens.
//
// Run by scripts/bindings-test.sh under `xvfb-run`: java … doorstep.demo.WindowTestKt SHOTS_DIR

package doorstep.demo

import doorstep.app.ManualNetwork
import doorstep.desktop.ACTION
import doorstep.desktop.DoorstepApp
import doorstep.desktop.PHONE_HEIGHT
import doorstep.desktop.PHONE_WIDTH
import doorstep.desktop.Route
import doorstep.desktop.showWindow
import java.awt.Component
import java.awt.Container
import java.awt.event.MouseEvent
import java.awt.image.BufferedImage
import java.io.File
import java.nio.file.Files
import javax.imageio.ImageIO
import javax.swing.JComponent
import javax.swing.JFrame
import javax.swing.SwingUtilities
import kotlinx.coroutines.runBlocking
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.seedDemoReplica

/** Waits until the Swing thread has run everything queued so far (redraws included). */
private fun settle() {
    repeat(3) { SwingUtilities.invokeAndWait {} }
}

private fun find(c: Component, action: String): JComponent? {
    if ((c as? JComponent)?.getClientProperty(ACTION) == action) return c
    if (c is Container) for (child in c.components) find(child, action)?.let { return it }
    return null
}

/** A real click on the window's component named [action] (as a finger's tap would arrive). */
private fun click(frame: JFrame, action: String) {
    var target: JComponent? = null
    SwingUtilities.invokeAndWait { target = find(frame.contentPane, action) }
    val c = target ?: error("no tap target $action on the screen")
    SwingUtilities.invokeAndWait {
        check(c.height >= doorstep.desktop.MIN_TAP) { "$action is ${c.height} px high" }
        for (id in listOf(MouseEvent.MOUSE_PRESSED, MouseEvent.MOUSE_RELEASED, MouseEvent.MOUSE_CLICKED)) {
            c.dispatchEvent(MouseEvent(c, id, System.currentTimeMillis(), 0, c.width / 2, c.height / 2, 1, false, MouseEvent.BUTTON1))
        }
    }
}

private fun shoot(frame: JFrame, file: File) {
    settle()
    val pane = frame.contentPane
    val image = BufferedImage(pane.width, pane.height, BufferedImage.TYPE_INT_RGB)
    SwingUtilities.invokeAndWait {
        val g = image.createGraphics()
        pane.printAll(g)
        g.dispose()
    }
    file.parentFile.mkdirs()
    ImageIO.write(image, "png", file)
    check(image.width == PHONE_WIDTH && image.height == PHONE_HEIGHT) { "${file.name}: ${image.width}×${image.height}" }
}

fun main(args: Array<String>) {
    val shots = File(args.getOrNull(0) ?: error("usage: WindowTest SHOTS_DIR"))
    val work = Files.createTempDirectory("doorstep-window").toFile()
    val r = Runner()
    try {
        for (large in listOf(false, true)) {
            val path = File(work, "phone-$large.db").path
            val seed = seedDemoReplica(path)
            val replica = DoorstepReplica.open(path)
            val network = ManualNetwork(true)
            val app = DoorstepApp(replica, network, serverUrl = null, large = large)
            val frame = showWindow(app)
            val suffix = if (large) "-large" else ""
            val door = replica.units("1", seed.resolution).first().unit.code

            r.test("the window${if (large) " in 长辈模式" else ""}: every screen of the running app, taps as clicks") {
                check(frame.isShowing && frame.contentPane.width == PHONE_WIDTH && frame.contentPane.height == PHONE_HEIGHT) {
                    "${frame.contentPane.width}×${frame.contentPane.height}"
                }
                runBlocking { app.go(Route.Home) }
                shoot(frame, File(shots, "window-home$suffix.png"))
                // The bottom navigation and the building row move between screens.
                click(frame, "building:1")
                done(app)
                check(app.route == Route.Doors("1")) { "after the tap: ${app.route}" }
                shoot(frame, File(shots, "window-doors$suffix.png"))
                click(frame, "door:$door")
                done(app)
                check(app.route == Route.Door("1", door)) { "after the tap: ${app.route}" }
                // 飞行模式 on, then one tap records the outcome, offline.
                click(frame, "airplane")
                done(app)
                check(!network.online.value) { "after the tap: ${app.route}" }
                val before = replica.unitTimeline(seed.resolution, door).size
                click(frame, "outcome:NOT_HOME")
                done(app)
                check(replica.unitTimeline(seed.resolution, door).size == before + 1) { "after the tap: ${app.route}" }
                shoot(frame, File(shots, "window-door$suffix.png"))
                click(frame, "ballot")
                done(app)
                check(app.route == Route.Ballot("1", door)) { "after the tap: ${app.route}" }
                shoot(frame, File(shots, "window-ballot$suffix.png"))
                runBlocking { app.go(Route.Door("1", door)) }
                click(frame, "survey")
                done(app)
                check(app.route == Route.Survey("1", door)) { "after the tap: ${app.route}" }
                shoot(frame, File(shots, "window-survey$suffix.png"))
                for ((nav, route, name) in listOf(
                    Triple("nav:wishes", Route.Wishes("1"), "wishes"),
                    Triple("nav:notices", Route.Notices, "notices"),
                    Triple("nav:sync", Route.Sync, "sync"),
                    Triple("nav:settings", Route.Settings, "settings"),
                )) {
                    click(frame, nav)
                    done(app)
                check(app.route == route) { "after the tap: ${app.route}" }
                    shoot(frame, File(shots, "window-$name$suffix.png"))
                }
                // 设置: the 长辈模式 row switches the whole app's text size; leaving is refused
                // while records wait on the phone.
                click(frame, "large")
                done(app)
                check(app.theme.large == !large) { "长辈模式 switched" }
                click(frame, "large")
                done(app)
                check(app.theme.large == large)
                click(frame, "离开此手机")
                done(app)
                check(app.settings.state.value.error?.code == "pending_work") { app.settings.state.value }
            }
            SwingUtilities.invokeAndWait { frame.dispose() }
            replica.destroy()
        }
        r.test("扫码加入 is the first screen of a phone that has not joined") {
            for (large in listOf(false, true)) {
                val replica = DoorstepReplica.open(File(work, "fresh-$large.db").path)
                val app = DoorstepApp(replica, ManualNetwork(true), serverUrl = "http://127.0.0.1:8080", large = large)
                check(app.route == Route.Join)
                val frame = showWindow(app)
                shoot(frame, File(shots, if (large) "window-join-large.png" else "window-join.png"))
                check(find(frame.contentPane, "nav:home") == null) { "no navigation before joining" }
                check(find(frame.contentPane, "open-qr") != null && find(frame.contentPane, "join") != null)
                // A door before joining: the head stays on 扫码加入 and reads why.
                runBlocking { app.go(Route.Ballot("1", "1-1-0101")) }
                check(app.route == Route.Join && app.banner?.code == "not_enrolled") { "${app.route} ${app.banner}" }
                if (!large) shoot(frame, File(shots, "window-join-refused.png"))
                SwingUtilities.invokeAndWait { frame.dispose() }
            }
        }
    } finally {
        work.deleteRecursively()
    }
    println("${r.passed} passed, ${r.failed} failed")
    kotlin.system.exitProcess(if (r.failed == 0) 0 else 1)
}

/** Waits for the taps' work (the app's coroutines) and the redraw it queued on the Swing thread. */
private fun done(app: DoorstepApp) {
    runBlocking { app.awaitTaps() }
    settle()
}
