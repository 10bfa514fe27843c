// 选票: one door in a resolution or election campaign. Deliver the ballot paper, collect the
// owner's answers, correct a ballot (the new one names the old one in `supersedes`); each also
// records the door's visit outcome (已发票 / 已收票), so the door list and progress follow. Before a
// second ballot for an owner who already has one, the view model stops and says 该户已有选票,
// offering 更正 instead: a second ballot is never added silently (it would become a conflict
// for the counting officer). A plain view model; part of app-core.

package doorstep.app

import java.text.SimpleDateFormat
import java.util.Date
import java.util.TimeZone
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.Answer
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.CollectionMethod
import uniffi.doorstep_ffi.CampaignStatus
import uniffi.doorstep_ffi.CampaignSummary
import uniffi.doorstep_ffi.Choice
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.QuestionKind
import uniffi.doorstep_ffi.RegisterUnit
import uniffi.doorstep_ffi.TimelineKind

/** The three answers every binding question offers, in the order of the paper. */
val CHOICES: List<Choice> = listOf(Choice.YES, Choice.NO, Choice.ABSTAIN)

fun choiceZh(c: Choice): String = when (c) {
    Choice.YES -> "同意"
    Choice.NO -> "反对"
    Choice.ABSTAIN -> "弃权"
}

/** What the head is doing with the paper in hand. */
enum class BallotMode(val label: String) {
    /** Collecting the owner's (first) ballot. */
    COLLECT("收回选票"),
    /** Recording a corrected ballot that replaces the owner's earlier one. */
    CORRECT("更正选票"),
}

/**
 * One line of choice buttons: a resolution question, or one candidate of an election.
 * [choice] is what the head has tapped so far (null: left blank).
 */
data class ChoiceRow(
    val question: String,
    /** The candidate id for an election row, null for a resolution question. */
    val candidate: String?,
    /** What the row asks: the question's text, or the candidate's name. */
    val title: String,
    val choice: Choice?,
)

/** One ballot of this owner as the screen lists it. */
data class BallotLine(
    val id: String,
    val time: String,
    /** Where it was collected (the room; another door of the same owner is named). */
    val where: String,
    /** True when it replaced an earlier one (更正). */
    val correction: Boolean,
    /** False once a later ballot replaced it. */
    val effective: Boolean,
    val synced: Boolean,
) {
    /** 收回选票 or 更正选票 (意见征询 says 答卷 / 更正答卷). */
    val what: String get() = if (correction) "更正选票" else "收回选票"
    val answerWhat: String get() = if (correction) "更正答卷" else "答卷"

    /** In words: whether it counts, and whether the server has it. */
    val mark: String get() = (if (effective) "有效" else "已被更正") + " · " + (if (synced) "✓已同步" else "⏳待同步")
}

data class BallotState(
    val campaign: String,
    val unit: String,
    val campaignTitle: String = "",
    /** 业主大会表决 / 业委会选举 and the campaign's status, in words. */
    val campaignLine: String = "",
    /** Whether the campaign takes field work now (published or open). */
    val accepting: Boolean = false,
    val room: String = "",
    /** The owner, masked (王*). */
    val owner: String = "",
    /** The rows of choice buttons, in the paper's order. */
    val rows: List<ChoiceRow> = emptyList(),
    /** How to fill in the paper, e.g. "本次选出 5 名：最多同意 5 人". */
    val hint: String = "",
    /** Seats of each election question (question id → seats). */
    val seats: Map<String, Int> = emptyMap(),
    /** Ballot papers handed to this door. */
    val deliveries: Int = 0,
    /** This owner's ballots in this campaign, oldest first. */
    val ballots: List<BallotLine> = emptyList(),
    /** The owner has a ballot recorded (at this door or another door of theirs). */
    val ownerHasBallot: Boolean = false,
    val mode: BallotMode = BallotMode.COLLECT,
    /**
     * How the paper being recorded came back: the owner signed at the door (入户收取), someone
     * the owner authorised in writing signed (委托代签; the authorisation is kept with the
     * paper), cast at the polling place the head staffs (现场投票), or returned to the ballot
     * box (书面投回). Back to the door after each recording.
     */
    val method: CollectionMethod = CollectionMethod.DOOR,
    /** Set when a second ballot was asked for: "该户已有选票…", with 更正 offered. */
    val warning: String? = null,
    /** What the last action did, in words (e.g. "已收回选票，待同步"). */
    val notice: String? = null,
    val loading: Boolean = true,
    val error: Refusal? = null,
) {
    /** The ballots that count for this owner: one normally; two or more are a conflict. */
    val effectiveCount: Int get() = ballots.count { it.effective }

    /** Per election question, in words: "已同意 6 人 · 最多 5 人（多了 1 人）" (the rules refuse too many). */
    val approvals: List<String> get() = seats.map { (q, n) ->
        val yes = rows.count { it.question == q && it.choice == Choice.YES }
        "已同意 $yes 人 · 最多 $n 人" + if (yes > n) "（多了 ${yes - n} 人）" else ""
    }

    /** Some election question has more approvals than seats. */
    val overApproved: Boolean get() = seats.any { (q, n) -> rows.count { it.question == q && it.choice == Choice.YES } > n }

    /** The ballot a correction replaces (only when exactly one counts). */
    val correctable: String? get() = ballots.singleOrNull { it.effective }?.id

    /** The door's state in words: 未发票 / 已发票 / 已收票 / 重复选票. */
    val statusLine: String get() = when {
        effectiveCount > 1 -> "该户有 $effectiveCount 张选票，待计票人裁定"
        ownerHasBallot -> "已收票" + if (deliveries > 0) "（已发票 $deliveries 次）" else ""
        deliveries > 0 -> "已发票 $deliveries 次 · 未收回"
        else -> "未发票"
    }
}

