//! The loader never panics: truncated and byte-flipped versions of real workflows, and a few
//! hostile shapes, all come back as diagnostics. (A cheap stand-in between `cargo fuzz` runs.)

use crate::{data_dir, files, read};

/// A tiny deterministic generator so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap_or(0)
    }
}

#[test]
fn mangled_workflows_do_not_panic() {
    let mut rng = Lcg(7);
    let replacements = [
        "", ":", "-", "[", "{", "}", "'", "\"", "${{", "}}", "\n", "  ", "&a", "*a", "!!int", "|",
        "#", "\t",
    ];
    for path in files(&data_dir("seed"), ".yml") {
        let text = read(&path);
        let chars: Vec<char> = text.chars().collect();
        for _ in 0..40 {
            let cut = rng.next() % (chars.len() + 1);
            let truncated: String = chars.iter().take(cut).collect();
            let _ = runnel_workflow::load_workflow("t.yml", &truncated);

            let at = rng.next() % (chars.len() + 1);
            let insert = replacements
                .get(rng.next() % replacements.len())
                .copied()
                .unwrap_or("");
            let mut mangled: String = chars.iter().take(at).collect();
            mangled.push_str(insert);
            mangled.extend(chars.iter().skip(at + rng.next() % 3));
            let result = runnel_workflow::load_workflow("m.yml", &mangled);
            for diagnostic in &result.diagnostics {
                let _ = runnel_workflow::render(diagnostic, &mangled);
            }
        }
    }
}

#[test]
fn hostile_shapes_are_diagnostics() {
    let cases = [
        String::new(),
        "[]".to_owned(),
        "just a string".to_owned(),
        "on: push\njobs: [a, b]\n".to_owned(),
        "on: {push: [1, 2]}\njobs: {a: {runs-on: x, steps: [1, [2], {run: {}}]}}\n".to_owned(),
        "? [complex, key]\n: value\n".to_owned(),
        format!(
            "on: push\njobs:\n{}",
            (0..300)
                .map(|i| format!(
                    "  j{i}:\n    needs: j{}\n    runs-on: x\n    steps: [{{run: a}}]\n",
                    (i + 1) % 300
                ))
                .collect::<String>()
        ),
        "a: &x [*x]\n".to_owned(),
        "\u{feff}on: push\njobs: {}\n".to_owned(),
        "on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: \"\\ud800\"\n".to_owned(),
    ];
    for text in &cases {
        let result = runnel_workflow::load_workflow("h.yml", text);
        assert!(result.has_errors(), "{text:?} was accepted");
    }
}
