// What the building head reads when something is refused, chosen by the stable machine code
// that core, the server and the sync reply carry (never by the English words). Plain Kotlin:
// this file is part of app-core and carries over to Android unchanged.

package doorstep.app

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.Rejection

/** What the app offers next to the sentence. */
enum class NextStep {
    /** Nothing to do: the record stays as it was. */
    NONE,
    /** Correct what was typed or chosen and try again. */
    FIX_INPUT,
    /** Sync first: what was asked for has not reached this phone yet. */
    SYNC_FIRST,
    /** Try again later: the network or the server is unavailable; nothing local is lost. */
    RETRY_LATER,
    /** Ask the community office (an admin) — only they can change this. */
    ASK_OFFICE,
    /** Reset this document to the server's copy (同步 screen). */
    RESET_DOCUMENT,
    /** Scan a new enrollment code from the dashboard. */
    ENROLL_AGAIN,
    /** Update the app. */
    UPDATE_APP,
}

/** Runs one recording call into the core on [core]: null when it was kept, else its refusal
 *  (the view models' actions all go through here). */
suspend fun attempt(core: CoroutineDispatcher, block: () -> Unit): Refusal? = try {
    withContext(core) { block() }
    null
} catch (e: ApiException) {
    Refusals.of(e)
}

/** One refusal as shown on the screen. */
data class Refusal(val code: String, val sentence: String, val next: NextStep)

object Refusals {
    /** The sentence and next step for [code]; an unknown code (a newer server) still gets a
     *  sentence that says nothing was lost, and the code is kept for the log. */
    fun of(code: String): Refusal {
        val (sentence, next) = known[code] ?: ("操作没有完成（代码 $code），已记录的内容没有丢失。" to NextStep.NONE)
        return Refusal(code, sentence, next)
    }

    /** The refusal an exception from the core carries. */
    fun of(e: ApiException): Refusal = when (e) {
        is ApiException.InvalidInput -> of(e.code)
        is ApiException.NotAllowed -> of(e.code)
        is ApiException.RejectedByServer -> of(e.code)
        is ApiException.Network -> of("network")
        is ApiException.Storage -> of("storage")
    }

    /** The refusal of one document in a sync. */
    fun of(r: Rejection): Refusal = of(r.code)

    /** Whether [code] has its own sentence (the tests check every code the core can send). */
    fun knows(code: String): Boolean = code in known

