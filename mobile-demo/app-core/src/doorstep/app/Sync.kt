// The sync engine a building head's app runs: when to sync, what the sync strip says, and how
// long to wait after a failure. Plain Kotlin + coroutines (no UI toolkit, no JDK-only API), so
// it carries over to Android unchanged; the platform brings the network monitor (Android's
// ConnectivityManager; here the 飞行模式 switch) and the periodic tick (WorkManager; here a
// coroutine timer).

package doorstep.app

import java.io.IOException
import java.net.HttpURLConnection
import java.net.URL
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.drop
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorstepReplica
import uniffi.doorstep_ffi.Rejection
import uniffi.doorstep_ffi.SyncTransport
import uniffi.doorstep_ffi.TransportException

/** The time, injected: tests move it by hand, so nothing sleeps or bets on timing. */
fun interface Clock {
    fun now(): Long
}

object SystemClock : Clock {
    override fun now(): Long = System.currentTimeMillis()
}

/** Whether the phone has a network. */
interface NetworkMonitor {
    val online: StateFlow<Boolean>
}

/** A network switched by hand: the desktop demo's 飞行模式, and the tests'. */
class ManualNetwork(online: Boolean = true) : NetworkMonitor {
    private val state = MutableStateFlow(online)
    override val online: StateFlow<Boolean> = state.asStateFlow()

    fun set(online: Boolean) {
        state.value = online
    }
}

/** What the permanent sync strip on 首页 shows. */
sealed interface SyncStatus {
    /** Nothing tried yet since the app started. */
    data class Idle(val pending: Long) : SyncStatus

    data class Syncing(val pending: Long) : SyncStatus

    /** No network: the work waits on the phone ("离线 · 5 条待同步 · 上次同步 09:42"). */
    data class Offline(val pending: Long, val lastSyncAt: Long?) : SyncStatus

    /** The last try failed; the next automatic one is not before [retryAt]. */
    data class Failed(val refusal: Refusal, val retryAt: Long, val pending: Long, val lastSyncAt: Long?) : SyncStatus

    /** Synced; [rejected] lists the documents the server refused (同步 screen). */
    data class Done(val lastSyncAt: Long, val pending: Long, val rejected: List<Rejection>) : SyncStatus
}

/** How long to wait after the n-th failure in a row: doubling from [baseMs] up to [maxMs]. */
class Backoff(private val baseMs: Long = 5_000, private val maxMs: Long = 5 * 60_000) {
    fun after(failures: Int): Long = minOf(maxMs, baseMs shl (failures - 1).coerceIn(0, 16))
}

/**
 * Syncs [replica] on demand ("立即同步"), when the network comes back, and on the platform's
 * periodic [tick] once a failure's back-off has passed. The sync runs on [io], never on the
 * caller's thread; the core does not lock the phone's store across the network, so the app's
 * reads and actions (on their own dispatcher) answer while a sync waits on a slow server.
 */
class SyncEngine(
    private val replica: DoorstepReplica,
    private val transport: SyncTransport,
    private val network: NetworkMonitor,
    private val clock: Clock,
    scope: CoroutineScope,
    private val io: CoroutineDispatcher = Dispatchers.IO,
    private val backoff: Backoff = Backoff(),
) {
    private val state = MutableStateFlow<SyncStatus>(SyncStatus.Idle(0))
    val status: StateFlow<SyncStatus> = state.asStateFlow()

    private val running = Mutex()
    private var failures = 0
    private var lastSyncAt: Long? = null

    init {
        // Back online: deliver what waited.
        scope.launch { network.online.drop(1).filter { it }.collect { syncNow() } }
    }

    /** Sync now (the button, or a trigger); returns the status it ends in. */
    suspend fun syncNow(): SyncStatus = running.withLock {
        val pending = pending()
        if (!network.online.value) {
            return@withLock publish(SyncStatus.Offline(pending, lastSyncAt))
        }
        publish(SyncStatus.Syncing(pending))
        try {
            val report = withContext(io) { replica.syncVia(transport) }
            failures = 0
            val at = clock.now()
            lastSyncAt = at
            publish(SyncStatus.Done(at, pending(), report.rejected))
        } catch (e: ApiException) {
            failures += 1
            val refusal = Refusals.of(e)
            val wait = if (refusal.next == NextStep.RETRY_LATER) backoff.after(failures) else backoff.after(16)
            publish(SyncStatus.Failed(refusal, clock.now() + wait, pending(), lastSyncAt))
        }
    }

    /** The periodic trigger: syncs unless a failure's back-off has not passed yet. */
    suspend fun tick(): SyncStatus {
        val now = status.value
        if (now is SyncStatus.Failed && clock.now() < now.retryAt) return now
        return syncNow()
    }

    private suspend fun pending(): Long = withContext(io) { replica.pendingCount().toLong() }

    private fun publish(s: SyncStatus): SyncStatus {
        state.value = s
        return s
    }
}

/**
 * The app's HTTP stack over `HttpURLConnection`, which Android and the JVM both have. While
 * [network] is offline it fails at once, as a phone in airplane mode does.
 */
class UrlConnectionTransport(
    private val baseUrl: String,
    private val network: NetworkMonitor? = null,
    private val timeoutMs: Int = 30_000,
) : SyncTransport {
    /** Requests that reached the network (tests check that an offline phone sent none). */
    @Volatile var requests = 0
        private set

    override fun postSync(body: ByteArray, token: String): ByteArray =
        post("/api/v1/sync", "application/cbor", body, token)

    override fun postEnroll(body: ByteArray): ByteArray =
        post("/api/v1/enroll", "application/json", body, null)

    private fun post(path: String, contentType: String, body: ByteArray, token: String?): ByteArray {
        if (network?.online?.value == false) throw TransportException.Network("no network (airplane mode)")
        requests += 1
        val connection = try {
            URL(baseUrl.trimEnd('/') + path).openConnection() as HttpURLConnection
        } catch (e: IOException) {
            throw TransportException.Network(e.toString())
        }
        try {
            connection.requestMethod = "POST"
            connection.doOutput = true
            connection.connectTimeout = timeoutMs
            connection.readTimeout = timeoutMs
            connection.setRequestProperty("Content-Type", contentType)
            if (token != null) connection.setRequestProperty("Authorization", "Bearer $token")
            connection.outputStream.use { it.write(body) }
            val status = connection.responseCode
            val stream = if (status in 200..299) connection.inputStream else connection.errorStream
            val reply = stream?.use { it.readBytes() } ?: ByteArray(0)
            if (status !in 200..299) throw TransportException.Http(status.toUShort(), reply)
            return reply
        } catch (e: IOException) {
            throw TransportException.Network(e.toString())
        } finally {
            connection.disconnect()
        }
    }
}
