use clap::Parser;
use tollgate_service::Settings;
use tollgate_starter::cli::Cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    tollgate_service::telemetry::init(&settings.log_filter, settings.log_json);
    cli.run(settings).await
}