    private val known: Map<String, Pair<String, NextStep>> = mapOf(
        // The write rules (the same check on the phone and on the server).
        "foreign_actor" to ("这条修改带着另一台手机的身份，服务器没有接受。请在「同步」页重置这份资料。" to NextStep.RESET_DOCUMENT),
        "malformed_change" to ("这份资料在手机上已损坏，服务器没有接受。请在「同步」页重置这份资料。" to NextStep.RESET_DOCUMENT),
        "admin_only" to ("只有社区管理员可以修改这部分内容（名册、面积、业主）。如有错误请联系社区办公室。" to NextStep.ASK_OFFICE),
        "not_assigned" to ("这栋楼没有分配给您。如需负责这栋楼，请联系社区办公室。" to NextStep.ASK_OFFICE),
        "campaign_backwards" to ("这项投票的状态不能退回。" to NextStep.ASK_OFFICE),
        "campaign_frozen" to ("这项投票已发布，名册和议题已冻结，不能修改。" to NextStep.ASK_OFFICE),
        "no_household" to ("这一户还没有住户信息可以更正。请先同步。" to NextStep.SYNC_FIRST),
        "household_fields_only" to ("楼栋长只能更正住户信息（联系人、电话、居住情况、人数、备注）。" to NextStep.ASK_OFFICE),
        "invalid_household" to ("住户信息不合规：人数须在 0 到 99 之间。" to NextStep.FIX_INPUT),
        "append_only" to ("已记录的内容不能修改或删除。如有错误，请另记一条（选票请用「更正」）。" to NextStep.NONE),
        "officers_only" to ("只有计票人可以裁决重复选票。" to NextStep.NONE),
        "roll_frozen" to ("表决名册已冻结，不能修改。名册有误请联系社区办公室。" to NextStep.ASK_OFFICE),
        "forbidden_path" to ("这部分资料不能在手机上修改。" to NextStep.NONE),
        "wrong_campaign" to ("这条记录属于另一项投票。" to NextStep.NONE),
        "owner_mismatch" to ("选票上的业主与表决名册不一致。请先同步，再重新记录。" to NextStep.SYNC_FIRST),
        "unknown_campaign" to ("这项投票还没有到达这台手机，请先同步。" to NextStep.SYNC_FIRST),
        "invalid_adjudication" to ("裁决须从所列选票中选定一张，并写明理由。" to NextStep.FIX_INPUT),
        "invalid_record" to ("这条记录的编号或记录人不正确，服务器没有接受。请在「同步」页重置这份资料。" to NextStep.RESET_DOCUMENT),
        "not_on_roll" to ("这一户不在本楼的表决名册上，不能为其发票或收票。" to NextStep.ASK_OFFICE),
        "campaign_closed" to ("这项投票当前不接受这项工作（尚未开始或已经截止）。" to NextStep.NONE),
        "grace_period_ended" to ("截止前收回的选票须在补交期限内同步，期限已过。请联系社区办公室。" to NextStep.ASK_OFFICE),
        "invalid_answer" to ("选票的填写不符合要求（选项不存在或选得太多），请检查后再记录。" to NextStep.FIX_INPUT),
        "order_fields_locked" to ("心愿提交后只能改变状态，内容不能再改。" to NextStep.NONE),
        "order_transition" to ("这条心愿当前的状态不能进行这一步。请先同步看最新状态。" to NextStep.SYNC_FIRST),
        "dispatcher_only" to ("审核、发布和派单由支部派单员处理。" to NextStep.NONE),
        "assignee_only" to ("只有接单的楼栋长可以办理这条心愿。" to NextStep.NONE),
        "assignee_required" to ("派单须指定一位楼栋长。" to NextStep.NONE),
        "confirmation_required" to ("居民确认办好后才能关闭这条心愿。" to NextStep.NONE),
        "too_large" to ("填写的内容太长（每项最多 2000 字），没有保存。请精简后再记录。" to NextStep.FIX_INPUT),
        // The phone's own errors.
        "bad_doc_id" to ("这份资料的编号不对。" to NextStep.NONE),
        "corrupt" to ("手机上的这份资料已损坏。请在「同步」页重置这份资料。" to NextStep.RESET_DOCUMENT),
        "bad_shape" to ("手机上的这份资料格式不对。请在「同步」页重置这份资料。" to NextStep.RESET_DOCUMENT),
        "invalid_input" to ("填写的内容不完整或格式不对，请检查后再试。" to NextStep.FIX_INPUT),
        "bad_import" to ("名册文件有误。" to NextStep.ASK_OFFICE),
        "not_enrolled" to ("这台手机还没有加入社区。请扫描社区办公室给您的二维码。" to NextStep.ENROLL_AGAIN),
        "not_on_phone" to ("这项内容还没有到达这台手机，请先同步。" to NextStep.SYNC_FIRST),
        "automerge" to ("手机上的资料处理出错，这次操作没有保存。请再试一次。" to NextStep.NONE),
        "wrong_key" to ("手机上的资料已加密保存，这次没能打开，资料没有被改动。请重新打开应用；仍不行请联系社区办公室。" to NextStep.ASK_OFFICE),
        "storage" to ("手机存储出错，这次操作没有保存。请检查手机空间后再试。" to NextStep.NONE),
        "network" to ("现在连不上服务器，记录都保存在手机上，有网络时会自动同步。" to NextStep.RETRY_LATER),
        "bad_reply" to ("服务器的回复看不懂，记录都保存在手机上。请稍后再同步。" to NextStep.RETRY_LATER),
        // Per-document answers of a sync.
        "malformed_message" to ("这份资料没能发送成功，记录仍在手机上。请稍后再同步。" to NextStep.RETRY_LATER),
        "unapplicable_changes" to ("服务器无法接上这份资料的修改。请在「同步」页重置这份资料。" to NextStep.RESET_DOCUMENT),
        "held_for_review" to ("这栋楼已不由这台手机负责。您记下的内容已交到社区办公室，等管理员接收；接收后这一条会自动消失，记录不会丢。" to NextStep.ASK_OFFICE),
        "not_held" to ("这份资料已不再分配给这台手机；尚未送达的记录保留在手机上，请联系社区办公室。" to NextStep.ASK_OFFICE),
        "no_such_document" to ("服务器上已没有这份资料。" to NextStep.NONE),
        "upgrade_required" to ("请更新应用后再同步；所有记录都保存在手机上。" to NextStep.UPDATE_APP),
        // The server's refusals of a whole request.
        "malformed_envelope" to ("发送的数据不完整，记录仍在手机上。请稍后再同步。" to NextStep.RETRY_LATER),
        "unsupported_protocol" to ("服务器不支持这个版本的应用，请更新应用。" to NextStep.UPDATE_APP),
        "invalid_envelope" to ("发送的数据有误，记录仍在手机上。请稍后再同步。" to NextStep.RETRY_LATER),
        "unsupported_schema" to ("服务器版本比应用旧，请联系社区办公室升级服务器。" to NextStep.ASK_OFFICE),
        "missing_token" to ("这台手机还没有加入社区。请扫描社区办公室给您的二维码。" to NextStep.ENROLL_AGAIN),
        "invalid_token" to ("服务器不认识这台手机，请重新扫码加入。未同步的记录会保留。" to NextStep.ENROLL_AGAIN),
        "quarantine_full" to ("这台手机发送了过多被拒绝的数据，服务器已暂停它的同步。记录都保存在手机上，请联系社区办公室查看后恢复。" to NextStep.ASK_OFFICE),
        "device_revoked" to ("社区办公室已停用这台手机。请联系办公室重新扫码加入；未同步的记录会保留。" to NextStep.ENROLL_AGAIN),
        // The app's own (not from the core): what the opened image or typed text held, and a
        // door opened while no campaign is in the field.
        "no_open_campaign" to ("现在没有可以上门的投票或征询。社区办公室发布后，同步一下就会出现。" to NextStep.SYNC_FIRST),
        "not_an_enrollment_code" to ("这不是 doorstep 的加入二维码。请打开社区办公室发来的二维码图片，或手动输入服务器地址和加入码。" to NextStep.FIX_INPUT),
        "invalid_enrollment_code" to ("这个加入码无效、已用过或已过期。请向社区办公室要一个新码。" to NextStep.ENROLL_AGAIN),
        "forbidden" to ("您的账号已被停用，请联系社区办公室。" to NextStep.ASK_OFFICE),
        "method_not_allowed" to ("应用与服务器不匹配，请更新应用。" to NextStep.UPDATE_APP),
        "timeout" to ("服务器处理超时，记录都保存在手机上。请稍后再同步。" to NextStep.RETRY_LATER),
        "body_too_large" to ("要发送的资料太大，服务器没有接收。请联系社区办公室。" to NextStep.ASK_OFFICE),
        "unsupported_media_type" to ("应用与服务器不匹配，请更新应用。" to NextStep.UPDATE_APP),
        "invalid_json" to ("发送的数据有误。请再试一次。" to NextStep.RETRY_LATER),
        "internal" to ("服务器出错了，记录都保存在手机上。请稍后再同步。" to NextStep.RETRY_LATER),
        "unavailable" to ("服务器正忙，记录都保存在手机上，稍后会自动同步。" to NextStep.RETRY_LATER),
    )
}
