// The building head's work screens — 选票, 意见征询, 微心愿, 同步, 设置 — in the phone-sized
// window, drawn with Swing from the app-core view models' states (on Android these become
// Compose screens over the same states). Same rules as Screens.kt: text at least 18 px in the
// large mode, every tap target at least 60 px high, dark text on light backgrounds (≥ 4.5:1),
// and every state written in words. Each screen: title bar and sync strip on top, the content
// scrolling in the middle, the main actions fixed at the bottom within thumb's reach.

package doorstep.desktop

import doorstep.app.BallotMode
import doorstep.app.BallotState
import doorstep.app.CHOICES
import doorstep.app.LEAVE_CONFIRM
import doorstep.app.Refusal
import doorstep.app.SettingsState
import doorstep.app.SurveyState
import doorstep.app.SyncScreenState
import doorstep.app.SyncStatus
import doorstep.app.WishesState
import doorstep.app.choiceZh
import doorstep.app.nextStepZh
import doorstep.app.orderOpen
import java.awt.BorderLayout
import java.awt.Color
import java.awt.Component
import java.awt.Dimension
import java.awt.GridLayout
import javax.swing.BorderFactory
import javax.swing.BoxLayout
import javax.swing.JComponent
import javax.swing.JLabel
import javax.swing.JPanel
import javax.swing.JScrollPane
import javax.swing.ScrollPaneConstants
import javax.swing.SwingConstants
import uniffi.doorstep_ffi.CollectionMethod
import uniffi.doorstep_ffi.OrderStatus

private val OK_BG = Color(0xDD, 0xF3, 0xE2)
private val OK_FG = Color(0x14, 0x55, 0x2B)
private val WARN_BG = Color(0xFF, 0xF0, 0xC8)
private val WARN_FG = Color(0x6B, 0x45, 0x00)
private val BAD_BG = Color(0xFB, 0xE0, 0xE0)
private val BAD_FG = Color(0x8A, 0x16, 0x16)
private val SOFT_BG = Color(0xF4, 0xF4, 0xF4)

/** The width text wraps at inside the scrolling content (the phone less margins and scroll bar). */
private const val TEXT_WIDTH = PHONE_WIDTH - 28 - 18

/** The name prefix of every tap target drawn here (tests check each is at least [MIN_TAP] high). */
const val TAP = "tap:"

/** How a button looks; each also says what it does in words. */
internal enum class ButtonStyle { PRIMARY, SECONDARY, DANGER, SELECTED }

private fun escape(s: String): String = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

/** A date and time ("05-09 09:42") or a number with its separators. */
private val UNBROKEN = Regex("""\d[\d:.\-]*\d(?: \d[\d:]*\d)?""")

/** A paragraph that wraps at [width] px (long sentences never run off the screen). */
internal fun para(text: String, t: Theme, size: Float, bold: Boolean = false, colour: Color = Theme.INK, width: Int = TEXT_WIDTH): JLabel {
    val font = t.font(size, bold)
    // Swing's HTML counts a CSS px as 1.3 screen pixels (javax.swing.text.html.CSS), hence 10/13.
    // Dates, times and numbers never break in the middle ("21:" / "22").
    val html = escape(displayable(text, font))
        .replace(UNBROKEN) { "<span style='white-space:nowrap'>${it.value}</span>" }
        .replace("\n", "<br>")
    return JLabel("<html><div style='width:${width * 10 / 13}px'>$html</div></html>").apply {
        this.font = font
        foreground = colour
    }
}

/** A tap target at least [MIN_TAP] px high (larger in 长辈模式); its words say what it does. */
internal fun button(text: String, t: Theme, style: ButtonStyle = ButtonStyle.PRIMARY, action: String = text): JComponent {
    val font = t.font(t.body, bold = true)
    val (bg, fg, edge) = when (style) {
        ButtonStyle.PRIMARY -> Triple(Theme.BAR, Color.WHITE, Theme.BAR)
        ButtonStyle.SECONDARY -> Triple(Color.WHITE, Theme.BAR, Theme.BAR)
        ButtonStyle.DANGER -> Triple(BAD_FG, Color.WHITE, BAD_FG)
        ButtonStyle.SELECTED -> Triple(Theme.BAR, Color.WHITE, Theme.INK)
    }
    return JLabel(displayable(text, font)).apply {
        // Tests find every tap target by this name and check its size.
        name = TAP + text
        this.font = font
        foreground = fg
        isOpaque = true
        background = bg
        horizontalAlignment = SwingConstants.CENTER
        border = BorderFactory.createCompoundBorder(
            BorderFactory.createLineBorder(edge, if (style == ButtonStyle.SELECTED) 3 else 2),
            BorderFactory.createEmptyBorder(0, 4, 0, 4),
        )
        preferredSize = Dimension(0, tapHeight(t))
        minimumSize = Dimension(0, tapHeight(t))
    }.tapAction(action)
}

