//! `wfe-engine run` (placeholder until the controller lands).

#[derive(clap::Args, Debug)]
pub struct RunArgs {}

pub async fn run(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("the controller is not built yet")
}
