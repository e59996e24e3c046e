//! `runnel bench-parse` (hidden): loads and plans files repeatedly in-process, so that
//! `tests/bench/parse-plan.sh` can compare runnel with GitHub's parser without process start-up
//! in the figures. Prints `{"files": F, "iterations": N, "seconds": S}`.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use crate::Outcome;
use crate::args::BenchArgs;
use crate::discover;

pub(crate) fn run(args: &BenchArgs) -> Result<Outcome> {
    let files = discover::expand(&args.files)?
        .iter()
        .map(|p| discover::read(p))
        .collect::<Result<Vec<_>>>()?;
    let event = runnel_plan::Event::push("refs/heads/main");
    let started = Instant::now();
    let mut jobs = 0usize;
    for _ in 0..args.iterations {
        for file in &files {
            let loaded = runnel_workflow::load_workflow(&file.display, &file.text);
            if let Some(workflow) = &loaded.workflow {
                jobs += runnel_plan::plan_workflow(&file.display, workflow, &event)
                    .jobs
                    .len();
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"files": files.len(), "iterations": args.iterations, "seconds": seconds, "jobs": jobs})
    );
    Ok(Outcome::Success)
}
