// The building head's screens in a phone-sized window (390×844), drawn with Swing from the
// app-core view models' states. Only this folder knows Swing: on Android these functions become
// Compose screens over the same states. Elder-friendly (适老化): text at least 18 px in the large
// mode, rows and buttons at least 60 px high, dark text on light chips (contrast ≥ 4.5:1), and
// every state written in words (colour is never the only cue).

package doorstep.desktop

import doorstep.app.DoorFilter
import doorstep.app.DoorStatus
import doorstep.app.SyncStatus
import doorstep.app.UnitListState
import java.awt.BorderLayout
import java.awt.Color
import java.awt.Component
import java.awt.Dimension
import java.awt.FlowLayout
import java.awt.GridLayout
import java.awt.Font
import java.awt.RenderingHints
import java.awt.image.BufferedImage
import java.io.File
import java.text.SimpleDateFormat
import java.util.Date
import java.util.TimeZone
import javax.imageio.ImageIO
import javax.swing.BorderFactory
import javax.swing.BoxLayout
import javax.swing.JComponent
import javax.swing.JLabel
import javax.swing.JPanel
import javax.swing.JScrollPane
import javax.swing.ScrollPaneConstants
import javax.swing.SwingConstants

/** The phone's logical size. */
const val PHONE_WIDTH = 390
const val PHONE_HEIGHT = 844

/** The smallest tap target (适老化: 60×60 dp). */
const val MIN_TAP = 60

/** The client property naming what a tap target does ("door:1-1-0101", "outcome:NOT_HOME",
 *  "收票"): screens only draw, and the app shell (App.kt) turns a tap into the view model's
 *  event, as a Compose screen would take an `onClick` lambda. */
const val ACTION = "doorstep.action"

/** Marks this component as the tap target for [action]. */
fun <T : JComponent> T.tapAction(action: String): T = apply { putClientProperty(ACTION, action) }

/** Text sizes and tap targets: normal, or 长辈模式 (large text). */
data class Theme(val large: Boolean) {
    val body: Float = if (large) 22f else 17f
    val title: Float = if (large) 26f else 21f
    val small: Float = if (large) 18f else 14f
    val row: Int = if (large) 76 else 60

    fun font(size: Float, bold: Boolean = false): Font =
        Font(FAMILY, if (bold) Font.BOLD else Font.PLAIN, 1).deriveFont(size)

    companion object {
        /** A CJK font this machine has (fonts-wqy-microhei); Android uses its system font. */
        const val FAMILY = "WenQuanYi Micro Hei"
        val INK = Color(0x1A, 0x1A, 0x1A)
        val MUTED = Color(0x4A, 0x4A, 0x4A)
        val LINE = Color(0xD0, 0xD0, 0xD0)
        val BAR = Color(0x0B, 0x4F, 0x8A)
    }
}

/** Chip colours: a light background with dark text of the same hue (≥ 4.5:1 each). */
private fun chipColours(s: DoorStatus): Pair<Color, Color> = when (s) {
    DoorStatus.NOT_VISITED -> Color(0xEE, 0xEE, 0xEE) to Color(0x33, 0x33, 0x33)
    DoorStatus.NOT_HOME, DoorStatus.COME_BACK -> Color(0xFF, 0xF0, 0xC8) to Color(0x6B, 0x45, 0x00)
    DoorStatus.DELIVERED -> Color(0xDC, 0xEB, 0xFA) to Color(0x0B, 0x3D, 0x6E)
    DoorStatus.COLLECTED -> Color(0xDD, 0xF3, 0xE2) to Color(0x14, 0x55, 0x2B)
    DoorStatus.REFUSED -> Color(0xFB, 0xE0, 0xE0) to Color(0x8A, 0x16, 0x16)
    DoorStatus.VACANT, DoorStatus.VISITED -> Color(0xEC, 0xEA, 0xF6) to Color(0x3B, 0x30, 0x6E)
}

internal fun label(text: String, font: Font, colour: Color = Theme.INK): JLabel =
    JLabel(text).apply {
        this.font = font
        foreground = colour
    }

/** [text] with the characters [font] cannot draw (e.g. ⏳, which Android's emoji font has)
 *  replaced by ○, so a sign never turns into an empty box. */
fun displayable(text: String, font: Font): String =
    text.map { c -> if (font.canDisplay(c)) c else '○' }.joinToString("")

private fun clock(at: Long): String =
    SimpleDateFormat("HH:mm").apply { timeZone = TimeZone.getTimeZone("Asia/Shanghai") }.format(Date(at))

