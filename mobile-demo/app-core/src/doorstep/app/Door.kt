// 门户详情 and 记录结果: one door's household, its timeline in this campaign with ✓已同步 /
// ⏳待同步 per record, and recording an outcome in one tap. A plain view model; part of app-core.

package doorstep.app

import java.text.SimpleDateFormat
import java.util.Date
import java.util.TimeZone
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.TimelineKind

/** The outcome buttons of 记录结果, in the order a head needs them (a short list beats forty). */
val OUTCOME_BUTTONS: List<DoorOutcome> = listOf(
    DoorOutcome.NOT_HOME,
    DoorOutcome.COME_BACK,
    DoorOutcome.REFUSED,
    DoorOutcome.VACANT,
    DoorOutcome.TENANT_ONLY,
    DoorOutcome.OTHER,
)

fun outcomeZh(o: DoorOutcome): String = when (o) {
    DoorOutcome.NOT_HOME -> "不在家"
    DoorOutcome.REFUSED -> "拒绝"
    DoorOutcome.COME_BACK -> "约定再访"
    DoorOutcome.VACANT -> "空置"
    DoorOutcome.MOVED -> "已搬离"
    DoorOutcome.TENANT_ONLY -> "仅租户在家"
    DoorOutcome.OWNER_ELSEWHERE -> "业主不在本地"
    DoorOutcome.DELIVERED -> "已发票"
    DoorOutcome.COLLECTED -> "已收票"
    DoorOutcome.BARRIER -> "沟通障碍"
    DoorOutcome.DO_NOT_CONTACT -> "请勿打扰"
    DoorOutcome.OTHER -> "其他"
}

/** One line of the timeline as the screen shows it. */
data class TimelineLine(val time: String, val what: String, val note: String, val synced: Boolean) {
    /** In words and a sign, never colour alone. */
    val mark: String get() = if (synced) "✓已同步" else "⏳待同步"
}

data class DoorState(
    val unit: String,
    val room: String = "",
    val owner: String = "",
    val lines: List<TimelineLine> = emptyList(),
    val waiting: Int = 0,
    val loading: Boolean = true,
    /** The last refusal (an action the rules refused, or a read that failed). */
    val error: Refusal? = null,
)

class DoorViewModel(
    private val replica: DoorstepReplica,
    private val building: String,
    private val campaign: String,
    private val unit: String,
    private val core: CoroutineDispatcher,
) {
    private val mutable = MutableStateFlow(DoorState(unit))
    val state: StateFlow<DoorState> = mutable.asStateFlow()

    suspend fun load() {
        try {
            mutable.value = withContext(core) { read() }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    /** 记录结果 in one tap: the outcome (and an optional note) is kept at once, offline or not. */
    suspend fun record(outcome: DoorOutcome, note: String = ""): Refusal? {
        val refusal = attempt(core) { replica.recordVisit(campaign, unit, outcome, note) }
        load()
        if (refusal != null) mutable.value = state.value.copy(error = refusal)
        return refusal
    }

    private fun read(): DoorState {
        val view = replica.units(building, campaign).single { it.unit.code == unit }
        val lines = replica.unitTimeline(campaign, unit).map { e ->
            val what = when (e.kind) {
                TimelineKind.VISIT -> "走访：" + (e.outcome?.let(::outcomeZh) ?: "")
                TimelineKind.DELIVERY -> "发出选票"
                TimelineKind.BALLOT -> if (e.supersedes != null) "更正选票" else "收回选票"
            }
            TimelineLine(clock(e.at), what, e.note, e.synced)
        }
        return DoorState(
            unit = unit,
            room = view.unit.room,
            owner = maskName(view.unit.ownerNames.joinToString("、")),
            lines = lines,
            waiting = lines.count { !it.synced },
            loading = false,
        )
    }

    private fun clock(at: Long): String =
        SimpleDateFormat("MM-dd HH:mm").apply { timeZone = TimeZone.getTimeZone("Asia/Shanghai") }.format(Date(at))
}
