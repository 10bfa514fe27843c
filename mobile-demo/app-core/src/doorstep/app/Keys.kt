// The key that encrypts the phone's store. The core never chooses or keeps it: the app holds 32
// random bytes in the platform's key store and hands them over on every open. Plain Kotlin: part
// of app-core.
//
// Android: generate the 32 bytes once with SecureRandom, wrap them with an AES-GCM key that lives
// in the AndroidKeyStore (non-exportable, optionally bound to the screen lock), keep only the
// wrapped bytes in the app's private files, and unwrap them at start. iOS: keep the 32 bytes in
// the Keychain (kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly). The desktop demo keeps them in
// a PKCS12 Java KeyStore file (app-desktop's Pkcs12StoreKeys).

package doorstep.app

import uniffi.doorstep_ffi.ApiException
import uniffi.doorstep_ffi.DoorstepReplica

/** Where the store's key lives. */
interface StoreKeys {
    /** The store's 32-byte key, created on first use and the same on every later call. */
    fun storeKey(): ByteArray
}

/** What opening the store gave: the replica, or the refusal to show (a wrong key changes nothing). */
sealed interface OpenedStore {
    data class Ready(val replica: DoorstepReplica) : OpenedStore
    data class Refused(val refusal: Refusal) : OpenedStore
}

/** Opens the encrypted store at [path] with the key from [keys]; a plain store from an earlier
 *  app version is encrypted in place first, keeping every record. Call it off the UI thread. */
fun openStore(path: String, keys: StoreKeys): OpenedStore {
    val key = keys.storeKey()
    return try {
        OpenedStore.Ready(DoorstepReplica.openEncrypted(path, key))
    } catch (e: ApiException) {
        OpenedStore.Refused(Refusals.of(e))
    } finally {
        key.fill(0)
    }
}