private fun tapHeight(t: Theme): Int = maxOf(MIN_TAP, t.row - 8)

/** A row of buttons sharing the width (each at least [MIN_TAP] high). */
internal fun buttons(t: Theme, columns: Int, vararg items: JComponent): JComponent =
    JPanel(GridLayout(0, columns, 8, 8)).apply {
        isOpaque = false
        items.forEach { add(it) }
    }

/** A small status word on a light background of the same hue (dark text on light). */
internal fun tag(text: String, t: Theme, bg: Color, fg: Color): JLabel {
    val font = t.font(t.small, bold = true)
    return JLabel(displayable(text, font)).apply {
        this.font = font
        foreground = fg
        isOpaque = true
        background = bg
        border = BorderFactory.createEmptyBorder(4, 8, 4, 8)
    }
}

/** A vertical stack whose children keep the phone's width and their own height. */
internal class Column(background: Color = Color.WHITE) : JPanel() {
    init {
        layout = BoxLayout(this, BoxLayout.Y_AXIS)
        this.background = background
    }

    fun put(c: JComponent, top: Int = 0, side: Int = 14, bottom: Int = 0): JComponent {
        val wrapped = if (top == 0 && side == 0 && bottom == 0) c else JPanel(BorderLayout()).apply {
            isOpaque = false
            border = BorderFactory.createEmptyBorder(top, side, bottom, side)
            add(c, BorderLayout.CENTER)
        }
        wrapped.alignmentX = Component.LEFT_ALIGNMENT
        wrapped.maximumSize = Dimension(PHONE_WIDTH, wrapped.preferredSize.height)
        add(wrapped)
        return wrapped
    }
}

internal fun sectionTitle(text: String, t: Theme): JComponent = label(text, t.font(t.small, bold = true), Theme.MUTED)

/** A box of words on a light background: a refusal, a warning, or what was just done. */
internal fun box(bg: Color, fg: Color, t: Theme, lines: List<String>, actions: JComponent? = null): JComponent =
    JPanel(BorderLayout(0, 8)).apply {
        background = bg
        border = BorderFactory.createCompoundBorder(
            BorderFactory.createLineBorder(fg, 2),
            BorderFactory.createEmptyBorder(10, 10, 10, 10),
        )
        val text = JPanel().apply {
            layout = BoxLayout(this, BoxLayout.Y_AXIS)
            isOpaque = false
            lines.forEachIndexed { i, line ->
                add(para(line, t, if (i == 0) t.body else t.small, bold = i == 0, colour = fg, width = TEXT_WIDTH - 24))
            }
        }
        add(text, BorderLayout.CENTER)
        actions?.let { add(it, BorderLayout.SOUTH) }
    }

/** The refusal as the head reads it: the sentence, then the next step in words. */
internal fun refusalBox(r: Refusal, t: Theme, lead: String = "没有保存："): JComponent =
    box(BAD_BG, BAD_FG, t, listOfNotNull(lead + r.sentence, nextStepZh(r.next).takeIf { it.isNotEmpty() }?.let { "下一步：$it" }))

internal fun noticeBox(text: String, t: Theme): JComponent = box(OK_BG, OK_FG, t, listOf("✓ $text"))

/** The sync strip (Screens.kt's words and colours), wrapping instead of running off in large text. */
private fun strip(s: SyncStatus, t: Theme): JComponent {
    val (bg, fg) = when (s) {
        is SyncStatus.Done -> OK_BG to OK_FG
        is SyncStatus.Failed -> BAD_BG to BAD_FG
        else -> WARN_BG to WARN_FG
    }
    return JPanel(BorderLayout()).apply {
        background = bg
        border = BorderFactory.createEmptyBorder(8, 14, 8, 14)
        add(para(syncStripText(s), t, t.small, bold = true, colour = fg, width = PHONE_WIDTH - 28), BorderLayout.CENTER)
    }
}

