//! The one integration-test binary of `runnel-expr`: GitHub's conformance data, the G15 number
//! table, the peer-divergence cases of `semantics.md` section 6, templates and `if:` rules.

mod conformance;
mod divergences;
mod fuzz_regressions;
mod g15;
mod support;
mod templates;
