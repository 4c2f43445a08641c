//! The loopback server both stand-ins run (`standin_cloud`,
//! `standin_appliance`): 127.0.0.1 on a free port, one thread, one request
//! per connection with 5 s read and write timeouts, stopped when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use airlock::error::{Code, Error, Result};

/// A running loopback server. Dropping it stops it.
pub struct Loopback {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Loopback {
    /// Serve each connection with `serve`; `what` names the server in
    /// errors and its thread ("GitHub stand-in").
    pub fn start(what: &str, serve: impl Fn(&mut TcpStream) + Send + 'static) -> Result<Loopback> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| {
            Error::new(
                Code::Internal,
                format!("cannot start the {what} on 127.0.0.1: {e}"),
            )
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::new(Code::Internal, format!("stand-in address: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name(what.to_ascii_lowercase().replace(' ', "-"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut s) = conn else { continue };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                    serve(&mut s);
                }
            })
            .map_err(|e| {
                Error::new(
                    Code::Resources,
                    format!("cannot start the {what} thread: {e}"),
                )
            })?;
        Ok(Loopback {
            addr,
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