/** The permanent sync strip: state in words, pending count, last sync. */
fun syncStripText(s: SyncStatus): String = when (s) {
    is SyncStatus.Idle -> "尚未同步 · ${s.pending} 条待同步"
    is SyncStatus.Syncing -> "正在同步… · ${s.pending} 条待同步"
    is SyncStatus.Offline -> "离线 · ${s.pending} 条待同步" + (s.lastSyncAt?.let { " · 上次同步 ${clock(it)}" } ?: "")
    is SyncStatus.Failed -> "同步未成功 · ${s.pending} 条待同步 · ${clock(s.retryAt)} 再试"
    is SyncStatus.Done -> "已同步 · ${s.pending} 条待同步 · 上次同步 ${clock(s.lastSyncAt)}" +
        if (s.rejected.isNotEmpty()) " · ${s.rejected.size} 份被退回" else ""
}

private fun syncStrip(s: SyncStatus, t: Theme): JComponent {
    val (bg, fg) = when (s) {
        is SyncStatus.Done -> Color(0xDD, 0xF3, 0xE2) to Color(0x14, 0x55, 0x2B)
        is SyncStatus.Failed -> Color(0xFB, 0xE0, 0xE0) to Color(0x8A, 0x16, 0x16)
        else -> Color(0xFF, 0xF0, 0xC8) to Color(0x6B, 0x45, 0x00)
    }
    return JPanel(BorderLayout()).apply {
        background = bg
        border = BorderFactory.createEmptyBorder(8, 14, 8, 14)
        add(label(syncStripText(s), t.font(t.small, bold = true), fg), BorderLayout.CENTER)
        maximumSize = Dimension(PHONE_WIDTH, 200)
    }
}

private fun chip(text: String, status: DoorStatus?, t: Theme, selected: Boolean = false): JComponent {
    val (bg, fg) = status?.let(::chipColours)
        ?: if (selected) Theme.BAR to Color.WHITE else Color(0xEE, 0xEE, 0xEE) to Theme.INK
    return label(text, t.font(t.small, bold = true), fg).apply {
        isOpaque = true
        background = bg
        border = BorderFactory.createEmptyBorder(6, 6, 6, 6)
        horizontalAlignment = SwingConstants.CENTER
    }
}

/** 门牌列表 for [state], under the sync strip [sync]. */
fun doorListScreen(state: UnitListState, sync: SyncStatus, t: Theme, buildingLabel: String): JComponent {
    val root = JPanel(BorderLayout()).apply { background = Color.WHITE }
    val top = JPanel().apply {
        layout = BoxLayout(this, BoxLayout.Y_AXIS)
        background = Color.WHITE
    }
    top.add(JPanel(BorderLayout()).apply {
        background = Theme.BAR
        border = BorderFactory.createEmptyBorder(12, 14, 12, 14)
        add(label("$buildingLabel · 门牌列表", t.font(t.title, bold = true), Color.WHITE), BorderLayout.CENTER)
        maximumSize = Dimension(PHONE_WIDTH, 200)
    })
    top.add(syncStrip(sync, t))
    top.add(JPanel(BorderLayout()).apply {
        background = Color.WHITE
        border = BorderFactory.createEmptyBorder(10, 14, 4, 14)
        add(label("已走访 ${state.visited}/${state.total} 户 · 已收回 ${state.ballots} 票", t.font(t.body, bold = true)), BorderLayout.CENTER)
        maximumSize = Dimension(PHONE_WIDTH, 200)
    })
    // Filter chips are tap targets: a grid of cells at least 60 px high (two rows in large text).
    val columns = if (t.large) 2 else 4
    top.add(JPanel(GridLayout(0, columns, 6, 6)).apply {
        background = Color.WHITE
        border = BorderFactory.createEmptyBorder(0, 8, 6, 8)
        for (f in listOf(DoorFilter.ALL, DoorFilter.TO_DO, DoorFilter.NOT_VISITED, DoorFilter.COLLECTED)) {
            val n = state.counts[f] ?: 0
            add(chip((if (f == state.filter) "✓ " else "") + "${f.label} $n", null, t, selected = f == state.filter).apply {
                preferredSize = Dimension(0, MIN_TAP)
            }.tapAction("filter:${f.name}"))
        }
        maximumSize = Dimension(PHONE_WIDTH, 2 * MIN_TAP + 24)
    })
    root.add(top, BorderLayout.NORTH)

    val list = JPanel().apply {
        layout = BoxLayout(this, BoxLayout.Y_AXIS)
        background = Color.WHITE
    }
    for (group in state.groups) {
        list.add(JPanel(BorderLayout()).apply {
            background = Color(0xF4, 0xF4, 0xF4)
            border = BorderFactory.createEmptyBorder(6, 14, 6, 14)
            add(label(group.title, t.font(t.small, bold = true), Theme.MUTED), BorderLayout.CENTER)
            maximumSize = Dimension(PHONE_WIDTH, 100)
            alignmentX = Component.LEFT_ALIGNMENT
        })
        for (row in group.rows) {
            list.add(JPanel(BorderLayout(10, 0)).apply {
                background = Color.WHITE
                border = BorderFactory.createCompoundBorder(
                    BorderFactory.createMatteBorder(0, 0, 1, 0, Theme.LINE),
                    BorderFactory.createEmptyBorder(0, 14, 0, 14),
                )
                preferredSize = Dimension(PHONE_WIDTH, t.row)
                maximumSize = Dimension(PHONE_WIDTH, t.row)
                alignmentX = Component.LEFT_ALIGNMENT
                add(label(row.room, t.font(t.title, bold = true)), BorderLayout.WEST)
                add(label(row.owner, t.font(t.body), Theme.MUTED), BorderLayout.CENTER)
                add(JPanel(FlowLayout(FlowLayout.RIGHT, 0, (t.row - 34) / 2)).apply {
                    isOpaque = false
                    add(chip(row.chip, row.status, t))
                }, BorderLayout.EAST)
            }.tapAction("door:${row.unit}"))
        }
    }
    if (state.groups.isEmpty()) {
        list.add(label(if (state.loading) "正在读取…" else "没有符合筛选的门户", t.font(t.body), Theme.MUTED).apply {
            border = BorderFactory.createEmptyBorder(20, 14, 20, 14)
        })
    }
    root.add(JScrollPane(list).apply {
        border = null
        horizontalScrollBarPolicy = ScrollPaneConstants.HORIZONTAL_SCROLLBAR_NEVER
    }, BorderLayout.CENTER)
    return root
}

