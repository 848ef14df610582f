//! `wa-onboard send FILE`: signs the file's raw bytes as Meta does and POSTs them.
//!
//! Exit codes: `0` the webhook answered 2xx; `1` any other answer, or no answer.

use std::{io::Write, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Args;
use secrecy::ExposeSecret;

use crate::{output, secrets};

/// `wa-onboard send FILE`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The JSON file to send; its bytes are signed and sent unchanged.
    pub file: PathBuf,
    /// The webhook URL.
    #[arg(
        long,
        env = "WA_SEND_URL",
        default_value = "http://127.0.0.1:8080/webhooks/whatsapp"
    )]
    pub url: String,
    /// App secret to sign with (the first of a comma-separated list).
    #[arg(long = "secret", env = "WA_APP_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// File holding the app secret.
    #[arg(long = "secret-file", env = "WA_APP_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
}

pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let secret = secrets::list(
        args.secret.as_deref(),
        args.secret_file.as_deref(),
        "WA_APP_SECRET",
    )?
    .swap_remove(0);
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let signature = wa_envelope::sign(secret.expose_secret().as_bytes(), &body);
    let response = reqwest::Client::new()
        .post(&args.url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {}", args.url))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    output::write_stdout(|out| writeln!(out, "{} {}", status.as_u16(), text.trim_end()))?;
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
