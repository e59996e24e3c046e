//! Fuzzes the workflow loader (YAML, model conversion, diagnostics, rendering): no input may
//! panic or run away.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let result = runnel_workflow::load_workflow("fuzz.yml", text);
    for diagnostic in &result.diagnostics {
        let _ = runnel_workflow::render(diagnostic, text);
    }
});