/** Title bar, sync strip, scrolling [content], and the fixed [bottom] actions. */
internal fun frame(title: String, sync: SyncStatus?, t: Theme, content: Column, bottom: JComponent?): JComponent {
    val root = JPanel(BorderLayout()).apply { background = Color.WHITE }
    val top = Column()
    top.put(JPanel(BorderLayout()).apply {
        background = Theme.BAR
        border = BorderFactory.createEmptyBorder(12, 14, 12, 14)
        add(para(title, t, t.title, bold = true, colour = Color.WHITE, width = PHONE_WIDTH - 28), BorderLayout.CENTER)
    }, side = 0)
    sync?.let { top.put(strip(it, t), side = 0) }
    root.add(top, BorderLayout.NORTH)
    content.put(JPanel().apply { isOpaque = false; preferredSize = Dimension(0, 16) }, side = 0)
    root.add(JScrollPane(JPanel(BorderLayout()).apply {
        background = Color.WHITE
        add(content, BorderLayout.NORTH)
    }).apply {
        border = null
        horizontalScrollBarPolicy = ScrollPaneConstants.HORIZONTAL_SCROLLBAR_NEVER
        verticalScrollBar.unitIncrement = 24
    }, BorderLayout.CENTER)
    bottom?.let {
        root.add(JPanel(BorderLayout()).apply {
            background = Color.WHITE
            border = BorderFactory.createCompoundBorder(
                BorderFactory.createMatteBorder(1, 0, 0, 0, Theme.LINE),
                BorderFactory.createEmptyBorder(10, 14, 14, 14),
            )
            add(it, BorderLayout.CENTER)
        }, BorderLayout.SOUTH)
    }
    return root
}

// ---------------------------------------------------------------------------------------------
// 选票
// ---------------------------------------------------------------------------------------------

/** How a ballot came back, in the order the screen offers them. */
private val METHODS = listOf(
    CollectionMethod.DOOR to "入户收取",
    CollectionMethod.PROXY to "委托代签",
    CollectionMethod.STATION to "现场投票",
    CollectionMethod.RETURNED to "书面投回",
)

/** What the head must keep with a paper that did not come back from the owner's own hand. */
private fun methodHint(method: CollectionMethod): String? = when (method) {
    CollectionMethod.DOOR -> null
    CollectionMethod.PROXY -> "代签人须出示业主签字的书面委托书，委托书随选票一并收回。"
    CollectionMethod.STATION -> "业主在投票点当场填写、签字并投票。"
    CollectionMethod.RETURNED -> "业主填好后投入票箱或交到居委会，开箱时登记。"
}

