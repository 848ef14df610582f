//! `wa-onboard send FILE`: signs the file's raw bytes as Meta does and POSTs them.

use std::process::ExitCode;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::{args::SendArgs, secrets};

#[allow(clippy::print_stdout)] // Printing the answer is this command's job.
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
    println!("{} {}", status.as_u16(), text.trim_end());
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
