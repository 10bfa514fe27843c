// 首页: the campaigns in the field and each assigned building's progress ("3号楼 已走访 18/28 户
// · 已收回 12 票"), under the sync strip. A plain view model over the replica; part of app-core.

package doorstep.app

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.CampaignKind
import uniffi.doorstep_ffi.CampaignStatus
import uniffi.doorstep_ffi.DoorstepReplica

/** One campaign card: what it is and whether the head can work on it now. */
data class CampaignCard(val id: String, val title: String, val kind: String, val status: String, val accepting: Boolean)

/** One assigned building's progress in the campaign the home screen follows. */
data class BuildingProgress(val id: String, val label: String, val visited: Int, val total: Int, val ballots: Int) {
    val line: String get() = "$label 已走访 $visited/$total 户 · 已收回 $ballots 票"
}

data class HomeState(
    val campaigns: List<CampaignCard> = emptyList(),
    /** The campaign the progress lines count (the first one accepting work). */
    val following: String? = null,
    val buildings: List<BuildingProgress> = emptyList(),
    val loading: Boolean = true,
    val error: Refusal? = null,
)

fun kindZh(k: CampaignKind): String = when (k) {
    CampaignKind.ELECTION -> "业委会选举"
    CampaignKind.RESOLUTION -> "业主大会表决"
    CampaignKind.SURVEY -> "意见征询"
    CampaignKind.HEARING -> "听证"
}

fun statusZh(s: CampaignStatus): String = when (s) {
    CampaignStatus.DRAFT -> "草稿"
    CampaignStatus.PUBLISHED -> "已发布 · 可发票"
    CampaignStatus.OPEN -> "投票中"
    CampaignStatus.CLOSED -> "已截止"
    CampaignStatus.TALLIED -> "已计票"
    CampaignStatus.PUBLICISED -> "已公示"
    CampaignStatus.ARCHIVED -> "已归档"
}

class HomeViewModel(private val replica: DoorstepReplica, private val core: CoroutineDispatcher) {
    private val mutable = MutableStateFlow(HomeState())
    val state: StateFlow<HomeState> = mutable.asStateFlow()

    /** Reads campaigns and progress again (at start, after an action or a sync). */
    suspend fun load() {
        try {
            mutable.value = withContext(core) { read() }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    private fun read(): HomeState {
        val campaigns = replica.campaigns().map {
            val accepting = it.status == CampaignStatus.PUBLISHED || it.status == CampaignStatus.OPEN
            CampaignCard(it.id, it.title, kindZh(it.kind), statusZh(it.status), accepting)
        }
        // The vote or election in the field; a survey only when nothing else is.
        val following = replica.campaigns()
            .sortedBy { it.kind == CampaignKind.SURVEY }
            .firstOrNull { it.status == CampaignStatus.PUBLISHED || it.status == CampaignStatus.OPEN }?.id
        val buildings = replica.buildings().map { b ->
            val doors = replica.units(b.id, following)
            BuildingProgress(b.id, b.label, doors.count { it.visits > 0u }, doors.size, doors.count { it.ballotRecorded })
        }
        return HomeState(campaigns, following, buildings, loading = false)
    }
}
