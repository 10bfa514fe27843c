// Runs a real `doorstep-server demo` for the JVM tests: a free loopback port, a throwaway
// database, the enrollment codes read from its output, and admin API calls over HTTP.

package doorstep.demo

import java.io.File
import java.net.ServerSocket
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread

/** One running `doorstep-server demo` process; [stop] it, then [start] again on the same db. */
class DemoServer(
    private val binary: String,
    val db: File,
    val adminPassword: String,
    val port: Int = freePort(),
) {
    val url = "http://127.0.0.1:$port"
    /** Building id → the latest enrollment code the server printed for its head. */
    val codes = ConcurrentHashMap<String, String>()
    /** Building id → the login of its head. */
    val logins = ConcurrentHashMap<String, String>()
    private val output = java.util.Collections.synchronizedList(mutableListOf<String>())
    private var process: Process? = null
    private val http: HttpClient = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()

    companion object {
        /** The demo officer's line of the demo's output. */
        private val OFFICER_LINE = Regex("""counting officer: login "officer", password \(shown once\): (\S+)""")
        /** The `    building   1  head-1     CODE` lines of the demo's output. */
        private val CODE_LINE = Regex("""^\s*building\s+(\S+)\s+(\S+)\s+(\S+)\s*$""")

        fun freePort(): Int = ServerSocket(0).use { it.localPort }
    }

    fun start() {
        codes.clear()
        val builder = ProcessBuilder(binary, "demo", "--listen", "127.0.0.1:$port", "--db", db.path)
        builder.environment()["DOORSTEP_ADMIN_PASSWORD"] = adminPassword
        builder.environment()["RUST_LOG"] = "warn"
        builder.redirectErrorStream(true)
        val started = builder.start()
        process = started
        // Drain the output on a thread of its own so the server never blocks on a full pipe.
        thread(isDaemon = true, name = "doorstep-server output") {
            started.inputStream.bufferedReader().forEachLine { line ->
                output.add(line)
                CODE_LINE.matchEntire(line)?.let {
                    codes[it.groupValues[1]] = it.groupValues[3]
                    logins[it.groupValues[1]] = it.groupValues[2]
                }
                OFFICER_LINE.find(line)?.let { officerPassword = it.groupValues[1] }
            }
        }
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60)
        while (true) {
            check(started.isAlive) { "doorstep-server exited early:\n" + output.joinToString("\n") }
            if (healthy()) break
            check(System.nanoTime() < deadline) { "doorstep-server did not come up:\n" + output.joinToString("\n") }
            Thread.sleep(100)
        }
        // Codes are printed before the server starts listening, so they are all in by now.
        check(codes.isNotEmpty()) { "no enrollment codes in the output:\n" + output.joinToString("\n") }
    }

    fun stop() {
        val running = process ?: return
        running.destroy()
        if (!running.waitFor(20, TimeUnit.SECONDS)) running.destroyForcibly().waitFor()
        process = null
    }

    private fun healthy(): Boolean = try {
        val request = HttpRequest.newBuilder(URI.create("$url/healthz")).timeout(Duration.ofSeconds(2)).build()
        http.send(request, HttpResponse.BodyHandlers.discarding()).statusCode() == 200
    } catch (e: java.io.IOException) {
        false
    }

    /** The demo officer's generated password (printed once, on the first start of a database). */
    @Volatile var officerPassword: String? = null
        private set

    /** Log in as the demo admin; the session token for [get]. */
    fun adminToken(): String = login("admin", adminPassword)

    /** Log in as the demo's counting officer (the first start of this database printed it). */
    fun officerToken(): String = login("officer", officerPassword ?: error("the demo printed no officer password"))

    private fun login(login: String, password: String): String {
        val body = """{"login":"$login","password":"$password"}"""
        val reply = send("POST", "/api/v1/auth/login", body, null)
        @Suppress("UNCHECKED_CAST")
        return (Json.parse(reply) as Map<String, Any?>)["token"] as String
    }

    /** POST a JSON body to an admin API path; the reply as JSON. */
    fun post(path: String, body: String?, token: String): Any? = Json.parse(send("POST", path, body ?: "{}", token))

    /** GET an admin API path as JSON. */
    fun get(path: String, token: String): Any? = Json.parse(send("GET", path, null, token))

    /** GET an admin API path as text (the CSV exports). */
    fun getText(path: String, token: String): String = send("GET", path, null, token)

    private fun send(method: String, path: String, body: String?, token: String?): String {
        val builder = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(30))
        if (token != null) builder.header("Authorization", "Bearer $token")
        if (body != null) {
            builder.header("Content-Type", "application/json")
            builder.method(method, HttpRequest.BodyPublishers.ofString(body))
        } else {
            builder.method(method, HttpRequest.BodyPublishers.noBody())
        }
        val response = http.send(builder.build(), HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() in 200..299) { "$method $path answered ${response.statusCode()}: ${response.body()}" }
        return response.body()
    }
}