/** 选票 for one door: the paper's choices, the owner's ballots, 发票 / 收票 / 更正. */
fun ballotScreen(state: BallotState, sync: SyncStatus, t: Theme, buildingLabel: String): JComponent {
    val c = Column()
    c.put(para(state.campaignTitle, t, t.body, bold = true), top = 12)
    c.put(para(state.campaignLine + if (state.accepting) " · 可以上门" else " · 现在不接受选票", t, t.small, colour = Theme.MUTED), top = 2)
    c.put(JPanel(BorderLayout(8, 0)).apply {
        isOpaque = false
        add(label("业主 ${state.owner}", t.font(t.body)), BorderLayout.WEST)
        val (bg, fg) = when {
            state.effectiveCount > 1 -> BAD_BG to BAD_FG
            state.ownerHasBallot -> OK_BG to OK_FG
            state.deliveries > 0 -> Color(0xDC, 0xEB, 0xFA) to Color(0x0B, 0x3D, 0x6E)
            else -> Color(0xEE, 0xEE, 0xEE) to Color(0x33, 0x33, 0x33)
        }
        add(tag(state.statusLine, t, bg, fg), BorderLayout.EAST)
    }, top = 10)

    state.warning?.let {
        c.put(box(WARN_BG, WARN_FG, t, listOf(it, "不要再收一张：同一业主的两张票要等计票人裁定，裁定前都不计票。"),
            buttons(t, 2, button("更正选票", t), button("取消", t, ButtonStyle.SECONDARY))), top = 12)
    }
    if (state.mode == BallotMode.CORRECT) {
        val earlier = state.ballots.firstOrNull { it.id == state.correctable }
        c.put(box(WARN_BG, WARN_FG, t, listOf("正在更正选票", "新票将替换" + (earlier?.let { " ${it.time} " } ?: "") + "收回的那张；旧票保留在记录里，不再计票。"),
            buttons(t, 1, button("取消更正", t, ButtonStyle.SECONDARY))), top = 12)
    }
    state.error?.let { c.put(refusalBox(it, t), top = 12) }
    state.notice?.let { c.put(noticeBox(it, t), top = 12) }

    c.put(sectionTitle("选票内容（业主怎么选，就点哪个）", t), top = 16)
    if (state.hint.isNotEmpty()) c.put(para(state.hint, t, t.small, colour = Theme.MUTED), top = 4)
    for (line in state.approvals) {
        c.put(tag(line, t, if (state.overApproved) BAD_BG else SOFT_BG, if (state.overApproved) BAD_FG else Color(0x33, 0x33, 0x33)), top = 6)
    }
    for (row in state.rows) {
        c.put(para(row.title, t, t.body, bold = true), top = 12)
        val cells = CHOICES.map { choice ->
            val on = row.choice == choice
            button((if (on) "✓ " else "") + choiceZh(choice), t, if (on) ButtonStyle.SELECTED else ButtonStyle.SECONDARY,
                action = "choose:${row.question}:${row.candidate ?: ""}:${choice.name}")
        }
        c.put(buttons(t, 3, *cells.toTypedArray()), top = 6)
        c.put(label(if (row.choice == null) "未选" else "已选：${choiceZh(row.choice!!)}", t.font(t.small), Theme.MUTED), top = 4)
    }
    if (state.rows.isEmpty() && !state.loading) c.put(para("这项投票没有需要在选票上回答的议题。", t, t.body, colour = Theme.MUTED), top = 8)

    c.put(sectionTitle("这张票怎么收回的", t), top = 16)
    val methods = METHODS.map { (method, zh) ->
        val on = state.method == method
        button((if (on) "✓ " else "") + zh, t, if (on) ButtonStyle.SELECTED else ButtonStyle.SECONDARY, action = "method:${method.name}")
    }
    c.put(buttons(t, 2, *methods.toTypedArray()), top = 6)
    methodHint(state.method)?.let { c.put(para(it, t, t.small, colour = Theme.MUTED), top = 4) }

    c.put(sectionTitle("该户的选票记录", t), top = 20)
    if (state.ballots.isEmpty()) {
        c.put(para(if (state.deliveries > 0) "已发票 ${state.deliveries} 次，还没有收回选票。" else "还没有发票，也没有收回选票。", t, t.body, colour = Theme.MUTED), top = 6)
    }
    for (b in state.ballots) {
        c.put(JPanel(BorderLayout(8, 4)).apply {
            isOpaque = false
            border = BorderFactory.createCompoundBorder(
                BorderFactory.createMatteBorder(0, 0, 1, 0, Theme.LINE),
                BorderFactory.createEmptyBorder(6, 0, 8, 0),
            )
            add(label("${b.time} · ${b.what}", t.font(t.body, bold = b.effective)), BorderLayout.NORTH)
            add(label(b.where, t.font(t.small), Theme.MUTED), BorderLayout.WEST)
            add(JPanel(BorderLayout()).apply {
                isOpaque = false
                add(tag(b.mark, t, if (b.effective) OK_BG else SOFT_BG, if (b.effective) OK_FG else Color(0x33, 0x33, 0x33)), BorderLayout.EAST)
            }, BorderLayout.CENTER)
        }, top = 4)
    }

    val collect = when {
        state.mode == BallotMode.CORRECT -> button("保存更正", t)
        else -> button("收票", t)
    }
    val bottom = buttons(t, 2, button("发票", t, ButtonStyle.SECONDARY), collect)
    return frame("$buildingLabel ${state.room} · 选票", sync, t, c, bottom)
}

// ---------------------------------------------------------------------------------------------
// 意见征询
// ---------------------------------------------------------------------------------------------

