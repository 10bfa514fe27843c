// 设置: 长辈模式 (large text), who this phone works for (from the enrollment), and 离开此手机
// (leave / change phone). Leaving deletes the phone's store, so it is refused while any record
// waits for the server (it would be lost), and otherwise asks for a confirmation before the
// shell's [onLeave] runs. A plain view model; part of app-core.

package doorstep.app

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.Role

fun roleZh(r: Role): String = when (r) {
    Role.ADMIN -> "社区管理员"
    Role.COUNTING_OFFICER -> "计票人"
    Role.DISPATCHER -> "支部派单员"
    Role.BUILDING_HEAD -> "楼栋长"
}

/** The app's own code for "leaving now would lose records". */
const val PENDING_WORK = "pending_work"

/** The refusal of 离开此手机 while [pending] records wait for the server. */
fun pendingWorkRefusal(pending: Long): Refusal = Refusal(
    code = PENDING_WORK,
    sentence = "还有 $pending 条记录没有同步到服务器，现在离开会丢失这些记录。请先连上网络同步，待同步为 0 后再离开。",
    next = NextStep.SYNC_FIRST,
)

/** The sentence asked before leaving. */
const val LEAVE_CONFIRM =
    "离开后，这台手机上的小区资料会全部删除，需要重新扫码才能再用。所有记录都已同步到服务器，不会丢失。确定离开吗？"

data class SettingsState(
    /** 长辈模式: larger text and rows. */
    val large: Boolean = false,
    /** Whether this phone has joined a community. */
    val enrolled: Boolean = false,
    val account: String = "",
    val community: String = "",
    /** e.g. "楼栋长、支部派单员". */
    val roles: String = "",
    /** e.g. "1号楼、2号楼". */
    val buildings: String = "",
    /** The server-issued device id. */
    val device: String = "",
    val pending: Long = 0,
    /** Set while 离开此手机 waits for 确定 / 取消. */
    val confirmLeave: Boolean = false,
    /** True once [SettingsViewModel.confirmLeave] handed over to the shell. */
    val left: Boolean = false,
    val loading: Boolean = true,
    val error: Refusal? = null,
)

class SettingsViewModel(
    private val replica: DoorstepReplica,
    private val core: CoroutineDispatcher,
    /** Runs after the confirmation: the shell closes and deletes the phone's store. */
    private val onLeave: suspend () -> Unit,
    large: Boolean = false,
) {
    private val mutable = MutableStateFlow(SettingsState(large = large))
    val state: StateFlow<SettingsState> = mutable.asStateFlow()

    suspend fun load() {
        try {
            val s = state.value
            mutable.value = withContext(core) { read(s) }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    /** 长辈模式 on or off; the shell picks its theme from `state.large`. */
    fun setLarge(large: Boolean) {
        mutable.value = state.value.copy(large = large)
    }

    fun toggleLarge() = setLarge(!state.value.large)

    /**
     * 离开此手机, first step: refused while records wait for the server; otherwise the
     * confirmation is asked ([confirmLeave] / [cancelLeave]).
     */
    suspend fun requestLeave(): Refusal? {
        load()
        state.value.error?.let { return it }
        val pending = state.value.pending
        if (pending > 0) {
            val refusal = pendingWorkRefusal(pending)
            mutable.value = state.value.copy(confirmLeave = false, error = refusal)
            return refusal
        }
        mutable.value = state.value.copy(confirmLeave = true, error = null)
        return null
    }

    fun cancelLeave() {
        mutable.value = state.value.copy(confirmLeave = false)
    }

    /** 确定离开: checks again (a record may have been added meanwhile), then hands over. */
    suspend fun confirmLeave(): Refusal? {
        if (!state.value.confirmLeave) return requestLeave()
        load()
        state.value.error?.let {
            mutable.value = state.value.copy(confirmLeave = false)
            return it
        }
        val pending = state.value.pending
        if (pending > 0) {
            val refusal = pendingWorkRefusal(pending)
            mutable.value = state.value.copy(confirmLeave = false, error = refusal)
            return refusal
        }
        onLeave()
        mutable.value = state.value.copy(confirmLeave = false, left = true)
        return null
    }

    private fun read(previous: SettingsState): SettingsState {
        val identity = replica.identity()
            ?: return previous.copy(enrolled = false, loading = false, error = null, pending = 0)
        val labels = replica.buildings().associate { it.id to it.label }
        return previous.copy(
            enrolled = true,
            account = identity.account,
            community = identity.community,
            roles = identity.roles.joinToString("、", transform = ::roleZh),
            buildings = identity.buildings.joinToString("、") { labels[it] ?: "${it}号楼" },
            device = identity.device,
            pending = replica.pendingCount().toLong(),
            loading = false,
            error = null,
        )
    }
}
