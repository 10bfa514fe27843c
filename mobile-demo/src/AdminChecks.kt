// What the JVM test asks the server's admin API (docs/api.md) before and after a phone syncs
// its offline work: per-building progress, the tally, and the visits export.

package doorstep.demo

/** The numbers of one campaign that field work moves, as the admin API reports them. */
data class FieldNumbers(
    val visits: Int,
    val deliveries: Int,
    /** Effective ballots collected in the building, by headcount. */
    val ballots: Int,
    /** Ballots returned in the whole campaign, by headcount (the tally's `returned`). */
    val returned: Int,
    /** Candidate id → yes votes by headcount (election questions). */
    val yes: Map<String, Int>,
    /** Ballot ids the tally lists as superseded by a correction. */
    val superseded: List<String>,
)

/** Admin API reads against a running [DemoServer], logged in as the demo admin. */
class AdminChecks(private val server: DemoServer) {
    private val token = server.adminToken()

    fun numbers(campaign: String, building: String): FieldNumbers {
        val progress = obj(server.get("/api/v1/admin/campaigns/$campaign/progress", token))
        val row = list(progress["buildings"]).map(::obj).single { it["building"] == building }
        val tally = obj(server.get("/api/v1/admin/campaigns/$campaign/tally", token))
        val question = obj(list(tally["questions"]).single())
        val candidates = list(obj(question["outcome"])["candidates"]).map(::obj)
        return FieldNumbers(
            visits = int(row["visits"]),
            deliveries = int(row["deliveries"]),
            ballots = int(obj(row["ballots_collected"])["headcount"]),
            returned = int(obj(tally["returned"])["headcount"]),
            yes = candidates.associate { c ->
                (c["candidate"] as String) to int(obj(obj(c["counts"])["yes"])["headcount"])
            },
            superseded = list(tally["superseded"]).map { it.toString() },
        )
    }

    /** The visits export (CSV text, one visit per line). */
    fun exportedVisits(campaign: String): String =
        server.getText("/api/v1/admin/campaigns/$campaign/exports/visits.csv", token)

    private fun obj(v: Any?): Map<*, *> = v as? Map<*, *> ?: error("expected a JSON object, got $v")
    private fun list(v: Any?): List<*> = v as? List<*> ?: error("expected a JSON array, got $v")
    private fun int(v: Any?): Int = (v as? Double)?.toInt() ?: error("expected a number, got $v")
}