/** Paint [screen] at the phone's size into a PNG (works headless; no window needed). */
fun screenshot(screen: JComponent, file: File, width: Int = PHONE_WIDTH, height: Int = PHONE_HEIGHT) {
    screen.setSize(width, height)
    layoutTree(screen)
    val image = BufferedImage(width, height, BufferedImage.TYPE_INT_RGB)
    val g = image.createGraphics()
    g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON)
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON)
    screen.printAll(g)
    g.dispose()
    file.parentFile?.mkdirs()
    ImageIO.write(image, "png", file)
}

private fun layoutTree(c: Component) {
    c.doLayout()
    if (c is java.awt.Container) c.components.forEach(::layoutTree)
}

/** 首页: the sync strip, each assigned building's progress, and the campaign cards. */
fun homeScreen(state: doorstep.app.HomeState, sync: SyncStatus, t: Theme, community: String): JComponent {
    val root = JPanel().apply {
        layout = BoxLayout(this, BoxLayout.Y_AXIS)
        background = Color.WHITE
    }
    fun block(c: JComponent): JComponent = c.apply {
        alignmentX = Component.LEFT_ALIGNMENT
        maximumSize = Dimension(PHONE_WIDTH, preferredSize.height)
    }
    root.add(block(JPanel(BorderLayout()).apply {
        background = Theme.BAR
        border = BorderFactory.createEmptyBorder(12, 14, 12, 14)
        add(label("$community · 首页", t.font(t.title, bold = true), Color.WHITE), BorderLayout.CENTER)
    }))
    root.add(block(syncStrip(sync, t)))
    root.add(block(label("我的楼栋", t.font(t.small, bold = true), Theme.MUTED).apply {
        border = BorderFactory.createEmptyBorder(14, 14, 6, 14)
    }))
    for (b in state.buildings) {
        root.add(block(JPanel(BorderLayout()).apply {
            background = Color.WHITE
            border = BorderFactory.createCompoundBorder(
                BorderFactory.createMatteBorder(0, 0, 1, 0, Theme.LINE),
                BorderFactory.createEmptyBorder(0, 14, 0, 14),
            )
            preferredSize = Dimension(PHONE_WIDTH, t.row)
            add(label(b.line, t.font(t.body, bold = true)), BorderLayout.CENTER)
            add(label("›", t.font(t.title), Theme.MUTED), BorderLayout.EAST)
        }.tapAction("building:${b.id}")))
    }
    root.add(block(label("投票与议题", t.font(t.small, bold = true), Theme.MUTED).apply {
        border = BorderFactory.createEmptyBorder(18, 14, 6, 14)
    }))
    for (c in state.campaigns) {
        root.add(block(JPanel().apply {
            layout = BoxLayout(this, BoxLayout.Y_AXIS)
            background = Color(0xF7, 0xF9, 0xFC)
            border = BorderFactory.createCompoundBorder(
                BorderFactory.createEmptyBorder(4, 10, 4, 10),
                BorderFactory.createCompoundBorder(
                    BorderFactory.createLineBorder(Theme.LINE),
                    BorderFactory.createEmptyBorder(10, 12, 10, 12),
                ),
            )
            add(label(c.title, t.font(t.body, bold = true)))
            add(label("${c.kind} · ${c.status}" + if (c.accepting) " · 可以上门" else "", t.font(t.small), Theme.MUTED))
        }))
    }
    state.error?.let { root.add(block(label(it.sentence, t.font(t.body), Color(0x8A, 0x16, 0x16)))) }
    return JPanel(BorderLayout()).apply {
        background = Color.WHITE
        add(root, BorderLayout.NORTH)
    }
}

