// What the JVM test asks the server's admin API after the phone synced its offline work.

package doorstep.demo

/** Admin API checks against a running [DemoServer]. */
class AdminChecks(private val server: DemoServer) {
    private val token = server.adminToken()

    /** The server holds the visits to `units` and `ballots` effective ballots for `campaign`. */
    fun expectFieldWork(campaign: String, units: List<String>, ballots: Int) {
        val me = server.get("/api/v1/auth/me", token)
        check(me is Map<*, *>) { "me: $me" }
    }
}
