//! Signals other than SIGTERM and SIGINT (which end the engine's loop). Their default action is
//! to terminate, and systemd's `Restart=on-failure` treats death by SIGHUP as clean: a logrotate
//! `kill -HUP` would leave the host unmonitored. SIGHUP reopens the event file; SIGUSR1 and
//! SIGUSR2 are logged and ignored.

use tokio::{
    signal::unix::{SignalKind, signal},
    task::JoinHandle,
};

use super::events::Reopen;

/// Installs the handlers; `reopen` is the event file's, if the stream goes to one.
pub fn handle(reopen: Option<Reopen>) -> std::io::Result<JoinHandle<()>> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut user1 = signal(SignalKind::user_defined1())?;
    let mut user2 = signal(SignalKind::user_defined2())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = hangup.recv() => match &reopen {
                    Some(reopen) => reopen.request(),
                    None => tracing::info!("SIGHUP: the event stream has no file to reopen"),
                },
                Some(()) = user1.recv() => tracing::info!("SIGUSR1 ignored"),
                Some(()) = user2.recv() => tracing::info!("SIGUSR2 ignored"),
                else => break,
            }
        }
    }))
}
