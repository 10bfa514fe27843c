// 意见征询 / 听证: one door's answers to a survey, one question per screen. The options the owner
// picks are sent as they are: the rules (the same on the phone and on the server) refuse too
// many choices, and the screen shows their Chinese sentence. An owner's answer is kept like a
// ballot, so a second answer is stopped with a warning and 更正 is offered. Part of app-core.

package doorstep.app

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorOutcome
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.QuestionKind

/** One option of a question, and whether the owner picked it. */
data class OptionRow(val id: String, val label: String, val selected: Boolean)

/** One survey question as its screen shows it. */
data class SurveyQuestionView(
    val id: String,
    val text: String,
    val options: List<OptionRow>,
    val maxChoices: Int,
) {
    val chosen: Int get() = options.count { it.selected }

    /** In words, so "too many" never depends on a colour: "已选 3 项 · 最多选 2 项（多选了 1 项）". */
    val countLine: String get() =
        "已选 $chosen 项 · 最多选 $maxChoices 项" + if (chosen > maxChoices) "（多选了 ${chosen - maxChoices} 项）" else ""
}

/** The sentence shown before a second answer for one owner. */
const val ANSWER_EXISTS_WARNING =
    "该户已答过这次征询。业主要改答，请点「更正答卷」，新答卷替换旧答卷。"

data class SurveyState(
    val campaign: String,
    val unit: String,
    val campaignTitle: String = "",
    val campaignLine: String = "",
    val accepting: Boolean = false,
    val room: String = "",
    val owner: String = "",
    val questions: List<SurveyQuestionView> = emptyList(),
    /** The question on screen (one per screen). */
    val index: Int = 0,
    /** This owner's answers in this campaign (kept like ballots), oldest first. */
    val answers: List<BallotLine> = emptyList(),
    val ownerHasAnswer: Boolean = false,
    val mode: BallotMode = BallotMode.COLLECT,
    val warning: String? = null,
    val notice: String? = null,
    val loading: Boolean = true,
    val error: Refusal? = null,
) {
    val current: SurveyQuestionView? get() = questions.getOrNull(index)

    /** "第 1/3 题". */
    val progress: String get() = if (questions.isEmpty()) "" else "第 ${index + 1}/${questions.size} 题"

    val isLast: Boolean get() = index >= questions.size - 1

    val effectiveCount: Int get() = answers.count { it.effective }

    val correctable: String? get() = answers.singleOrNull { it.effective }?.id
}

class SurveyViewModel(
    private val replica: DoorstepReplica,
    private val building: String,
    private val campaign: String,
    private val unit: String,
    private val core: CoroutineDispatcher,
) {
    private val mutable = MutableStateFlow(SurveyState(campaign, unit))
    val state: StateFlow<SurveyState> = mutable.asStateFlow()

    suspend fun load() {
        try {
            val s = state.value
            mutable.value = withContext(core) { read(s) }
        } catch (e: ApiException) {
            mutable.value = state.value.copy(loading = false, error = Refusals.of(e))
        }
    }

    /** Tap on an option of the question on screen: picks it, or un-picks it. */
    fun toggle(option: String) {
        val s = state.value
        val q = s.current ?: return
        val changed = q.copy(options = q.options.map { if (it.id == option) it.copy(selected = !it.selected) else it })
        mutable.value = s.copy(questions = s.questions.map { if (it.id == q.id) changed else it }, error = null, notice = null)
    }

    fun next() {
        val s = state.value
        if (!s.isLast) mutable.value = s.copy(index = s.index + 1, error = null)
    }

    fun previous() {
        val s = state.value
        if (s.index > 0) mutable.value = s.copy(index = s.index - 1, error = null)
    }

    /**
     * 提交: records the owner's answers as picked (the rules decide what is too many), unless
     * the owner already answered: then nothing is recorded and 更正 is offered.
     */
    suspend fun submit(): BallotResult {
        load()
        val s = state.value
        s.error?.let { return BallotResult.Refused(it) }
        if (s.mode == BallotMode.CORRECT) return correct()
        if (s.effectiveCount > 1) return refuse(ballotConflictRefusal(s.effectiveCount))
        if (s.ownerHasAnswer) {
            mutable.value = s.copy(warning = ANSWER_EXISTS_WARNING, notice = null)
            return BallotResult.AlreadyHasBallot(ANSWER_EXISTS_WARNING)
        }
        return record(null, "已记录答卷，待同步")
    }

    fun startCorrection() {
        mutable.value = state.value.copy(mode = BallotMode.CORRECT, warning = null, error = null, notice = null)
    }

    fun cancelCorrection() {
        mutable.value = state.value.copy(mode = BallotMode.COLLECT, warning = null, error = null)
    }

    /** 更正答卷: the new answers replace the owner's answer that counts now. */
    suspend fun correct(): BallotResult {
        load()
        val s = state.value
        s.error?.let { return BallotResult.Refused(it) }
        if (s.effectiveCount > 1) return refuse(ballotConflictRefusal(s.effectiveCount))
        if (s.ownerHasAnswer && s.correctable == null) return refuse(BALLOT_NOT_HERE)
        val earlier = s.correctable ?: return record(null, "已记录答卷，待同步")
        return record(earlier, "已更正答卷，待同步")
    }

    private suspend fun record(supersedes: String?, done: String): BallotResult {
        val picked = state.value.questions.associate { q -> q.id to q.options.filter { it.selected }.map { it.id } }
        val result = try {
            withContext(core) { replica.recordSurveyAnswer(campaign, unit, picked, supersedes) }
        } catch (e: ApiException) {
            load()
            return refuse(Refusals.of(e))
        }
        // The visit that goes with it: the door counts as visited, its outcome 已收回.
        val visit = attempt(core) { replica.recordVisit(campaign, unit, DoorOutcome.COLLECTED, "") }
        load()
        if (visit != null) {
            mutable.value = state.value.copy(error = visit)
            return BallotResult.Recorded(result)
        }
        val s = state.value
        mutable.value = s.copy(
            mode = BallotMode.COLLECT,
            warning = null,
            notice = done,
            index = 0,
            questions = s.questions.map { q -> q.copy(options = q.options.map { it.copy(selected = false) }) },
        )
        return BallotResult.Recorded(result)
    }

    private fun refuse(refusal: Refusal): BallotResult {
        mutable.value = state.value.copy(error = refusal, notice = null)
        return BallotResult.Refused(refusal)
    }

    private fun read(previous: SurveyState): SurveyState {
        val c = campaignOf(replica, campaign)
        val owner = readOwnerBallots(replica, building, campaign, unit)
        val picked = previous.questions.associate { q -> q.id to q.options.filter { it.selected }.map { it.id }.toSet() }
        val questions = c.questions.sortedBy { it.order }.mapNotNull { q ->
            val k = q.kind as? QuestionKind.Survey ?: return@mapNotNull null
            SurveyQuestionView(
                id = q.id,
                text = q.text,
                options = k.options.sortedBy { it.order }.map { OptionRow(it.id, it.label, it.id in (picked[q.id] ?: emptySet())) },
                maxChoices = k.maxChoices.toInt(),
            )
        }
        return previous.copy(
            campaignTitle = c.title,
            campaignLine = kindZh(c.kind) + " · " + statusZh(c.status),
            accepting = accepting(c),
            room = owner.room,
            owner = owner.owner,
            questions = questions,
            index = previous.index.coerceIn(0, maxOf(0, questions.size - 1)),
            answers = owner.lines,
            ownerHasAnswer = owner.ownerHasBallot,
            loading = false,
            error = null,
        )
    }
}
