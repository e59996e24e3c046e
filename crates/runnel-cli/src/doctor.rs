//! `runnel doctor`: runs the checks of a runner's setup (`runnel_daemon::doctor`) and prints
//! each finding with its fix. Exit 1 when a check failed; warnings do not fail.
//!
//! Owns: the table's layout. Must not: check anything itself.

use anyhow::{Context, Result};
use runnel_daemon::doctor::{DoctorOptions, Finding, Verdict};

use crate::Outcome;
use crate::args::DoctorArgs;

pub(crate) fn run(args: &DoctorArgs) -> Result<Outcome> {
    let options = DoctorOptions {
        config_path: args.config.clone(),
        version: crate::common::version(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let findings = runtime.block_on(runnel_daemon::doctor::doctor(&options));
    print!("{}", render(&findings));
    let failed = findings.iter().any(|f| f.verdict == Verdict::Fail);
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for finding in findings {
        let tag = match finding.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        let mut lines = finding.detail.lines();
        out.push_str(&format!(
            "{tag}  {:<13} {}\n",
            finding.check,
            lines.next().unwrap_or_default()
        ));
        for line in lines {
            out.push_str(&format!("{:20}{line}\n", ""));
        }
        if let Some(fix) = &finding.fix {
            out.push_str(&format!("{:20}fix: {fix}\n", ""));
        }
    }
    let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    out.push_str(&format!(
        "{} failed, {} warning(s), {} ok\n",
        count(Verdict::Fail),
        count(Verdict::Warn),
        count(Verdict::Ok)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_puts_the_fix_under_the_finding() {
        let text = render(&[
            Finding {
                check: "config",
                verdict: Verdict::Ok,
                detail: "c.yaml parses".to_owned(),
                fix: None,
            },
            Finding {
                check: "gitea",
                verdict: Verdict::Fail,
                detail: "down\nsecond line".to_owned(),
                fix: Some("start it".to_owned()),
            },
        ]);
        assert_eq!(
            text,
            "ok    config        c.yaml parses\n\
             FAIL  gitea         down\n\
             \x20                   second line\n\
             \x20                   fix: start it\n\
             1 failed, 0 warning(s), 1 ok\n"
        );
    }
}