/** 意见征询 / 听证: one question per screen, options as big toggles, 提交 at the bottom. */
fun surveyScreen(state: SurveyState, sync: SyncStatus, t: Theme, buildingLabel: String): JComponent {
    val c = Column()
    c.put(para(state.campaignTitle, t, t.body, bold = true), top = 12)
    c.put(para("${state.campaignLine} · 业主 ${state.owner}", t, t.small, colour = Theme.MUTED), top = 2)
    if (state.answers.isNotEmpty()) {
        val last = state.answers.lastOrNull { it.effective } ?: state.answers.last()
        c.put(tag("该户已答过 · ${last.time} ${last.answerWhat}", t, OK_BG, OK_FG), top = 8)
    }
    state.warning?.let {
        c.put(box(WARN_BG, WARN_FG, t, listOf(it), buttons(t, 2, button("更正答卷", t), button("取消", t, ButtonStyle.SECONDARY))), top = 12)
    }
    if (state.mode == BallotMode.CORRECT) {
        c.put(box(WARN_BG, WARN_FG, t, listOf("正在更正答卷", "提交后，新答卷替换旧答卷；旧答卷保留在记录里。"),
            buttons(t, 1, button("取消更正", t, ButtonStyle.SECONDARY))), top = 12)
    }
    state.error?.let { c.put(refusalBox(it, t), top = 12) }
    state.notice?.let { c.put(noticeBox(it, t), top = 12) }

    val q = state.current
    if (q == null) {
        c.put(para(if (state.loading) "正在读取…" else "这项征询没有问题可答。", t, t.body, colour = Theme.MUTED), top = 16)
    } else {
        c.put(sectionTitle(state.progress, t), top = 16)
        c.put(para(q.text, t, t.title, bold = true), top = 4)
        val over = q.chosen > q.maxChoices
        c.put(tag(q.countLine, t, if (over) BAD_BG else SOFT_BG, if (over) BAD_FG else Color(0x33, 0x33, 0x33)), top = 8)
        for (o in q.options) {
            c.put(JPanel(BorderLayout(8, 0)).apply {
                name = TAP + o.label
                background = if (o.selected) Color(0xDC, 0xEB, 0xFA) else Color.WHITE
                border = BorderFactory.createCompoundBorder(
                    BorderFactory.createLineBorder(if (o.selected) Theme.BAR else Theme.LINE, if (o.selected) 3 else 2),
                    BorderFactory.createEmptyBorder(0, 12, 0, 12),
                )
                preferredSize = Dimension(0, maxOf(tapHeight(t), t.row))
                add(para(o.label, t, t.body, bold = o.selected, width = TEXT_WIDTH - 120), BorderLayout.CENTER)
                add(label(if (o.selected) "✓ 已选" else "未选", t.font(t.body, bold = o.selected), if (o.selected) Theme.BAR else Theme.MUTED), BorderLayout.EAST)
            }, top = 8)
        }
    }
    val bottom = when {
        q == null -> null
        state.questions.size == 1 -> buttons(t, 1, button(if (state.mode == BallotMode.CORRECT) "提交更正" else "提交答卷", t))
        state.index == 0 -> buttons(t, 1, button("下一题", t))
        state.isLast -> buttons(t, 2, button("上一题", t, ButtonStyle.SECONDARY), button(if (state.mode == BallotMode.CORRECT) "提交更正" else "提交答卷", t))
        else -> buttons(t, 2, button("上一题", t, ButtonStyle.SECONDARY), button("下一题", t))
    }
    return frame("$buildingLabel ${state.room} · 意见征询", sync, t, c, bottom)
}

// ---------------------------------------------------------------------------------------------
// 微心愿
// ---------------------------------------------------------------------------------------------

private fun orderColours(s: OrderStatus): Pair<Color, Color> = when (s) {
    OrderStatus.IN_PROGRESS, OrderStatus.CLAIMED, OrderStatus.DISPATCHED, OrderStatus.DISPUTED -> WARN_BG to WARN_FG
    OrderStatus.DONE, OrderStatus.CONFIRMED, OrderStatus.CLOSED -> OK_BG to OK_FG
    OrderStatus.REJECTED, OrderStatus.UNREACHABLE -> BAD_BG to BAD_FG
    else -> Color(0xDC, 0xEB, 0xFA) to Color(0x0B, 0x3D, 0x6E)
}

