//! `ccp-admin usage …`: maintenance of the hourly usage rollups.

use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum UsageCommand {
    /// Recompute the hourly rollups from the raw request rows, from the hour holding
    /// `--from` on (a date, `2026-11-01`, or an RFC 3339 time), in one transaction.
    RebuildRollups {
        #[arg(long)]
        from: String,
    },
}

pub(super) async fn run(ctx: &Ctx, command: UsageCommand) -> anyhow::Result<()> {
    match command {
        UsageCommand::RebuildRollups { from } => {
            let from = parse_from(&from)?;
            if let Some(days) = ctx.config.request_log_retention_days {
                let horizon = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
                if from < horizon {
                    anyhow::bail!(
                        "--from {from} is before the raw-row retention horizon ({horizon}, \
                         CCP_REQUEST_LOG_RETENTION_DAYS={days}): those hours' raw rows are gone \
                         and their rollups would be emptied"
                    );
                }
            }
            let rows = ctx.store.rebuild_rollups(from).await?;
            ctx.out.done(
                json!({"from": ccp_core::store::hour_of(from), "rollup_rows": rows}),
                &format!(
                    "Rebuilt the rollups from {}: {rows} hourly rows.",
                    ccp_core::store::hour_of(from).to_rfc3339()
                ),
            )
        }
    }
}

fn parse_from(text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        anyhow!("--from {text:?}: expected a date (2026-11-01) or an RFC 3339 time")
    })?;
    Ok(day.and_time(chrono::NaiveTime::MIN).and_utc())
}
