//! Ctrl-C for long commands. The handler is installed when the value is made, not when it is
//! first awaited: a SIGINT that arrives while a step is being written (before the command next
//! waits) is kept and acted on at the next step boundary instead of killing the process midway.

pub struct Interrupt {
    #[cfg(unix)]
    sig: tokio::signal::unix::Signal,
}

impl Interrupt {
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Interrupt { sig: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        {
            Ok(Interrupt {})
        }
    }

    /// Completes once Ctrl-C was pressed (also if it was pressed before this call).
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.sig.recv().await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