/** What a collect or correct action ended in. */
sealed interface BallotResult {
    /** Kept on the phone (⏳待同步) under [id]. */
    data class Recorded(val id: String) : BallotResult

    /** Nothing recorded: the owner already has a ballot; the screen offers 更正. */
    data class AlreadyHasBallot(val warning: String) : BallotResult

    /** Nothing recorded: the rules (or the phone) refused. */
    data class Refused(val refusal: Refusal) : BallotResult
}

/** The sentence shown before a second ballot for one owner. */
const val BALLOT_EXISTS_WARNING =
    "该户已有选票。业主要改选，请点「更正选票」，新票替换旧票。"

/** The refusal when an owner's ballots already compete (only the counting officer decides). */
fun ballotConflictRefusal(n: Int): Refusal = Refusal(
    code = "ballot_conflict",
    sentence = "该户已有 $n 张选票，待计票人裁定，现在不能再收或更正。",
    next = NextStep.NONE,
)

/** The owner has a ballot, but it is not on this phone (collected at a door of another
 *  building): a correction cannot name it, and a second ballot would compete with it. */
val BALLOT_NOT_HERE = Refusal(
    code = "ballot_not_on_phone",
    sentence = "该户已有选票，但那张票不在这台手机上，无法在这里更正。请联系社区办公室。",
    next = NextStep.ASK_OFFICE,
)

/** The voter key a unit counts under (the core's, as the roll and the tally use it). */
internal fun voterKeyOf(u: RegisterUnit): String = u.voterKey

internal fun clockZh(at: Long): String =
    SimpleDateFormat("MM-dd HH:mm").apply { timeZone = TimeZone.getTimeZone("Asia/Shanghai") }.format(Date(at))

/** The owner's ballots (or survey answers) in [campaign], and the door itself, read together. */
internal data class OwnerBallots(
    val room: String,
    val owner: String,
    val ownerHasBallot: Boolean,
    val deliveries: Int,
    val lines: List<BallotLine>,
)

/**
 * Reads the door and the ballots of its owner. A ballot belongs to the owner, not to the door:
 * an owner with several doors may have given it at another one, so those doors' timelines are
 * read too (in the assigned buildings this phone holds). Runs on the core dispatcher.
 */
