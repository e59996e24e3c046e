//! Fuzzes the cache and artifact HTTP surface without a server: routing, query strings,
//! headers (tokens, Content-Range), the JSON bodies of v1 reserve/commit and the v2 and
//! artifact Twirp calls, and Azure block lists. No input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    runnel_cache::parse_untrusted_request(data);
});