/** 微心愿 of one building: open orders first, each with its status in words and its next steps. */
fun wishesScreen(state: WishesState, sync: SyncStatus, t: Theme, buildingLabel: String): JComponent {
    val c = Column()
    c.put(para("未办完 ${state.open} 件 · 其中我负责 ${state.mineOpen} 件", t, t.body, bold = true), top = 12)
    state.error?.let { c.put(refusalBox(it, t), top = 12) }
    state.notice?.let { c.put(noticeBox(it, t), top = 12) }
    if (state.rows.isEmpty()) {
        c.put(para(if (state.loading) "正在读取…" else "这栋楼还没有微心愿。居民有小事需要帮忙，点下面「记录新心愿」。", t, t.body, colour = Theme.MUTED), top = 16)
    }
    var shownClosed = false
    for (row in state.rows) {
        if (!orderOpen(row.status) && !shownClosed) {
            c.put(sectionTitle("已结束", t), top = 18)
            shownClosed = true
        }
        val (bg, fg) = orderColours(row.status)
        val card = Column(Color(0xF7, 0xF9, 0xFC))
        card.border = BorderFactory.createCompoundBorder(
            BorderFactory.createLineBorder(Theme.LINE),
            BorderFactory.createEmptyBorder(10, 0, 10, 0),
        )
        card.put(para(row.title, t, t.body, bold = true, width = TEXT_WIDTH - 24), side = 12)
        card.put(para("${row.room} · ${row.assigneeLine} · 更新于 ${row.updated}", t, t.small, colour = Theme.MUTED, width = TEXT_WIDTH - 24), top = 2, side = 12)
        card.put(JPanel(BorderLayout()).apply {
            isOpaque = false
            add(tag("状态：${row.statusLabel}", t, bg, fg), BorderLayout.WEST)
        }, top = 6, side = 12)
        if (row.detail.isNotEmpty()) card.put(para(row.detail, t, t.small, width = TEXT_WIDTH - 24), top = 6, side = 12)
        if (row.actions.isNotEmpty()) {
            val columns = if (t.large || row.actions.size == 1) 1 else 2
            val cells = row.actions.mapIndexed { i, a ->
                button(a.label, t, if (i == 0) ButtonStyle.PRIMARY else ButtonStyle.SECONDARY, action = "move:${row.id}:${a.to.name}")
            }
            card.put(buttons(t, columns, *cells.toTypedArray()), top = 10, side = 12)
        }
        c.put(card, top = 10)
    }
    val bottom = buttons(t, 1, button("＋ 记录新心愿", t))
    return frame("$buildingLabel · 微心愿", sync, t, c, bottom)
}

/** 记录新心愿: which door, what (one-tap suggestions or typed), details; 保存 / 取消 at the bottom. */
fun newWishScreen(state: WishesState, sync: SyncStatus, t: Theme, buildingLabel: String): JComponent {
    val d = state.draft ?: doorstep.app.WishDraft()
    val c = Column()
    c.put(sectionTitle("哪一户", t), top = 14)
    val room = state.doors.firstOrNull { it.unit == d.unit }?.room
    c.put(JPanel(BorderLayout(8, 0)).apply {
        name = TAP + "选择门户"
        background = Color.WHITE
        border = BorderFactory.createCompoundBorder(
            BorderFactory.createLineBorder(Theme.MUTED, 2),
            BorderFactory.createEmptyBorder(0, 12, 0, 12),
        )
        preferredSize = Dimension(0, maxOf(tapHeight(t), t.row))
        add(label(room ?: "请选择门户", t.font(t.body, bold = room != null), if (room != null) Theme.INK else Theme.MUTED), BorderLayout.CENTER)
        add(label("更换 ›", t.font(t.body), Theme.BAR), BorderLayout.EAST)
    }, top = 6)
    c.put(sectionTitle("要办什么（点一个，或自己写）", t), top = 16)
    val chips = doorstep.app.WISH_SUGGESTIONS.map { s ->
        button((if (s == d.title) "✓ " else "") + s, t, if (s == d.title) ButtonStyle.SELECTED else ButtonStyle.SECONDARY)
    }
    c.put(buttons(t, 2, *chips.toTypedArray()), top = 6)
    c.put(javax.swing.JTextField(d.title).apply {
        name = TAP + "心愿标题"
        font = t.font(t.body)
        foreground = Theme.INK
        border = BorderFactory.createCompoundBorder(
            BorderFactory.createLineBorder(Theme.MUTED, 2),
            BorderFactory.createEmptyBorder(0, 10, 0, 10),
        )
        preferredSize = Dimension(0, maxOf(tapHeight(t), t.row))
    }, top = 8)
    c.put(sectionTitle("详细说明（可以不填）", t), top = 16)
    c.put(javax.swing.JTextArea(d.detail, 3, 20).apply {
        name = TAP + "详细说明"
        font = t.font(t.body)
        foreground = Theme.INK
        lineWrap = true
        border = BorderFactory.createCompoundBorder(
            BorderFactory.createLineBorder(Theme.MUTED, 2),
            BorderFactory.createEmptyBorder(8, 10, 8, 10),
        )
    }, top = 6)
    state.error?.let { c.put(refusalBox(it, t), top = 12) }
    val bottom = buttons(t, 2, button("取消", t, ButtonStyle.SECONDARY), button("保存心愿", t))
    return frame("$buildingLabel · 记录新心愿", sync, t, c, bottom)
}

