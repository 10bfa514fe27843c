// 微心愿: residents' small requests as work orders ("居民点单、支部派单、楼长接单"). The head
// records a request at a door, takes a published or dispatched order (楼长接单) and reports
// progress to done. Each order's status is written in Chinese words, and only the steps the
// lifecycle allows for this account are offered; the core checks every step again and its
// refusal (by code) is shown. A plain view model; part of app-core.

package doorstep.app

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.OrderStatus
import uniffi.doorstep_ffi.Role
import uniffi.doorstep_ffi.WorkOrder

/** A work order's status as the head reads it. */
fun orderStatusZh(s: OrderStatus): String = when (s) {
    OrderStatus.SUBMITTED -> "已登记 · 待审核"
    OrderStatus.UNDER_REVIEW -> "审核中"
    OrderStatus.REJECTED -> "未受理"
    OrderStatus.MERGED -> "已合并"
    OrderStatus.PUBLISHED -> "已发布 · 待接单"
    OrderStatus.DISPATCHED -> "已派单 · 待接单"
    OrderStatus.CLAIMED -> "已接单"
    OrderStatus.IN_PROGRESS -> "办理中"
    OrderStatus.DONE -> "已办好 · 待居民确认"
    OrderStatus.CONFIRMED -> "居民已确认"
    OrderStatus.DISPUTED -> "居民有异议"
    OrderStatus.UNREACHABLE -> "联系不上居民"
    OrderStatus.CLOSED -> "已关闭"
}

/** Whether an order still needs someone's work (open) or is finished. */
fun orderOpen(s: OrderStatus): Boolean =
    s != OrderStatus.CLOSED && s != OrderStatus.REJECTED && s != OrderStatus.MERGED

/** One step the head can take on an order: the button's words and the status it moves to. */
data class WishAction(val to: OrderStatus, val label: String)

/** One order row: where, what, its status in words, who has it, and the steps offered. */
data class WishRow(
    val id: String,
    val unit: String,
    /** "2单元 0501". */
    val room: String,
    val title: String,
    val detail: String,
    val status: OrderStatus,
    val statusLabel: String,
    /** "我负责" / "未分配" / "他人负责". */
    val assigneeLine: String,
    val mine: Boolean,
    /** When it last moved, e.g. "05-09 09:42". */
    val updated: String,
    val actions: List<WishAction>,
)

/** A door the head can record a request at. */
data class DoorChoice(val unit: String, val room: String)

/** Common requests, one tap each (typing is slow for many heads); the title stays editable. */
val WISH_SUGGESTIONS: List<String> = listOf("换灯泡", "代缴水电费", "陪同就医", "上门维修", "代买药品", "其他求助")

/** The 记录新心愿 form while it is open. */
data class WishDraft(val unit: String? = null, val title: String = "", val detail: String = "")

data class WishesState(
    val building: String,
    val rows: List<WishRow> = emptyList(),
    /** The doors of the building, for the 新心愿 form. */
    val doors: List<DoorChoice> = emptyList(),
    val open: Int = 0,
    val mineOpen: Int = 0,
    /** The account also dispatches (支部派单员): review and publish are offered too. */
    val dispatcher: Boolean = false,
    /** The 记录新心愿 form, null while closed. */
    val draft: WishDraft? = null,
    val notice: String? = null,
    val loading: Boolean = true,
    val error: Refusal? = null,
)

/**
 * The steps offered for [o] to [account], following the 微心愿 lifecycle (submitted →
 * under_review → published → claimed / dispatched → in_progress → done → confirmed → closed).
 * Only offers: the core checks each step with the same rules as the server.
 */
fun wishActions(o: WorkOrder, account: String?, dispatcher: Boolean): List<WishAction> {
    val mine = account != null && o.assignee == account
    return when (o.status) {
        OrderStatus.SUBMITTED -> if (dispatcher) listOf(WishAction(OrderStatus.UNDER_REVIEW, "开始审核")) else emptyList()
        OrderStatus.UNDER_REVIEW -> if (dispatcher) {
            listOf(WishAction(OrderStatus.PUBLISHED, "审核通过 · 发布"), WishAction(OrderStatus.REJECTED, "不予受理"))
        } else {
            emptyList()
        }
        OrderStatus.PUBLISHED -> listOf(WishAction(OrderStatus.CLAIMED, "接单"))
        OrderStatus.DISPATCHED -> if (mine) listOf(WishAction(OrderStatus.IN_PROGRESS, "接单 · 开始办理")) else emptyList()
        OrderStatus.CLAIMED -> if (mine) listOf(WishAction(OrderStatus.IN_PROGRESS, "开始办理")) else emptyList()
        OrderStatus.IN_PROGRESS -> if (mine) listOf(WishAction(OrderStatus.DONE, "已办好")) else emptyList()
        OrderStatus.DONE -> if (mine || dispatcher) {
            listOf(
                WishAction(OrderStatus.CONFIRMED, "居民已确认"),
                WishAction(OrderStatus.DISPUTED, "居民有异议"),
                WishAction(OrderStatus.UNREACHABLE, "联系不上居民"),
            )
        } else {
            emptyList()
        }
        OrderStatus.DISPUTED -> if (mine) listOf(WishAction(OrderStatus.IN_PROGRESS, "重新办理")) else emptyList()
        OrderStatus.CONFIRMED -> listOf(WishAction(OrderStatus.CLOSED, "关闭"))
        else -> emptyList()
    }
}

