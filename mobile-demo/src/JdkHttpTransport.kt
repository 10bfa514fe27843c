// The app's own HTTP stack plugged into doorstep: a SyncTransport over java.net.http, standing in
// for OkHttp on Android (or URLSession on iOS) to show how an app brings its own client.

package doorstep.demo

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import uniffi.doorstep_ffi.SyncTransport
import uniffi.doorstep_ffi.TransportException

/** Posts doorstep's request bodies to [baseUrl]; every failure becomes a [TransportException]. */
class JdkHttpTransport(private val baseUrl: String) : SyncTransport {
    private val client: HttpClient =
        HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(15)).build()

    /** How many requests went through this transport (the tests check it was really used). */
    @Volatile var requests = 0
        private set

    override fun postSync(body: ByteArray, token: String): ByteArray =
        post("/api/v1/sync", "application/cbor", body, token)

    override fun postEnroll(body: ByteArray): ByteArray =
        post("/api/v1/enroll", "application/json", body, null)

    private fun post(path: String, contentType: String, body: ByteArray, token: String?): ByteArray {
        requests += 1
        val builder = HttpRequest.newBuilder(URI.create(baseUrl.trimEnd('/') + path))
            .timeout(Duration.ofSeconds(120))
            .header("Content-Type", contentType)
            .POST(HttpRequest.BodyPublishers.ofByteArray(body))
        if (token != null) builder.header("Authorization", "Bearer $token")
        val response = try {
            client.send(builder.build(), HttpResponse.BodyHandlers.ofByteArray())
        } catch (e: java.io.IOException) {
            throw TransportException.Network(e.toString())
        }
        if (response.statusCode() !in 200..299) {
            throw TransportException.Http(response.statusCode().toUShort(), response.body())
        }
        return response.body()
    }
}