internal fun readOwnerBallots(replica: DoorstepReplica, building: String, campaign: String, unit: String): OwnerBallots {
    val views = replica.units(building, campaign)
    val me = views.firstOrNull { it.unit.code == unit }
        ?: throw ApiException.InvalidInput("not_on_phone", "unit is not in this building")
    val key = voterKeyOf(me.unit)
    val here = replica.unitTimeline(campaign, unit)
    val sameBuilding = views.filter { it.unit.code != unit && voterKeyOf(it.unit) == key }.map { it.unit }
    data class Found(val room: String, val e: uniffi.doorstep_ffi.TimelineEntry)
    fun ballotsAt(doors: List<RegisterUnit>): List<Found> = doors.flatMap { d ->
        replica.unitTimeline(campaign, d.code).filter { it.kind == TimelineKind.BALLOT }.map { Found("${d.room}室", it) }
    }
    var found = here.filter { it.kind == TimelineKind.BALLOT }.map { Found("本户", it) } + ballotsAt(sameBuilding)
    if (me.ballotRecorded && found.isEmpty()) {
        // The owner's ballot was collected at their door in another assigned building.
        found = ballotsAt(
            replica.buildings().filter { it.id != building }
                .flatMap { b -> replica.units(b.id, campaign) }
                .filter { voterKeyOf(it.unit) == key }
                .map { it.unit },
        )
    }
    val replaced = found.mapNotNull { it.e.supersedes }.toSet()
    val lines = found.sortedWith(compareBy({ it.e.at }, { it.e.id })).map { (where, e) ->
        BallotLine(
            id = e.id,
            time = clockZh(e.at),
            where = where + when (e.method) {
                CollectionMethod.PROXY -> " · 委托代签"
                CollectionMethod.STATION -> " · 现场投票"
                CollectionMethod.RETURNED -> " · 书面投回"
                else -> ""
            },
            correction = e.supersedes != null,
            effective = e.id !in replaced,
            synced = e.synced,
        )
    }
    return OwnerBallots(
        room = me.unit.room,
        owner = maskName(me.unit.ownerNames.joinToString("、")),
        ownerHasBallot = me.ballotRecorded || lines.isNotEmpty(),
        deliveries = here.count { it.kind == TimelineKind.DELIVERY },
        lines = lines,
    )
}

internal fun accepting(c: CampaignSummary): Boolean =
    c.status == CampaignStatus.PUBLISHED || c.status == CampaignStatus.OPEN

internal fun campaignOf(replica: DoorstepReplica, campaign: String): CampaignSummary =
    replica.campaigns().firstOrNull { it.id == campaign }
        ?: throw ApiException.InvalidInput("unknown_campaign", "campaign is not on this phone")

