// 同步: how much waits on the phone, what the last sync did (the sync engine's SyncStatus), the
// documents the server refused, each with the Chinese sentence and next step chosen by its
// machine code, and "重置此文档", which asks first: resetting drops that document's records
// the server has not accepted and fetches the server's copy at the next sync. A plain view
// model; part of app-core.

package doorstep.app

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.Rejection

/** The words of a next step, as the button or hint under a refusal says it ("" for none). */
fun nextStepZh(n: NextStep): String = when (n) {
    NextStep.NONE -> ""
    NextStep.FIX_INPUT -> "请改正后再试"
    NextStep.SYNC_FIRST -> "请先同步"
    NextStep.RETRY_LATER -> "稍后会自动再试"
    NextStep.ASK_OFFICE -> "请联系社区办公室"
    NextStep.RESET_DOCUMENT -> "请重置此文档"
    NextStep.ENROLL_AGAIN -> "请重新扫码加入"
    NextStep.UPDATE_APP -> "请更新应用"
}

/** One refused document: what it holds (in words), the code, the sentence and next step. */
data class RejectionRow(val docId: String, val what: String, val refusal: Refusal) {
    val code: String get() = refusal.code
    val sentence: String get() = refusal.sentence
    val next: String get() = nextStepZh(refusal.next)

    /** Resetting is what the refusal itself advises (the button is then the main one). */
    val resetAdvised: Boolean get() = refusal.next == NextStep.RESET_DOCUMENT
}

/** The question asked before a reset. */
data class ResetConfirm(val docId: String, val what: String) {
    val sentence: String get() =
        "重置「$what」：这份资料在手机上还没被服务器接受的记录会被删除，下次同步时从服务器取回。确定重置吗？"
}

data class SyncScreenState(
    /** What the sync engine says (the strip). */
    val status: SyncStatus = SyncStatus.Idle(0),
    /** Local changes the server has not acknowledged yet. */
    val pending: Long = 0,
    val rejections: List<RejectionRow> = emptyList(),
    /** Competing ballots waiting for the counting officer (nothing for the head to do). */
    val ballotConflicts: Int = 0,
    /** Household fields two people changed at once (editing the field again settles it). */
    val householdConflicts: Int = 0,
    /** Set while a reset waits for 确定 / 取消. */
    val confirm: ResetConfirm? = null,
    val notice: String? = null,
    val loading: Boolean = true,
    val error: Refusal? = null,
) {
    /** The pending count in words. */
    val pendingLine: String get() = if (pending == 0L) "所有记录都已同步" else "$pending 条记录待同步"

    /** What the last sync did, in a sentence (the strip above says it in short). */
    val resultLine: String get() = when (val s = status) {
        is SyncStatus.Idle -> "打开应用后还没有同步过。"
        is SyncStatus.Syncing -> "正在同步，请稍候…"
        is SyncStatus.Offline -> "现在没有网络。记录都保存在手机上，有网络时会自动同步。"
        is SyncStatus.Failed -> "上次同步没有成功：" + s.refusal.sentence + " 将于 " + clockZh(s.retryAt) + " 自动再试。"
        is SyncStatus.Done -> "上次同步 " + clockZh(s.lastSyncAt) + " 完成" +
            if (rejections.isEmpty()) "，服务器全部接受。" else "，服务器退回了 ${rejections.size} 份资料（见下方）。"
    }
}

/**
 * The 同步 screen's view model. Document ids are put in words by [DocumentLabels] (e.g.
 * "2号楼 · 微心愿"); [syncNow] is the sync engine's "立即同步" (null when the shell has none).
 */
