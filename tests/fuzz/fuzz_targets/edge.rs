//! Fuzzes the request path: HTTP edge, authentication, the protocol front
//! (both eras, sessions, sealed ids), JSON-RPC parsing and routing to an
//! upstream. The harness and the input format: `../harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
