// 门牌列表: the doors of one building for one campaign, grouped by 单元 and 楼层, each with the
// status chip a building head reads at a glance, and filter chips. A view model as a plain
// class: `state` is a StateFlow, `onEvent` takes what the screen does; every core call runs on
// the core dispatcher, never on the UI thread. Part of app-core (carries over to Android).

package doorstep.app

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.UnitView

/** A door's state in the campaign, as its chip says it (words, never colour alone). */
enum class DoorStatus(val label: String) {
    NOT_VISITED("未访"),
    NOT_HOME("不在家"),
    COME_BACK("需回访"),
    DELIVERED("已发票"),
    COLLECTED("已收票"),
    REFUSED("拒绝"),
    VACANT("空置"),
    VISITED("已访"),
}

/** The filter chips above the list. */
enum class DoorFilter(val label: String) {
    ALL("全部"),
    TO_DO("待跟进"),
    NOT_VISITED("未访"),
    DELIVERED("已发票未收"),
    COLLECTED("已收票");

    fun accepts(s: DoorStatus): Boolean = when (this) {
        ALL -> true
        TO_DO -> s == DoorStatus.NOT_VISITED || s == DoorStatus.NOT_HOME || s == DoorStatus.COME_BACK || s == DoorStatus.DELIVERED
        NOT_VISITED -> s == DoorStatus.NOT_VISITED
        DELIVERED -> s == DoorStatus.DELIVERED
        COLLECTED -> s == DoorStatus.COLLECTED
    }
}

/** One door row: 门牌, the owner masked, the chip. */
data class DoorRow(val unit: String, val room: String, val owner: String, val status: DoorStatus, val chip: String)

/** The rows of one 单元 and 楼层. */
data class DoorGroup(val title: String, val rows: List<DoorRow>)

data class UnitListState(
    val building: String,
    val campaign: String?,
    val filter: DoorFilter = DoorFilter.ALL,
    val groups: List<DoorGroup> = emptyList(),
    /** Doors with at least one visit, of all doors, and ballots collected. */
    val visited: Int = 0,
    val total: Int = 0,
    val ballots: Int = 0,
    /** How many doors each filter chip would show. */
    val counts: Map<DoorFilter, Int> = emptyMap(),
    val loading: Boolean = true,
    val error: Refusal? = null,
)

sealed interface UnitListEvent {
    data class Filter(val filter: DoorFilter) : UnitListEvent
    data object Refresh : UnitListEvent
}

/** The chip of a door from what the core reports. */
fun statusOf(v: UnitView): DoorStatus {
    if (v.ballotRecorded) return DoorStatus.COLLECTED
    return when (v.lastOutcome) {
        null -> DoorStatus.NOT_VISITED
        DoorOutcome.NOT_HOME -> DoorStatus.NOT_HOME
        DoorOutcome.COME_BACK -> DoorStatus.COME_BACK
        DoorOutcome.DELIVERED -> DoorStatus.DELIVERED
        DoorOutcome.COLLECTED -> DoorStatus.COLLECTED
        DoorOutcome.REFUSED, DoorOutcome.DO_NOT_CONTACT -> DoorStatus.REFUSED
        DoorOutcome.VACANT, DoorOutcome.MOVED -> DoorStatus.VACANT
        else -> DoorStatus.VISITED
    }
}

/** An owner's name as the list shows it to someone looking over the head's shoulder: 王芳 → 王*. */
fun maskName(name: String): String = when {
    name.isEmpty() -> "（无业主）"
    name.length == 1 -> name
    else -> name.first() + "*".repeat(minOf(name.length - 1, 2))
}

class UnitListViewModel(
    private val replica: DoorstepReplica,
    private val building: String,
    private val campaign: String?,
    private val core: CoroutineDispatcher,
    private val scope: CoroutineScope,
) {
    private val mutable = MutableStateFlow(UnitListState(building, campaign))
    val state: StateFlow<UnitListState> = mutable.asStateFlow()
    private var views: List<UnitView> = emptyList()

    init {
        onEvent(UnitListEvent.Refresh)
    }

    fun onEvent(event: UnitListEvent) {
        when (event) {
            is UnitListEvent.Filter -> mutable.value = shape(views, event.filter)
            UnitListEvent.Refresh -> scope.launch { load() }
        }
    }

    /** Reads the doors again (after an action or a sync). */
    suspend fun load() {
        try {
            views = withContext(core) { replica.units(building, campaign) }
            mutable.value = shape(views, state.value.filter)
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    private fun shape(views: List<UnitView>, filter: DoorFilter): UnitListState {
        val rows = views.map { v ->
            val status = statusOf(v)
            val chip = if (status == DoorStatus.NOT_HOME && v.visits > 1u) "${status.label}×${v.visits}" else status.label
            Triple(v, status, DoorRow(v.unit.code, v.unit.room, maskName(v.unit.ownerNames.joinToString("、")), status, chip))
        }
        val groups = rows
            .filter { filter.accepts(it.second) }
            // The entrance id is `building-entrance` (e.g. `3-1`); the head reads 1单元.
            .groupBy { it.first.unit.entrance.substringAfterLast('-') to it.first.unit.floor }
            .toSortedMap(compareBy<Pair<String, Long>> { it.first.padStart(4, '0') }.thenBy { it.second })
            .map { (key, list) -> DoorGroup("${key.first}单元 · ${key.second}层", list.map { it.third }.sortedBy { it.room }) }
        return UnitListState(
            building = building,
            campaign = campaign,
            filter = filter,
            groups = groups,
            visited = views.count { it.visits > 0u },
            total = views.size,
            ballots = views.count { it.ballotRecorded },
            counts = DoorFilter.values().associateWith { f -> rows.count { f.accepts(it.second) } },
            loading = false,
            error = null,
        )
    }
}
