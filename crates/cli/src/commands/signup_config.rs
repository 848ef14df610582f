//! `wa-onboard signup-config --config-id ID [--solution-id ID] [--version v3|v4]`: prints the
//! options object the partner's page passes to `FB.login` to launch Embedded Signup with
//! App-Only Install.
//!
//! The shape is Meta's, from the App-Only Install page ("Enabling the feature in Embedded
//! Signup v3", <https://developers.facebook.com/docs/whatsapp/embedded-signup/custom-flows/app-only-install>):
//!
//! ```json
//! {"config_id": "<CONFIGURATION_ID>", "response_type": "code",
//!  "override_default_response_type": true,
//!  "extras": {"version": "v3", "features": [{"name": "app_only_install"}],
//!             "setup": {"solutionID": "<SOLUTION_ID>"}}}
//! ```
//!
//! `setup` only with a Multi-Partner Solution (`--solution-id`). Meta's Versions page
//! (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/versions/>)
//! lists `app_only_install` as a feature of v3 and v4, and says the ES version is set inside
//! `extras`; `--version v4` prints the same object with `"version": "v4"`. v2 has no
//! App-Only Install and is refused: Meta deprecated Embedded Signup v2 in October 2026.
//!
//! Exit codes: `0` printed; `2` a usage error (missing `--config-id`, an id that is not one,
//! `v2` or an unknown version).

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use wa_ids::{ConfigId, SolutionId};

use crate::output;

/// `wa-onboard signup-config`.
#[derive(Debug, Args)]
pub struct SignupConfigArgs {
    /// The Facebook Login for Business configuration id (App Dashboard > Facebook Login for
    /// Business > Configurations).
    #[arg(long, env = "WA_SIGNUP_CONFIG_ID", value_name = "ID")]
    pub config_id: ConfigId,
    /// The Multi-Partner Solution id, when customers onboard through one.
    #[arg(long, env = "WA_SIGNUP_SOLUTION_ID", value_name = "ID")]
    pub solution_id: Option<SolutionId>,
    /// Embedded Signup version: v3 or v4 (v2 was deprecated in October 2026).
    #[arg(
        id = "es_version",
        long = "version",
        env = "WA_SIGNUP_VERSION",
        value_name = "VERSION",
        default_value = "v3",
        value_parser = es_version
    )]
    pub version: String,
}

fn es_version(value: &str) -> Result<String, String> {
    match value {
        "v3" | "v4" => Ok(value.to_owned()),
        "v2" | "v2-public-preview" => Err(
            "Embedded Signup v2 was deprecated in October 2026 and has no App-Only Install; \
             use v3 or v4"
                .to_owned(),
        ),
        _ => Err("must be v3 or v4".to_owned()),
    }
}

/// The `FB.login` options, fields in the order Meta's documentation shows them.
#[derive(Debug, Serialize)]
struct LoginOptions<'a> {
    config_id: &'a str,
    response_type: &'static str,
    override_default_response_type: bool,
    extras: Extras<'a>,
}

#[derive(Debug, Serialize)]
struct Extras<'a> {
    version: &'a str,
    features: [Feature; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    setup: Option<Setup<'a>>,
}

#[derive(Debug, Serialize)]
struct Feature {
    name: &'static str,
}

#[derive(Debug, Serialize)]
#[allow(non_snake_case)] // Meta's spelling.
struct Setup<'a> {
    solutionID: &'a str,
}

fn options(args: &SignupConfigArgs) -> LoginOptions<'_> {
    LoginOptions {
        // Meta ids are digits: printed into the partner's page, nothing can break out of a
        // JavaScript string.
        config_id: args.config_id.as_str(),
        response_type: "code",
        override_default_response_type: true,
        extras: Extras {
            version: &args.version,
            features: [Feature {
                name: "app_only_install",
            }],
            setup: args.solution_id.as_ref().map(|id| Setup {
                solutionID: id.as_str(),
            }),
        },
    }
}

pub fn run(args: &SignupConfigArgs) -> anyhow::Result<ExitCode> {
    output::json_pretty(&options(args), "the options")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(solution: Option<&str>, version: &str) -> SignupConfigArgs {
        SignupConfigArgs {
            config_id: "1234567890".parse().unwrap(),
            solution_id: solution.map(|id| id.parse().unwrap()),
            version: version.into(),
        }
    }

    #[test]
    fn the_options_are_metas_app_only_install_shape() {
        let plain = serde_json::to_value(options(&args(None, "v3"))).unwrap();
        assert_eq!(
            plain,
            json!({"config_id": "1234567890", "response_type": "code",
                "override_default_response_type": true,
                "extras": {"version": "v3", "features": [{"name": "app_only_install"}]}})
        );
        let mps = serde_json::to_value(options(&args(Some("580381314521123"), "v4"))).unwrap();
        assert_eq!(
            mps["extras"]["setup"],
            json!({"solutionID": "580381314521123"})
        );
        assert_eq!(mps["extras"]["version"], "v4");
    }

    #[test]
    fn v2_and_unknown_versions_are_refused() {
        assert!(
            es_version("v2")
                .unwrap_err()
                .contains("deprecated in October 2026")
        );
        assert!(es_version("v5").is_err());
        assert!("12'); alert(1)//".parse::<ConfigId>().is_err());
    }
}