/** 门户详情 with the 记录结果 buttons: the door, its timeline (✓已同步 / ⏳待同步), one tap. */
fun doorScreen(state: doorstep.app.DoorState, t: Theme, buildingLabel: String): JComponent {
    val root = JPanel().apply {
        layout = BoxLayout(this, BoxLayout.Y_AXIS)
        background = Color.WHITE
    }
    fun block(c: JComponent): JComponent = c.apply {
        alignmentX = Component.LEFT_ALIGNMENT
        maximumSize = Dimension(PHONE_WIDTH, preferredSize.height)
    }
    root.add(block(JPanel(BorderLayout()).apply {
        background = Theme.BAR
        border = BorderFactory.createEmptyBorder(12, 14, 12, 14)
        add(label("$buildingLabel ${state.room} · ${state.owner}", t.font(t.title, bold = true), Color.WHITE), BorderLayout.CENTER)
    }))
    root.add(block(label(
        if (state.waiting > 0) "本户 ${state.waiting} 条记录待同步" else "本户记录均已同步",
        t.font(t.small, bold = true),
        Theme.MUTED,
    ).apply { border = BorderFactory.createEmptyBorder(12, 14, 6, 14) }))
    for (line in state.lines) {
        root.add(block(JPanel(BorderLayout(8, 0)).apply {
            background = Color.WHITE
            border = BorderFactory.createCompoundBorder(
                BorderFactory.createMatteBorder(0, 0, 1, 0, Theme.LINE),
                BorderFactory.createEmptyBorder(0, 14, 0, 14),
            )
            preferredSize = Dimension(PHONE_WIDTH, t.row)
            add(label(line.time, t.font(t.small), Theme.MUTED), BorderLayout.WEST)
            add(label(line.what + if (line.note.isNotEmpty()) "（${line.note}）" else "", t.font(t.body)), BorderLayout.CENTER)
            val (bg, fg) = if (line.synced) Color(0xDD, 0xF3, 0xE2) to Color(0x14, 0x55, 0x2B) else Color(0xFF, 0xF0, 0xC8) to Color(0x6B, 0x45, 0x00)
            add(JPanel(FlowLayout(FlowLayout.RIGHT, 0, (t.row - 34) / 2)).apply {
                isOpaque = false
                add(label(displayable(line.mark, t.font(t.small, bold = true)), t.font(t.small, bold = true), fg).apply {
                    isOpaque = true
                    background = bg
                    border = BorderFactory.createEmptyBorder(6, 6, 6, 6)
                })
            }, BorderLayout.EAST)
        }))
    }
    root.add(block(label("记录结果（点一下即保存）", t.font(t.small, bold = true), Theme.MUTED).apply {
        border = BorderFactory.createEmptyBorder(16, 14, 6, 14)
    }))
    root.add(block(JPanel(GridLayout(0, 2, 8, 8)).apply {
        background = Color.WHITE
        border = BorderFactory.createEmptyBorder(0, 14, 10, 14)
        for (o in doorstep.app.OUTCOME_BUTTONS) {
            add(label(doorstep.app.outcomeZh(o), t.font(t.body, bold = true), Color.WHITE).apply {
                isOpaque = true
                background = Theme.BAR
                horizontalAlignment = SwingConstants.CENTER
                preferredSize = Dimension(0, maxOf(MIN_TAP, t.row - 8))
            }.tapAction("outcome:${o.name}"))
        }
        // The paper and the survey of this door, on their own screens.
        for ((text, action) in listOf("选票" to "ballot", "意见征询" to "survey")) {
            add(label(text, t.font(t.body, bold = true), Theme.BAR).apply {
                isOpaque = true
                background = Color.WHITE
                border = BorderFactory.createLineBorder(Theme.BAR, 2)
                horizontalAlignment = SwingConstants.CENTER
                preferredSize = Dimension(0, maxOf(MIN_TAP, t.row - 8))
            }.tapAction(action))
        }
    }))
    state.error?.let {
        root.add(block(label("<html>${it.sentence}</html>", t.font(t.body), Color(0x8A, 0x16, 0x16)).apply {
            border = BorderFactory.createEmptyBorder(6, 14, 6, 14)
        }))
    }
    return JPanel(BorderLayout()).apply {
        background = Color.WHITE
        add(root, BorderLayout.NORTH)
    }
}