class SyncViewModel(
    private val replica: DoorstepReplica,
    private val core: CoroutineDispatcher,
    private val syncNow: (suspend () -> SyncStatus)? = null,
) {
    private val mutable = MutableStateFlow(SyncScreenState())
    val state: StateFlow<SyncScreenState> = mutable.asStateFlow()
    @Volatile private var labels = DocumentLabels(emptyMap(), emptyMap())

    /** The sync engine's latest status (the shell forwards `engine.status`). */
    suspend fun show(status: SyncStatus) {
        mutable.value = state.value.copy(status = status)
        load()
    }

    suspend fun load() {
        try {
            val s = state.value
            mutable.value = withContext(core) { read(s) }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    /** 立即同步 through the engine; the status it ends in is shown. */
    suspend fun sync(): SyncStatus? {
        val engine = syncNow ?: return null
        val s = engine()
        show(s)
        return s
    }

    /** 重置此文档, first step: nothing happens until [confirmReset]. */
    fun requestReset(docId: String) {
        val s = state.value
        val what = s.rejections.firstOrNull { it.docId == docId }?.what ?: labels.of(docId)
        mutable.value = s.copy(confirm = ResetConfirm(docId, what), notice = null, error = null)
    }

    fun cancelReset() {
        mutable.value = state.value.copy(confirm = null)
    }

    /** 确定重置: forgets the document; the next sync fetches the server's copy. */
    suspend fun confirmReset(): Refusal? {
        val confirm = state.value.confirm ?: return null
        val refusal = attempt(core) { replica.resetDocument(confirm.docId) }
        load()
        mutable.value = if (refusal != null) {
            state.value.copy(confirm = null, error = refusal)
        } else {
            state.value.copy(confirm = null, notice = "已重置「${confirm.what}」，下次同步时从服务器取回")
        }
        return refusal
    }

    private fun read(previous: SyncScreenState): SyncScreenState {
        val attention = replica.attention()
        // The last sync's report and the stored verdicts: one row per document.
        val fromSync = (previous.status as? SyncStatus.Done)?.rejected ?: emptyList()
        val rejections = (attention.rejections + fromSync).distinctBy { it.docId }
        labels = DocumentLabels.read(replica)
        val pending = replica.pendingCount().toLong()
        return previous.copy(
            // The strip and the heading say the same number: the count just read.
            status = withPending(previous.status, pending),
            pending = pending,
            rejections = rejections.map { rejectionRow(it, labels) },
            ballotConflicts = attention.ballotConflicts.size,
            householdConflicts = attention.householdConflicts.size,
            loading = false,
            error = null,
        )
    }
}

/** [s] with [pending] as its count (the engine's status may be older than the last action). */
fun withPending(s: SyncStatus, pending: Long): SyncStatus = when (s) {
    is SyncStatus.Idle -> s.copy(pending = pending)
    is SyncStatus.Syncing -> s.copy(pending = pending)
    is SyncStatus.Offline -> s.copy(pending = pending)
    is SyncStatus.Failed -> s.copy(pending = pending)
    is SyncStatus.Done -> s.copy(pending = pending)
}

/** A refused document as its row shows it; the sentence is chosen by the code. */
fun rejectionRow(r: Rejection, labels: DocumentLabels): RejectionRow =
    RejectionRow(r.docId, labels.of(r.docId), Refusals.of(r))

/**
 * Words for a document id (`field/{campaign}/{building}`, `building/{community}/{b}`,
 * `orders/{community}/{b}`, `campaign/{c}`, `register/{community}`, as the core writes them);
 * an id of a kind this app does not know is shown as it is.
 */
class DocumentLabels(private val buildings: Map<String, String>, private val campaigns: Map<String, String>) {
    fun of(docId: String): String {
        val p = docId.split('/')
        fun b(id: String) = buildings[id] ?: "${id}号楼"
        fun c(id: String) = campaigns[id] ?: id
        return when {
            p.size == 3 && p[0] == "field" -> "${b(p[2])} · ${c(p[1])} · 走访与选票"
            p.size == 3 && p[0] == "building" -> "${b(p[2])} · 住户信息"
            p.size == 3 && p[0] == "orders" -> "${b(p[2])} · 微心愿"
            p.size == 2 && p[0] == "campaign" -> "${c(p[1])} · 议题"
            p.size == 2 && p[0] == "register" -> "小区名册"
            else -> docId
        }
    }

    companion object {
        /** Reads the labels from the phone (on the core dispatcher). */
        fun read(replica: DoorstepReplica): DocumentLabels =
            DocumentLabels(replica.buildings().associate { it.id to it.label }, replica.campaigns().associate { it.id to it.title })
    }
}
