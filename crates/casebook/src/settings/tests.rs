use clap::Parser;
use clap::error::ErrorKind;

use crate::rebuild::{RebuildOptions, RebuildTarget};
use crate::settings::{Cli, Command, RebuildArgs};

fn rebuild_args(args: &[&str]) -> Result<RebuildArgs, clap::Error> {
    let cli = Cli::try_parse_from([&["casebook", "rebuild"], args].concat())?;
    match cli.command {
        Command::Rebuild(args) => Ok(args),
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn an_unknown_projection_is_refused_by_the_parser() {
    let refused = rebuild_args(&["caseloads"]).expect_err("no such projection");
    assert_eq!(refused.kind(), ErrorKind::InvalidValue);
}

#[test]
fn rebuild_flags_become_a_target_and_options() {
    let args = rebuild_args(&["outcomes", "--rules", "2", "--restart"]).expect("parsed");
    assert_eq!(
        args.target().expect("a target"),
        RebuildTarget::Outcomes { rules: 2 }
    );
    assert_eq!(
        args.options(false),
        RebuildOptions {
            restart: true,
            switch: true,
            progress: false
        }
    );
    let args = rebuild_args(&["outcomes", "--no-switch"]).expect("parsed");
    assert_eq!(
        args.target().expect("a target"),
        RebuildTarget::Outcomes {
            rules: projector::rules::Rules::latest_version()
        }
    );
    assert!(!args.options(true).switch);
    let args = rebuild_args(&["directory"]).expect("parsed");
    assert_eq!(args.target().expect("a target"), RebuildTarget::Directory);
    let args = rebuild_args(&["tasks"]).expect("parsed");
    assert_eq!(args.target().expect("a target"), RebuildTarget::Tasks);
    assert!(
        rebuild_args(&["tasks", "--rules", "1"])
            .expect("parsed")
            .target()
            .is_err()
    );
}

#[test]
fn rules_for_a_read_model_without_versions_are_refused() {
    let args = rebuild_args(&["caseload", "--rules", "2"]).expect("parsed");
    let refused = args.target().expect_err("the caseload has no versions");
    assert_eq!(refused.kind(), ErrorKind::ArgumentConflict);
}

/// The command line issues tokens under the same lifetime cap as the API.
#[test]
fn a_token_lives_at_most_as_long_as_the_api_allows() {
    let parse = |days: &str| {
        Cli::try_parse_from([
            "casebook".to_owned(),
            "token".to_owned(),
            "issue".to_owned(),
            "00000000-0000-0000-0000-000000000001".to_owned(),
            format!("--days={days}"),
        ])
    };
    assert!(parse("400").is_ok());
    for refused in ["401", "100000", "0", "-1"] {
        let error = parse(refused).expect_err(refused);
        assert_eq!(error.kind(), ErrorKind::ValueValidation, "{refused}");
    }
}

fn serve_oidc(args: &[&str]) -> Result<crate::settings::OidcArgs, clap::Error> {
    let cli = Cli::try_parse_from([&["casebook", "serve"], args].concat())?;
    match cli.command {
        Command::Serve { oidc, .. } => Ok(*oidc),
        other => panic!("parsed as {other:?}"),
    }
}

/// The console's OpenID provider: an issuer needs a client id; the secret comes from a file
/// only; the button's name defaults to the issuer's host.
#[test]
fn an_openid_provider_is_configured_with_its_secret_from_a_file() {
    assert!(
        serve_oidc(&[])
            .expect("no provider")
            .console()
            .expect("fine")
            .is_none()
    );
    let refused = serve_oidc(&["--oidc-issuer", "https://idp.example/realm"])
        .expect_err("an issuer without a client id");
    assert_eq!(refused.kind(), ErrorKind::MissingRequiredArgument);
    assert!(
        serve_oidc(&["--oidc-client-secret", "s3cret"]).is_err(),
        "no flag takes the secret itself"
    );
    let secret = std::env::temp_dir().join(format!("casebook-oidc-{}", std::process::id()));
    std::fs::write(&secret, "s3cret\n").expect("writing the secret");
    let args = serve_oidc(&[
        "--oidc-issuer",
        "https://idp.example/realm",
        "--oidc-client-id",
        "casebook",
        "--oidc-client-secret-file",
        secret.to_str().expect("a path"),
        "--public-url",
        "https://casebook.example",
    ])
    .expect("a provider");
    let console = args.console().expect("read").expect("configured");
    std::fs::remove_file(&secret).expect("removing the secret");
    assert_eq!(console.client_secret.as_deref(), Some("s3cret"));
    assert_eq!(console.display_name, "idp.example");
    assert_eq!(
        console.public_url.as_deref(),
        Some("https://casebook.example")
    );
    let not_a_url = serve_oidc(&["--oidc-issuer", "idp.example", "--oidc-client-id", "c"])
        .expect("parsed")
        .console();
    assert!(not_a_url.is_err());
}

fn serve_notify(args: &[&str]) -> Result<crate::settings::NotifyArgs, clap::Error> {
    let cli = Cli::try_parse_from([&["casebook", "serve"], args].concat())?;
    match cli.command {
        Command::Serve { notify, .. } => Ok(*notify),
        other => panic!("parsed as {other:?}"),
    }
}

/// The notification service for reminders: a URL needs the key, which comes from the
/// environment only (no argument takes it) and never shows in the settings' debug form.
#[test]
fn the_notification_service_needs_its_key_from_the_environment_and_never_shows_it() {
    let none = serve_notify(&[]).expect("parses");
    assert!(none.endpoint().expect("no service").is_none());
    assert!(
        serve_notify(&["--notify-api-key", "k"]).is_err(),
        "no argument takes the key"
    );
    let mut notify = serve_notify(&["--notify-url", "https://api.notifications.service.gov.uk"])
        .expect("parses");
    notify.notify_api_key = crate::settings::NotifyKey(None);
    assert!(notify.endpoint().is_err(), "a URL without a key");
    notify.notify_api_key = crate::settings::NotifyKey(Some("secret-key-123".to_owned()));
    let endpoint = notify.endpoint().expect("valid").expect("configured");
    assert_eq!(endpoint.api_key, "secret-key-123");
    assert!(!format!("{notify:?}").contains("secret-key-123"));
    assert!(!format!("{endpoint:?}").contains("secret-key-123"));
    notify.notify_url = Some("file:///etc/passwd".to_owned());
    assert!(notify.endpoint().is_err(), "only http(s)");
}

/// The reminder templates are the service's configuration: by flag or environment, each a
/// template id, none when not given (that channel's reminders are then held).
#[test]
fn the_reminder_templates_are_configured_by_flag_and_must_be_template_ids() {
    let mut notify = serve_notify(&[
        "--notify-url",
        "https://api.notifications.service.gov.uk",
        "--notify-sms-template",
        "0F8E6A52-1111-4C2E-9D3B-7A1E2C3D4E5F",
    ])
    .expect("parses");
    notify.notify_api_key = crate::settings::NotifyKey(Some("key".to_owned()));
    let endpoint = notify.endpoint().expect("valid").expect("configured");
    assert_eq!(
        endpoint.templates,
        app::reminders::NotifyTemplates {
            sms: Some("0f8e6a52-1111-4c2e-9d3b-7a1e2c3d4e5f".to_owned()),
            email: None,
        }
    );
    notify.notify_email_template = Some("welcome-email".to_owned());
    let refused = notify.endpoint().expect_err("not a template id");
    assert!(
        refused.to_string().contains("--notify-email-template"),
        "{refused}"
    );
}