class WishesViewModel(
    private val replica: DoorstepReplica,
    private val building: String,
    private val core: CoroutineDispatcher,
) {
    private val mutable = MutableStateFlow(WishesState(building))
    val state: StateFlow<WishesState> = mutable.asStateFlow()

    suspend fun load() {
        try {
            val s = state.value
            mutable.value = withContext(core) { read(s) }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    /** Opens the 记录新心愿 form, at [unit] when the head came from a door. */
    fun startNew(unit: String? = null) {
        mutable.value = state.value.copy(draft = WishDraft(unit = unit), error = null, notice = null)
    }

    /** Changes the form; a field left null stays as it is. */
    fun editDraft(unit: String? = null, title: String? = null, detail: String? = null) {
        val d = state.value.draft ?: WishDraft()
        mutable.value = state.value.copy(
            draft = d.copy(unit = unit ?: d.unit, title = title ?: d.title, detail = detail ?: d.detail),
            error = null,
        )
    }

    fun cancelNew() {
        mutable.value = state.value.copy(draft = null, error = null)
    }

    /** 保存心愿: records the form's request; the form stays open (with the refusal) if refused. */
    suspend fun submitNew(): Refusal? {
        val d = state.value.draft ?: return null
        val unit = d.unit ?: return Refusal("no_door", "请先选好是哪一户的心愿。", NextStep.FIX_INPUT).also { mutable.value = state.value.copy(error = it) }
        val refusal = create(unit, d.title, d.detail)
        if (refusal == null) mutable.value = state.value.copy(draft = null)
        return refusal
    }

    /** 记录新心愿 at [unit]; returns the refusal, if any (e.g. an empty title). */
    suspend fun create(unit: String, title: String, detail: String = ""): Refusal? {
        val refusal = attempt(core) { replica.createOrder(unit, title.trim(), detail.trim()) }
        load()
        mutable.value = if (refusal != null) state.value.copy(error = refusal, notice = null) else state.value.copy(notice = "已记录心愿「${title.trim()}」，待同步")
        return refusal
    }

    /** Moves [order] to [to] (a step from the row's actions); the core may refuse it. */
    suspend fun move(order: String, to: OrderStatus, note: String = ""): Refusal? {
        val refusal = attempt(core) { replica.moveOrder(building, order, to, note, null) }
        load()
        mutable.value = if (refusal != null) {
            state.value.copy(error = refusal, notice = null)
        } else {
            val title = state.value.rows.firstOrNull { it.id == order }?.title ?: ""
            state.value.copy(notice = "「$title」现在是：${orderStatusZh(to)}，待同步")
        }
        return refusal
    }

    private fun read(previous: WishesState): WishesState {
        val identity = replica.identity()
        val account = identity?.account
        val dispatcher = identity?.roles?.any { it == Role.DISPATCHER || it == Role.ADMIN } == true
        val units = replica.units(building, null)
        // "2单元 0501": a room number alone repeats in every 单元.
        val rooms = units.associate { it.unit.code to "${it.unit.entrance.substringAfterLast('-')}单元 ${it.unit.room}" }
        val rows = replica.orders(building).map { o ->
            val mine = account != null && o.assignee == account
            WishRow(
                id = o.id,
                unit = o.unit,
                room = rooms[o.unit] ?: o.unit,
                title = o.title,
                detail = o.detail,
                status = o.status,
                statusLabel = orderStatusZh(o.status),
                assigneeLine = when {
                    mine -> "我负责"
                    o.assignee == null -> "未分配"
                    else -> "他人负责"
                },
                mine = mine,
                updated = clockZh(o.events.maxOfOrNull { it.at } ?: o.createdAt),
                actions = wishActions(o, account, dispatcher),
            ) to (o.events.maxOfOrNull { it.at } ?: o.createdAt)
        }
            // Open orders first (mine at the top), then the newest.
            .sortedWith(
                compareBy<Pair<WishRow, Long>>({ !orderOpen(it.first.status) }, { !it.first.mine })
                    .thenByDescending { it.second },
            )
            .map { it.first }
        return previous.copy(
            rows = rows,
            doors = units.map { DoorChoice(it.unit.code, rooms.getValue(it.unit.code)) }.sortedBy { it.unit },
            open = rows.count { orderOpen(it.status) },
            mineOpen = rows.count { it.mine && orderOpen(it.status) },
            dispatcher = dispatcher,
            loading = false,
            error = null,
        )
    }
}
