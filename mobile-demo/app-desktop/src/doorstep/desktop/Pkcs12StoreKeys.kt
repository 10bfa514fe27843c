// The desktop demo's key store: a PKCS12 Java KeyStore file holding the store key as an AES-256
// secret entry, readable only by the user who runs the app (rw-------). It stands in for the
// Android Keystore / iOS Keychain, which a real app uses instead (see app-core's Keys.kt).

package doorstep.desktop

import doorstep.app.StoreKeys
import java.io.File
import java.nio.file.Files
import java.nio.file.attribute.PosixFilePermissions
import java.security.KeyStore
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey

class Pkcs12StoreKeys(private val file: File, private val password: CharArray) : StoreKeys {
    private val alias = "doorstep-store"

    @Synchronized
    override fun storeKey(): ByteArray {
        val store = KeyStore.getInstance("PKCS12")
        val protection = KeyStore.PasswordProtection(password)
        if (file.exists()) {
            file.inputStream().use { store.load(it, password) }
            val entry = store.getEntry(alias, protection) as? KeyStore.SecretKeyEntry
                ?: error("invariant: ${file.name} holds no store key under $alias")
            return entry.secretKey.encoded
        }
        store.load(null, password)
        val key: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        store.setEntry(alias, KeyStore.SecretKeyEntry(key), protection)
        file.parentFile?.mkdirs()
        val staging = File(file.path + ".new")
        staging.outputStream().use { store.store(it, password) }
        // Where the file system has no POSIX permissions (Windows), the user's profile folder
        // is what protects the file.
        runCatching {
            Files.setPosixFilePermissions(staging.toPath(), PosixFilePermissions.fromString("rw-------"))
        }
        check(staging.renameTo(file)) { "could not save the key store ${file.name}" }
        return key.encoded
    }
}