// ---------------------------------------------------------------------------------------------
// 同步
// ---------------------------------------------------------------------------------------------

/** 同步: pending count, last result, refused documents with reasons, 重置此文档 (asks first). */
fun syncScreen(state: SyncScreenState, t: Theme): JComponent {
    val c = Column()
    c.put(para(state.pendingLine, t, t.title, bold = true), top = 14)
    c.put(para(state.resultLine, t, t.body, colour = Theme.INK), top = 4)
    state.error?.let { c.put(refusalBox(it, t, "没有完成："), top = 12) }
    state.notice?.let { c.put(noticeBox(it, t), top = 12) }
    state.confirm?.let {
        c.put(box(WARN_BG, WARN_FG, t, listOf("确定要重置吗？", it.sentence),
            buttons(t, 2, button("确定重置", t, ButtonStyle.DANGER), button("取消", t, ButtonStyle.SECONDARY))), top = 12)
    }

    c.put(sectionTitle("服务器退回的资料（${state.rejections.size} 份）", t), top = 18)
    if (state.rejections.isEmpty()) {
        c.put(para(if (state.loading) "正在读取…" else "没有被退回的资料。", t, t.body, colour = Theme.MUTED), top = 6)
    }
    for (r in state.rejections) {
        val card = Column(BAD_BG)
        card.border = BorderFactory.createCompoundBorder(
            BorderFactory.createLineBorder(BAD_FG, 2),
            BorderFactory.createEmptyBorder(10, 0, 10, 0),
        )
        card.put(para("被退回：" + r.what, t, t.body, bold = true, colour = BAD_FG, width = TEXT_WIDTH - 24), side = 12)
        card.put(para(r.sentence, t, t.body, colour = Theme.INK, width = TEXT_WIDTH - 24), top = 6, side = 12)
        if (r.next.isNotEmpty()) card.put(para("下一步：" + r.next, t, t.small, bold = true, colour = Theme.INK, width = TEXT_WIDTH - 24), top = 4, side = 12)
        card.put(para("代码 ${r.code}", t, t.small, colour = Theme.MUTED, width = TEXT_WIDTH - 24), top = 2, side = 12)
        if (state.confirm?.docId != r.docId) {
            card.put(buttons(t, 1, button("重置此文档", t, if (r.resetAdvised) ButtonStyle.DANGER else ButtonStyle.SECONDARY)), top = 10, side = 12)
        } else {
            card.put(para("等待确认（见上方）", t, t.small, bold = true, colour = BAD_FG, width = TEXT_WIDTH - 24), top = 8, side = 12)
        }
        c.put(card, top = 10)
    }

    c.put(sectionTitle("其他需要注意的", t), top = 18)
    c.put(para(
        if (state.ballotConflicts == 0) "没有重复选票。" else "${state.ballotConflicts} 位业主有重复选票，待计票人裁定（您不需要处理）。",
        t, t.body,
    ), top = 6)
    c.put(para(
        if (state.householdConflicts == 0) "住户信息没有冲突。" else "${state.householdConflicts} 处住户信息有两人同时修改，请到门户详情再改一次。",
        t, t.body,
    ), top = 6)
    return frame("同步", state.status, t, c, buttons(t, 1, button("立即同步", t)))
}

