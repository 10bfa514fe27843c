// 扫码加入: the building head joins the community with the one-time code an admin issued, read
// from the QR image (`doorstep://enroll?server=…&code=…`) or typed by hand with the server's
// address. A plain view model; part of app-core. Decoding the image is the platform's job (a
// camera scanner on Android; ZXing on an image file in the desktop demo).

package doorstep.app

import java.net.URI
import java.net.URLDecoder
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.SyncTransport

/** Where to enroll and with which code. */
data class EnrollTarget(val server: String, val code: String)

/** Reads what an enrollment QR code carries; null for anything else (a WeChat link, a URL). */
fun parseEnrollUri(text: String): EnrollTarget? {
    val uri = try {
        URI(text.trim())
    } catch (e: java.net.URISyntaxException) {
        return null
    }
    if (uri.scheme != "doorstep" || uri.host != "enroll") return null
    val query = (uri.rawQuery ?: return null).split('&').mapNotNull { pair ->
        val i = pair.indexOf('=')
        if (i <= 0) null else URLDecoder.decode(pair.substring(0, i), "UTF-8") to URLDecoder.decode(pair.substring(i + 1), "UTF-8")
    }.toMap()
    val server = query["server"]?.takeIf { it.startsWith("http://") || it.startsWith("https://") } ?: return null
    val code = query["code"]?.takeIf { it.isNotBlank() } ?: return null
    return EnrollTarget(server, code)
}

/** Who this phone works for once joined (the confirmation the head reads). */
data class Joined(val community: String, val account: String, val buildings: List<String>) {
    val line: String get() = "已加入 $community · 负责 ${buildings.joinToString("、") { it + "号楼" }}"
}

data class JoinState(
    val server: String = "",
    val code: String = "",
    val working: Boolean = false,
    val joined: Joined? = null,
    /** The account has no building yet: joined, but the office must assign one. */
    val waitingForBuilding: Boolean = false,
    val error: Refusal? = null,
)

sealed interface JoinEvent {
    data class Server(val text: String) : JoinEvent
    data class Code(val text: String) : JoinEvent
    /** What the scanner (or the opened image) read. */
    data class Scanned(val text: String) : JoinEvent
}

/**
 * Enrolls over the app's own HTTP stack ([transportFor] builds it for the server's address) on
 * [io]: the code is one-time, so a network failure says so and the same code can be tried again.
 */
class JoinViewModel(
    private val replica: DoorstepReplica,
    private val transportFor: (String) -> SyncTransport,
    private val core: CoroutineDispatcher,
    private val io: CoroutineDispatcher,
    private val deviceLabel: String,
) {
    private val mutable = MutableStateFlow(JoinState())
    val state: StateFlow<JoinState> = mutable.asStateFlow()

    fun onEvent(e: JoinEvent) {
        val s = state.value
        mutable.value = when (e) {
            is JoinEvent.Server -> s.copy(server = e.text.trim(), error = null)
            is JoinEvent.Code -> s.copy(code = e.text.trim().uppercase(), error = null)
            is JoinEvent.Scanned -> parseEnrollUri(e.text)
                ?.let { s.copy(server = it.server, code = it.code, error = null) }
                ?: s.copy(error = Refusals.of("not_an_enrollment_code"))
        }
    }

    /** Joins with the server and code in the state; returns the refusal, if any. */
    suspend fun join(): Refusal? {
        val s = state.value
        if (s.server.isBlank() || s.code.isBlank()) {
            return Refusals.of("not_an_enrollment_code").also { mutable.value = s.copy(error = it) }
        }
        mutable.value = s.copy(working = true, error = null)
        return try {
            val identity = withContext(io) {
                replica.enrollVia(transportFor(s.server), s.server, s.code, deviceLabel)
            }
            val who = withContext(core) { replica.identity() }
            mutable.value = state.value.copy(
                working = false,
                joined = who?.let { Joined(it.community, it.account, it.buildings) },
                waitingForBuilding = identity == null,
            )
            null
        } catch (e: ApiException) {
            Refusals.of(e).also { mutable.value = state.value.copy(working = false, error = it) }
        }
    }
}