class BallotViewModel(
    private val replica: DoorstepReplica,
    private val building: String,
    private val campaign: String,
    private val unit: String,
    private val core: CoroutineDispatcher,
) {
    private val mutable = MutableStateFlow(BallotState(campaign, unit))
    val state: StateFlow<BallotState> = mutable.asStateFlow()

    suspend fun load() {
        try {
            val s = state.value
            mutable.value = withContext(core) { read(s) }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    /** Tap on a choice: tapping the chosen one again clears it (left blank). */
    fun choose(question: String, candidate: String?, choice: Choice) {
        val s = state.value
        mutable.value = s.copy(
            rows = s.rows.map {
                if (it.question == question && it.candidate == candidate) it.copy(choice = if (it.choice == choice) null else choice) else it
            },
            error = null,
            notice = null,
        )
    }

    /**
     * 发票: the ballot paper was handed to the owner. Kept as the delivery (the legal fact the
     * silence rules look at) and as the door's visit outcome 已发票 (what the door list shows).
     */
    suspend fun deliver(): Refusal? {
        val refusal = act {
            replica.recordDelivery(campaign, unit)
            replica.recordVisit(campaign, unit, DoorOutcome.DELIVERED, "")
        }
        load()
        finish(refusal, "已发票，待同步")
        return refusal
    }

    /**
     * 收票: records the owner's ballot, unless the owner already has one: then nothing is
     * recorded, the warning is shown and 更正 is offered ([startCorrection], [correct]).
     */
    suspend fun collect(): BallotResult {
        load()
        val s = state.value
        s.error?.let { return BallotResult.Refused(it) }
        if (s.mode == BallotMode.CORRECT) return correct()
        if (s.effectiveCount > 1) return refuse(ballotConflictRefusal(s.effectiveCount))
        if (s.ownerHasBallot) {
            mutable.value = s.copy(warning = BALLOT_EXISTS_WARNING, notice = null)
            return BallotResult.AlreadyHasBallot(BALLOT_EXISTS_WARNING)
        }
        return record(null, "已收回选票，待同步")
    }

    /** Tap on 入户收取 / 委托代签 / 现场投票 / 书面投回: how the paper being recorded came back. */
    fun collectedBy(method: CollectionMethod) {
        mutable.value = state.value.copy(method = method, error = null, notice = null)
    }

    /** The head chose 更正 after the warning: the next recording replaces the earlier ballot. */
    fun startCorrection() {
        mutable.value = state.value.copy(mode = BallotMode.CORRECT, warning = null, error = null, notice = null)
    }

    /** Back to collecting (the correction was opened by mistake). */
    fun cancelCorrection() {
        mutable.value = state.value.copy(mode = BallotMode.COLLECT, warning = null, error = null)
    }

    /** 更正: records the ballot with `supersedes` = the owner's ballot that counts now. */
    suspend fun correct(): BallotResult {
        load()
        val s = state.value
        s.error?.let { return BallotResult.Refused(it) }
        if (s.effectiveCount > 1) return refuse(ballotConflictRefusal(s.effectiveCount))
        if (s.ownerHasBallot && s.correctable == null) return refuse(BALLOT_NOT_HERE)
        val earlier = s.correctable
            // Nothing to correct: this is the owner's first ballot.
            ?: return record(null, "已收回选票，待同步")
        return record(earlier, "已更正选票（旧票不再计），待同步")
    }

    private suspend fun record(supersedes: String?, done: String): BallotResult {
        val answers = answers(state.value.rows)
        var id: String? = null
        val method = state.value.method
        val refusal = act { id = replica.recordBallot(campaign, unit, answers, supersedes, method) }
        if (refusal != null) {
            load()
            return refuse(refusal)
        }
        // The visit that goes with it: the door counts as visited, its outcome 已收票.
        val visit = act { replica.recordVisit(campaign, unit, DoorOutcome.COLLECTED, "") }
        load()
        if (visit != null) {
            mutable.value = state.value.copy(error = visit)
            return BallotResult.Recorded(id!!)
        }
        // A recorded ballot: the paper is cleared for the next door, the mode back to collecting.
        val s = state.value
        mutable.value = s.copy(
            mode = BallotMode.COLLECT,
            method = CollectionMethod.DOOR,
            warning = null,
            notice = done,
            rows = s.rows.map { it.copy(choice = null) },
        )
        return BallotResult.Recorded(id!!)
    }

    private fun refuse(refusal: Refusal): BallotResult {
        mutable.value = state.value.copy(error = refusal, notice = null)
        return BallotResult.Refused(refusal)
    }

    private fun finish(refusal: Refusal?, done: String) {
        mutable.value = if (refusal != null) state.value.copy(error = refusal, notice = null) else state.value.copy(notice = done)
    }

    private suspend fun act(block: () -> Unit): Refusal? = attempt(core, block)

    private fun read(previous: BallotState): BallotState {
        val c = campaignOf(replica, campaign)
        val owner = readOwnerBallots(replica, building, campaign, unit)
        val questions = c.questions.sortedBy { it.order }
        val chosen = previous.rows.associate { (it.question to it.candidate) to it.choice }
        val rows = questions.flatMap { q ->
            when (val k = q.kind) {
                is QuestionKind.Resolution -> listOf(ChoiceRow(q.id, null, q.text, chosen[q.id to null]))
                is QuestionKind.Election -> k.candidates.sortedBy { it.order }.map {
                    ChoiceRow(q.id, it.id, it.name, chosen[q.id to it.id])
                }
                // A survey question is answered on 意见征询, not on a ballot paper.
                is QuestionKind.Survey -> emptyList()
            }
        }
        val hint = questions.mapNotNull { q ->
            when (val k = q.kind) {
                is QuestionKind.Election -> "本次选出 ${k.seats} 名：最多同意 ${k.seats} 人"
                is QuestionKind.Resolution -> "每项选 同意 / 反对 / 弃权；空着不选按弃权计"
                is QuestionKind.Survey -> null
            }
        }.distinct().joinToString("；")
        return previous.copy(
            campaignTitle = c.title,
            campaignLine = kindZh(c.kind) + " · " + statusZh(c.status),
            accepting = accepting(c),
            room = owner.room,
            owner = owner.owner,
            rows = rows,
            hint = hint,
            seats = questions.mapNotNull { q -> (q.kind as? QuestionKind.Election)?.let { q.id to it.seats.toInt() } }.toMap(),
            deliveries = owner.deliveries,
            ballots = owner.lines,
            ownerHasBallot = owner.ownerHasBallot,
            loading = false,
            error = null,
        )
    }
}

/** The paper as the core takes it: a resolution left blank is left out (it counts as abstain);
 *  an election lists only the candidates the owner marked. */
internal fun answers(rows: List<ChoiceRow>): Map<String, Answer> =
    rows.groupBy { it.question }.mapNotNull { (question, rs) ->
        val election = rs.any { it.candidate != null }
        if (election) {
            question to Answer(choice = null, candidates = rs.filter { it.choice != null }.associate { it.candidate!! to it.choice!! }, options = listOf())
        } else {
            rs.single().choice?.let { question to Answer(choice = it, candidates = mapOf(), options = listOf()) }
        }
    }.toMap()
