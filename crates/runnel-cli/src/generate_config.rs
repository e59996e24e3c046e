//! `runnel generate-config`: prints the commented example config (`runner-config/`), every key
//! with its default, to redirect into a `config.yaml`.

use anyhow::Result;

use crate::Outcome;

pub(crate) fn run() -> Result<Outcome> {
    print!("{}", runnel_config::EXAMPLE_CONFIG);
    Ok(Outcome::Success)
}