/** A long id (a UUID has no place to wrap) on two lines, split at the dash nearest its middle. */
private fun breakId(id: String): String {
    val dashes = id.indices.filter { id[it] == '-' }
    val cut = dashes.minByOrNull { kotlin.math.abs(it - id.length / 2) } ?: return id
    return id.substring(0, cut + 1) + "\n" + id.substring(cut + 1)
}

// ---------------------------------------------------------------------------------------------
// 设置
// ---------------------------------------------------------------------------------------------

/** 设置: 长辈模式, this phone's enrollment, 离开此手机 (refused while work waits; asks first). */
fun settingsScreen(state: SettingsState, sync: SyncStatus, t: Theme): JComponent {
    val c = Column()
    c.put(JPanel(BorderLayout(8, 0)).apply {
        // The whole row switches 长辈模式.
        name = TAP + "长辈模式"
        putClientProperty(ACTION, "large")
        isOpaque = false
        border = BorderFactory.createMatteBorder(0, 0, 1, 0, Theme.LINE)
        preferredSize = Dimension(0, maxOf(tapHeight(t), t.row))
        add(JPanel().apply {
            layout = BoxLayout(this, BoxLayout.Y_AXIS)
            isOpaque = false
            border = BorderFactory.createEmptyBorder(6, 0, 6, 0)
            add(label("长辈模式", t.font(t.body, bold = true)))
            add(label("大字大按钮 · 点按切换", t.font(t.small), Theme.MUTED))
        }, BorderLayout.CENTER)
        add(JPanel(BorderLayout()).apply {
            isOpaque = false
            border = BorderFactory.createEmptyBorder(6, 0, 6, 0)
            add(JLabel(if (state.large) "已开启" else "已关闭").apply {
                font = t.font(t.body, bold = true)
                foreground = if (state.large) Color.WHITE else Theme.INK
                isOpaque = true
                background = if (state.large) Theme.BAR else Color(0xEE, 0xEE, 0xEE)
                horizontalAlignment = SwingConstants.CENTER
                border = BorderFactory.createLineBorder(if (state.large) Theme.BAR else Theme.MUTED, 2)
                preferredSize = Dimension(110, 0)
            }, BorderLayout.CENTER)
        }, BorderLayout.EAST)
    }, top = 8)

    c.put(sectionTitle("本机信息", t), top = 18)
    if (!state.enrolled) {
        c.put(para(if (state.loading) "正在读取…" else "这台手机还没有加入社区。", t, t.body, colour = Theme.MUTED), top = 6)
    } else {
        for ((name, value) in listOf(
            "身份" to state.roles,
            "负责楼栋" to state.buildings,
            "账号" to state.account,
            "小区编号" to state.community,
            "设备编号" to breakId(state.device),
            "待同步" to (if (state.pending == 0L) "没有，所有记录都已同步" else "${state.pending} 条记录"),
        )) {
            c.put(JPanel(BorderLayout(10, 0)).apply {
                isOpaque = false
                border = BorderFactory.createCompoundBorder(
                    BorderFactory.createMatteBorder(0, 0, 1, 0, Theme.LINE),
                    BorderFactory.createEmptyBorder(8, 0, 8, 0),
                )
                add(label(name, t.font(t.small), Theme.MUTED).apply { preferredSize = Dimension(if (t.large) 96 else 76, 0) }, BorderLayout.WEST)
                add(para(value, t, t.body, width = TEXT_WIDTH - (if (t.large) 106 else 86)), BorderLayout.CENTER)
            }, top = 0)
        }
    }

    c.put(sectionTitle("换手机或不再负责", t), top = 18)
    c.put(para("离开后，这台手机上的小区资料会全部删除。有记录没同步时不能离开。", t, t.small, colour = Theme.MUTED), top = 4)
    state.error?.let { c.put(refusalBox(it, t, if (it.code == doorstep.app.PENDING_WORK) "不能离开：" else ""), top = 10) }
    if (state.confirmLeave) {
        c.put(box(WARN_BG, WARN_FG, t, listOf("确定要离开此手机吗？", LEAVE_CONFIRM),
            buttons(t, 2, button("确定离开", t, ButtonStyle.DANGER), button("取消", t, ButtonStyle.SECONDARY))), top = 10)
    } else {
        c.put(buttons(t, 1, button("离开此手机", t, ButtonStyle.DANGER)), top = 10)
    }
    if (state.left) c.put(noticeBox("已离开此手机", t), top = 10)
    return frame("设置", sync, t, c, null)
}
