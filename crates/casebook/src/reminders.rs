//! The appointment reminder dispatcher inside `casebook serve` (every few seconds) and as
//! `casebook outbox reminders` (once): the rules are `app::reminders`'s; this gives it the GP
//! dispatcher's HTTP transport (no redirects, a timeout, public https addresses only unless
//! told otherwise) and the notification service's address and key from the settings.

use std::sync::Arc;
use std::time::Duration;

use app::gp_outbox::DispatchSettings;
use app::reminders::{NotifyEndpoint, ReminderDispatcher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::gp_outbox::{HttpTransport, Reach, TIMEOUT};

/// A dispatcher over the store of `cases`, posting to `notify` over HTTP.
///
/// # Errors
/// The HTTP client could not be built.
pub fn dispatcher(
    cases: &app::CaseService,
    notify: Option<NotifyEndpoint>,
    reach: Reach,
) -> anyhow::Result<ReminderDispatcher> {
    Ok(ReminderDispatcher::new(
        cases.store().clone(),
        cases.clock().clone(),
        Arc::new(HttpTransport::to(
            "the notification service",
            TIMEOUT,
            reach,
        )?),
        DispatchSettings::default(),
        notify,
    ))
}

/// Runs the dispatcher every `every` until `stopped` says so.
///
/// # Errors
/// The HTTP client could not be built.
pub fn spawn(
    cases: &app::CaseService,
    notify: NotifyEndpoint,
    every: Duration,
    reach: Reach,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let dispatcher = dispatcher(cases, Some(notify), reach)?;
    Ok(tokio::spawn(
        async move { dispatcher.run(every, stopped).await },
    ))
}
