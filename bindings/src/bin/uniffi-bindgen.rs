//! The uniffi-bindgen command line, built from the workspace so its version matches the library.

fn main() {
    uniffi::uniffi_bindgen_main()
}
