// 通知: what the officers decided that reached this phone with a sync — which of an owner's
// competing ballots counts, or that none does, and why. Unread until the head has opened the
// screen. A plain view model; part of app-core.

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
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.Notice

/** One notice as the screen shows it. */
data class NoticeLine(
    val id: String,
    val time: String,
    val title: String,
    val detail: String,
    val unread: Boolean,
) {
    /** In words, never colour alone. */
    val mark: String get() = if (unread) "新" else "已读"
}

data class NoticesState(
    val lines: List<NoticeLine> = emptyList(),
    val unread: Int = 0,
    val loading: Boolean = true,
    val error: Refusal? = null,
)

/** The sentence of one officer's decision ([campaignTitle] names the campaign). */
fun noticeText(n: Notice, campaignTitle: String, me: String?): Pair<String, String> {
    val doors = n.units.joinToString("、")
    val title = "计票人已裁定：$doors"
    val who = when (n.countedBy) {
        null -> ""
        me -> "您"
        else -> "另一位楼栋长"
    }
    val decision = n.countedUnit?.let { "以${who}在 $it 收回的选票为准" } ?: "${n.considered} 张选票均作废"
    return title to "$campaignTitle：该户 ${n.considered} 张选票冲突，$decision。理由：${n.reason}"
}

class NoticesViewModel(private val replica: DoorstepReplica, private val core: CoroutineDispatcher) {
    private val mutable = MutableStateFlow(NoticesState())
    val state: StateFlow<NoticesState> = mutable.asStateFlow()

    suspend fun load() {
        try {
            mutable.value = withContext(core) { read() }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    /** The head has seen what is on the screen: everything up to the newest notice is read. */
    suspend fun markSeen() {
        try {
            withContext(core) {
                replica.notices().maxOfOrNull { it.at }?.let { replica.markNoticesSeen(it) }
            }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(error = Refusals.of(e))
            return
        }
        load()
    }

    private fun read(): NoticesState {
        val titles = replica.campaigns().associate { it.id to it.title }
        val me = replica.identity()?.account
        val clock = SimpleDateFormat("MM-dd HH:mm").apply { timeZone = TimeZone.getTimeZone("Asia/Shanghai") }
        val lines = replica.notices().map { n ->
            val (title, detail) = noticeText(n, titles[n.campaign] ?: n.campaign, me)
            NoticeLine(n.id, clock.format(Date(n.at)), title, detail, n.unread)
        }
        return NoticesState(lines, lines.count { it.unread }, loading = false)
    }
}
