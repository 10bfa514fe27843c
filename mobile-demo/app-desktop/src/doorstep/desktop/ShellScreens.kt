// 扫码加入 and 通知, and the app's chrome around every screen: the 飞行模式 strip on top and the
// bottom navigation. Drawn from app-core states like the other screens; taps are named with
// tapAction and dispatched by the app shell (App.kt).

package doorstep.desktop

import doorstep.app.JoinState
import doorstep.app.NoticesState
import java.awt.BorderLayout
import java.awt.Color
import java.awt.GridLayout
import javax.swing.BorderFactory
import javax.swing.JComponent
import javax.swing.JPanel
import javax.swing.SwingConstants

/** 扫码加入: open the QR image the office sent (or type the address and code), then 加入. */
fun joinScreen(state: JoinState, t: Theme): JComponent {
    val c = Column()
    c.put(para("请打开社区办公室发来的入网二维码图片，或手动输入服务器地址和入网码。", t, t.body), top = 14)
    c.put(buttons(t, 1, button("打开二维码图片", t, action = "open-qr")), top = 12)
    c.put(sectionTitle("服务器地址", t), top = 18)
    c.put(para(state.server.ifEmpty { "（未填写）" }, t, t.body, bold = true), top = 4)
    c.put(buttons(t, 1, button("输入服务器地址", t, ButtonStyle.SECONDARY, action = "type-server")), top = 6)
    c.put(sectionTitle("入网码", t), top = 14)
    c.put(para(state.code.ifEmpty { "（未填写）" }, t, t.title, bold = true), top = 4)
    c.put(buttons(t, 1, button("输入入网码", t, ButtonStyle.SECONDARY, action = "type-code")), top = 6)
    state.joined?.let { c.put(noticeBox(it.line + " · 账号 " + it.account, t), top = 14) }
    if (state.waitingForBuilding) c.put(noticeBox("已加入。社区办公室还没有给您分配楼栋，分配后同步即可看到。", t), top = 14)
    state.error?.let { c.put(refusalBox(it, t, lead = "没有加入："), top = 14) }
    val bottom = buttons(t, 1, button(if (state.working) "正在加入…" else "加入", t, action = "join"))
    return frame("扫码加入", null, t, c, bottom)
}

/** 通知: the officers' decisions that reached this phone, newest first, unread marked in words. */
fun noticesScreen(state: NoticesState, t: Theme): JComponent {
    val c = Column()
    c.put(para(if (state.unread > 0) "${state.unread} 条新通知" else "没有新通知", t, t.body, bold = true), top = 14)
    for (line in state.lines) {
        val card = Column(if (line.unread) Color(0xFF, 0xF8, 0xE1) else Color.WHITE)
        card.border = BorderFactory.createLineBorder(Theme.LINE)
        card.put(para("${line.mark} · ${line.time}", t, t.small, bold = true, colour = Theme.MUTED), top = 8, side = 12)
        card.put(para(line.title, t, t.body, bold = true), top = 4, side = 12)
        card.put(para(line.detail, t, t.small), top = 4, side = 12, bottom = 10)
        c.put(card, top = 10)
    }
    if (state.lines.isEmpty() && !state.loading) c.put(para("计票人的裁定会在同步后出现在这里。", t, t.body, colour = Theme.MUTED), top = 10)
    state.error?.let { c.put(refusalBox(it, t, lead = ""), top = 12) }
    val bottom = if (state.unread > 0) buttons(t, 1, button("全部标为已读", t, action = "notices-seen")) else null
    return frame("通知", null, t, c, bottom)
}

/** The navigation destinations at the bottom of every screen once joined. */
val NAV = listOf("首页" to "nav:home", "门牌" to "nav:doors", "微心愿" to "nav:wishes", "通知" to "nav:notices", "同步" to "nav:sync", "设置" to "nav:settings")

/** The phone around a screen: the 飞行模式 strip on top, [screen], and the bottom navigation
 *  ([current] marked in words and weight, [unread] notices counted). */
fun phoneChrome(
    screen: JComponent,
    t: Theme,
    airplane: Boolean,
    current: String?,
    unread: Int,
    joined: Boolean,
    banner: doorstep.app.Refusal? = null,
): JComponent {
    val root = JPanel(BorderLayout()).apply { background = Color.WHITE }
    val font = t.font(t.small, bold = true)
    val top = JPanel(BorderLayout()).apply { background = Color.WHITE }
    banner?.let { top.add(refusalBox(it, t, lead = ""), BorderLayout.SOUTH) }
    top.add(label(displayable(if (airplane) "✈ 飞行模式：开（没有网络）· 点此关闭" else "飞行模式：关 · 点此打开", font), font,
        if (airplane) Color.WHITE else Theme.INK).apply {
        isOpaque = true
        background = if (airplane) Color(0x8A, 0x16, 0x16) else Color(0xEE, 0xEE, 0xEE)
        horizontalAlignment = SwingConstants.CENTER
        border = BorderFactory.createEmptyBorder(4, 8, 4, 8)
        preferredSize = java.awt.Dimension(PHONE_WIDTH, MIN_TAP)
    }.tapAction("airplane"), BorderLayout.NORTH)
    root.add(top, BorderLayout.NORTH)
    root.add(screen, BorderLayout.CENTER)
    if (joined) {
        // Large text: two rows of three, so every label keeps 18 px.
        root.add(JPanel(if (t.large) GridLayout(2, 3) else GridLayout(1, NAV.size)).apply {
            background = Color.WHITE
            border = BorderFactory.createMatteBorder(1, 0, 0, 0, Theme.LINE)
            for ((text, action) in NAV) {
                val on = action == current
                val shown = if (action == "nav:notices" && unread > 0) "$text($unread)" else text
                add(label(shown, t.font(if (t.large) 18f else 14f, bold = on), if (on) Theme.BAR else Theme.MUTED).apply {
                    horizontalAlignment = SwingConstants.CENTER
                    preferredSize = java.awt.Dimension(0, MIN_TAP)
                    if (on) border = BorderFactory.createMatteBorder(4, 0, 0, 0, Theme.BAR)
                }.tapAction(action))
            }
        }, BorderLayout.SOUTH)
    }
    return root
}
