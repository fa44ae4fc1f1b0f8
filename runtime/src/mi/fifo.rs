//! `mi_fifo`: MI commands over a named pipe, as OpenSER 1.3's `mi_fifo`
//! module serves them (`openserctl fifo …` writes to it).
//!
//! At start the FIFO `fifo_name` (required) is created with `fifo_mode`
//! (default 0660; 0 is taken as 0600 with a warning, as 1.3 does) and, when
//! set, owned by `fifo_user`/`fifo_group` (a number, or a name found in
//! `/etc/passwd` and `/etc/group`). A FIFO or socket left at that path by an
//! earlier run is replaced, as 1.3 replaces it; any other kind of file is
//! left alone and the start fails (1.3 deleted whatever was there). The
//! server keeps a write end of its own FIFO open, so the read end never sees
//! an end of file between clients.
//!
//! A client writes `:command:reply_file\n`, one argument per line and an
//! empty line (see [`super::text`]). The reply goes to the FIFO
//! `reply_dir` + `reply_file`, which the client created and reads: the reply
//! text, each level of the tree indented by `reply_indent` (default a tab),
//! ended by an empty line. Without a reply file the command is not run (1.3
//! opens the reply FIFO first). The error lines are 1.3's:
//! `500 command 'NAME' not available`, `400 parse error in command 'NAME'`,
//! `500 command 'NAME' failed` — each a single line.
//!
//! What keeps a bad client from disturbing anything: the FIFO is read by one
//! tokio task that never blocks; a request's first line that is malformed is
//! logged and the request skipped up to its empty line (1.3's "consume"); a
//! request longer than [`MAX_REQUEST`] bytes is answered as a parse error and
//! skipped; the reply FIFO is opened without blocking, retried 4 times 80 ms
//! apart while nobody reads it (1.3's `FIFO_REPLY_RETRIES`/`FIFO_REPLY_WAIT`),
//! then given up; it must be a FIFO, not a link, not hard-linked (1.3's
//! checks); a reply that cannot be written within [`WRITE_TIMEOUT`] is
//! dropped; a request its client left incomplete is dropped when the next
//! data comes more than [`STALE_PARTIAL`] later. Requests run in their own
//! tasks, at most 16 at once.
//!
//! `reply_dir` is joined with the file name as 1.3 does, by concatenation,
//! except that a `/` is added when `reply_dir` does not end with one.

use std::io::{self, Write as _};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{watch, Semaphore};

use super::text::{self, FifoCommand};
use super::{Mi, Outcome, Transport, MAX_IN_FLIGHT};
use crate::script::{Config, Value};

/// The most bytes a request may have (first line, arguments, line ends);
/// longer ones are skipped and answered as a parse error.
pub const MAX_REQUEST: usize = 64 * 1024;
/// 1.3's `FIFO_REPLY_RETRIES`: more attempts to open a reply FIFO nobody reads yet.
pub const REPLY_RETRIES: u32 = 4;
/// 1.3's `FIFO_REPLY_WAIT`: the wait between those attempts.
pub const REPLY_WAIT: Duration = Duration::from_millis(80);
/// How long writing a reply may take before the client is given up.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A request left incomplete this long (its client went away mid-way) is
/// dropped when more data comes, so that it does not swallow the next
/// client's request.
pub const STALE_PARTIAL: Duration = Duration::from_secs(1);

/// What the FIFO server is configured with.
#[derive(Clone, Debug)]
pub struct FifoOptions {
    pub fifo_name: PathBuf,
    pub mode: u32,
    pub reply_dir: String,
    pub reply_indent: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl FifoOptions {
    /// Reads mi_fifo's modparams.
    pub fn from_config(config: &Config) -> Result<FifoOptions, String> {
        let p = &config.params;
        let fifo_name = match p.get("mi_fifo", "fifo_name") {
            Value::Str(s) if !s.is_empty() => PathBuf::from(s),
            _ => return Err("mi_fifo: no fifo_name configured".to_string()),
        };
        let mut mode = match p.get("mi_fifo", "fifo_mode") {
            Value::Int(m) => u32::try_from(m).map_err(|_| format!("mi_fifo: bad fifo_mode {m}"))?,
            Value::Str(s) => parse_mode(&s).ok_or_else(|| format!("mi_fifo: bad fifo_mode {s:?}"))?,
            Value::Null => 0o660,
        };
        if mode == 0 {
            tracing::warn!("mi_fifo: fifo_mode 0 is not allowed, using rw------- (0600)");
            mode = 0o600;
        }
        let mut reply_dir = match p.get("mi_fifo", "reply_dir") {
            Value::Str(s) if !s.is_empty() => s,
            Value::Null => "/tmp/".to_string(),
            _ => return Err("mi_fifo: reply_dir is empty".to_string()),
        };
        match std::fs::metadata(&reply_dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("mi_fifo: reply_dir {reply_dir} is not a directory")),
            Err(e) => return Err(format!("mi_fifo: reply_dir {reply_dir}: {e}")),
        }
        if !reply_dir.ends_with('/') {
            reply_dir.push('/');
        }
        let reply_indent = match p.get("mi_fifo", "reply_indent") {
            Value::Str(s) => s,
            _ => "\t".to_string(),
        };
        let uid =
            owner(p.get("mi_fifo", "fifo_user"), "/etc/passwd").map_err(|e| format!("mi_fifo: fifo_user: {e}"))?;
        let gid =
            owner(p.get("mi_fifo", "fifo_group"), "/etc/group").map_err(|e| format!("mi_fifo: fifo_group: {e}"))?;
        Ok(FifoOptions { fifo_name, mode, reply_dir, reply_indent, uid, gid })
    }
}

/// A mode given as a string (`"0660"`, octal as C reads a leading 0).
pub(crate) fn parse_mode(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix('0') {
        Some(oct) if !oct.is_empty() => u32::from_str_radix(oct, 8).ok(),
        _ => s.parse().ok(),
    }
}

/// A user or group: -1 (or unset) none, a number, or a name in `db`
/// (`/etc/passwd` or `/etc/group`: `name:x:ID:…`).
pub(crate) fn owner(value: Value, db: &str) -> Result<Option<u32>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Int(n) if n < 0 => Ok(None),
        Value::Int(n) => u32::try_from(n).map(Some).map_err(|_| format!("bad id {n}")),
        Value::Str(s) if s.is_empty() => Ok(None),
        Value::Str(s) => {
            if let Ok(n) = s.parse::<u32>() {
                return Ok(Some(n));
            }
            let text = std::fs::read_to_string(db).map_err(|e| format!("cannot read {db}: {e}"))?;
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse::<u32>().ok()?;
                    (name == s).then_some(id)
                })
                .next()
                .map(Some)
                .ok_or_else(|| format!("no {s} in {db}"))
        }
    }
}

/// Removes what an earlier run left at `path` (a FIFO or a socket); fails
/// on any other kind of file rather than deleting it.
pub(crate) fn remove_stale(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() || m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| format!("cannot delete the old {}: {e}", path.display()))
        }
        Ok(_) => Err(format!("{} exists and is not a FIFO or socket: not replacing it", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Sets the mode and owner of the file at `path`.
pub(crate) fn apply_mode_owner(path: &Path, mode: u32, uid: Option<u32>, gid: Option<u32>) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {} to {mode:o}: {e}", path.display()))?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid).map_err(|e| format!("cannot chown {}: {e}", path.display()))?;
    }
    Ok(())
}

fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts the FIFO server when the config loads `mi_fifo`.
pub async fn start(config: &Config, mi: &Mi) -> Result<Option<Transport>, String> {
    if !config.params.is_loaded("mi_fifo") {
        return Ok(None);
    }
    let opts = FifoOptions::from_config(config)?;
    serve(opts, mi).await.map(Some)
}

/// Creates the FIFO and starts serving it (what [`start`] does once the
/// options are read).
pub async fn serve(opts: FifoOptions, mi: &Mi) -> Result<Transport, String> {
    let path = opts.fifo_name.clone();
    let shown = path.display().to_string();
    remove_stale(&path).map_err(|e| format!("mi_fifo: {e}"))?;
    mkfifo(&path, opts.mode).map_err(|e| format!("mi_fifo: cannot create the FIFO {shown}: {e}"))?;
    apply_mode_owner(&path, opts.mode, opts.uid, opts.gid).map_err(|e| format!("mi_fifo: {e}"))?;
    let receiver =
        pipe::OpenOptions::new().open_receiver(&path).map_err(|e| format!("mi_fifo: cannot open {shown}: {e}"))?;
    // Our own writer: the read end then never reaches end of file.
    let keep = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| format!("mi_fifo: cannot open {shown} for writing: {e}"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = Server { mi: mi.clone(), opts: Arc::new(opts), permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)) };
    let task = tokio::spawn(async move {
        server.run(receiver, stop_rx).await;
        drop(keep);
        if let Ok(m) = std::fs::symlink_metadata(&path) {
            if m.file_type().is_fifo() {
                let _ = std::fs::remove_file(&path);
            }
        }
    });
    mi.add_process("MI FIFO");
    mi.add_endpoint(format!("fifo:{shown}"));
    tracing::info!("mi_fifo: serving {shown}");
    Ok(Transport::new(format!("fifo:{shown}"), stop_tx, task))
}

struct Server {
    mi: Mi,
    opts: Arc<FifoOptions>,
    permits: Arc<Semaphore>,
}

/// One request as read: its first line and argument lines.
#[derive(Debug, Default)]
struct Pending {
    head: Option<Result<FifoCommand, String>>,
    lines: Vec<Vec<u8>>,
    size: usize,
    too_long: bool,
}

impl Server {
    async fn run(self, mut receiver: pipe::Receiver, mut stop: watch::Receiver<bool>) {
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 4096];
        let mut pending = Pending::default();
        // Skipping the rest of a line longer than MAX_REQUEST.
        let mut skipping_line = false;
        let mut last_data = tokio::time::Instant::now();
        loop {
            let n = tokio::select! {
                _ = stop.changed() => return,
                r = receiver.read(&mut chunk) => match r {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::error!("mi_fifo: reading the FIFO failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            if n == 0 {
                // No writer at all (ours is open, so not expected): do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let partial = pending.head.is_some() || !buf.is_empty() || skipping_line;
            if partial && last_data.elapsed() > STALE_PARTIAL {
                tracing::warn!("mi_fifo: an incomplete request was abandoned by its client: dropped");
                pending = Pending::default();
                buf.clear();
                skipping_line = false;
            }
            last_data = tokio::time::Instant::now();
            buf.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
                let line = &buf[start..start + nl];
                start += nl + 1;
                if skipping_line {
                    skipping_line = false;
                    continue;
                }
                if let Some(done) = self.line(&mut pending, line) {
                    let permit = tokio::select! {
                        _ = stop.changed() => return,
                        p = self.permits.clone().acquire_owned() => p,
                    };
                    let Ok(permit) = permit else { return };
                    let (mi, opts) = (self.mi.clone(), self.opts.clone());
                    tokio::spawn(async move {
                        answer(&mi, &opts, done).await;
                        drop(permit);
                    });
                }
            }
            buf.drain(..start);
            if buf.len() > MAX_REQUEST {
                // A line with no end in sight: drop it, and the request with it.
                tracing::warn!("mi_fifo: a request line longer than {MAX_REQUEST} bytes: skipped");
                buf.clear();
                skipping_line = true;
                if pending.head.is_none() {
                    pending.head = Some(Err("the first line is too long".to_string()));
                }
                pending.too_long = true;
                pending.lines.clear();
            }
        }
    }

    /// Takes one line (without its line feed); returns the request it ends.
    fn line(&self, pending: &mut Pending, line: &[u8]) -> Option<Pending> {
        match &pending.head {
            None => {
                if line.iter().all(|b| matches!(b, b'\r' | b' ' | b'\t')) {
                    // Stray empty lines between requests (1.3 would take the next
                    // request's lines as this one's rest).
                    return None;
                }
                let head = text::parse_fifo_command(line, self.opts.reply_dir.len()).map_err(|e| e.to_string());
                pending.size = line.len() + 1;
                pending.head = Some(head);
                None
            }
            Some(_) if line.is_empty() => Some(std::mem::take(pending)),
            Some(_) => {
                pending.size += line.len() + 1;
                if pending.size > MAX_REQUEST {
                    if !pending.too_long {
                        tracing::warn!("mi_fifo: a request longer than {MAX_REQUEST} bytes: skipped");
                    }
                    pending.too_long = true;
                    pending.lines.clear();
                } else if !pending.too_long {
                    pending.lines.push(line.to_vec());
                }
                None
            }
        }
    }
}

/// Runs a complete request and writes its reply.
async fn answer(mi: &Mi, opts: &FifoOptions, request: Pending) {
    let head = match request.head {
        Some(Ok(head)) => head,
        Some(Err(e)) => {
            tracing::warn!("mi_fifo: request refused: {e}");
            return;
        }
        None => return,
    };
    let command = head.command;
    let Some(file) = head.reply_file else {
        tracing::warn!("mi_fifo: command {command:?} has no reply FIFO: not run");
        return;
    };
    let path = format!("{}{}", opts.reply_dir, file);
    let Some(mut reply_pipe) = open_reply(&path).await else { return };
    let bytes = if request.too_long {
        format!("400 parse error in command '{command}'\n").into_bytes()
    } else if !mi.has(&command) {
        tracing::warn!("mi_fifo: command {command:?} is not available");
        format!("500 command '{command}' not available\n").into_bytes()
    } else {
        let args = if mi.ignores_input(&command) {
            Ok(Vec::new())
        } else {
            let lines: Vec<&[u8]> = request.lines.iter().map(Vec::as_slice).collect();
            text::parse_args(&lines)
        };
        match args {
            Err(e) => {
                tracing::warn!("mi_fifo: command {command:?}: {e}");
                format!("400 parse error in command '{command}'\n").into_bytes()
            }
            Ok(nodes) => {
                let values = nodes.into_iter().map(|n| n.value.unwrap_or_default()).collect();
                match mi.dispatch(&command, values).await {
                    Outcome::Reply(r) => text::write_reply(&r, &opts.reply_indent, true),
                    Outcome::NotAvailable => format!("500 command '{command}' not available\n").into_bytes(),
                    Outcome::Failed => {
                        tracing::error!("mi_fifo: command {command:?} failed");
                        format!("500 command '{command}' failed\n").into_bytes()
                    }
                }
            }
        }
    };
    match tokio::time::timeout(WRITE_TIMEOUT, reply_pipe.write_all(&bytes)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("mi_fifo: writing the reply to {path} failed: {e}"),
        Err(_) => tracing::warn!("mi_fifo: the client at {path} did not read its reply in time: given up"),
    }
}

/// Opens the client's reply FIFO for writing without blocking, retrying
/// while nobody reads it yet; checks that it is a FIFO of its own.
async fn open_reply(path: &str) -> Option<pipe::Sender> {
    let mut retries = REPLY_RETRIES;
    let file = loop {
        let opened = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path);
        match opened {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && retries > 0 => {
                retries -= 1;
                tokio::time::sleep(REPLY_WAIT).await;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                tracing::warn!("mi_fifo: no client reads {path}: reply dropped");
                return None;
            }
            Err(e) => {
                tracing::warn!("mi_fifo: cannot open the reply FIFO {path}: {e}");
                return None;
            }
        }
    };
    if let Err(e) = check_reply_fifo(&file, Path::new(path)) {
        tracing::error!("mi_fifo: security: {path}: {e}");
        return None;
    }
    match pipe::Sender::from_file(file) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("mi_fifo: reply FIFO {path}: {e}");
            None
        }
    }
}

/// 1.3's `mi_fifo_check`: a FIFO, not hard-linked, not a symbolic link, and
/// the file opened is the one at the path.
fn check_reply_fifo(file: &std::fs::File, path: &Path) -> Result<(), String> {
    let opened = file.metadata().map_err(|e| format!("fstat: {e}"))?;
    if !opened.file_type().is_fifo() {
        return Err("not a FIFO".to_string());
    }
    if opened.nlink() > 1 {
        return Err(format!("hard-linked {} times", opened.nlink()));
    }
    let named = std::fs::symlink_metadata(path).map_err(|e| format!("lstat: {e}"))?;
    if named.file_type().is_symlink() {
        return Err("a symbolic link".to_string());
    }
    if named.dev() != opened.dev() || named.ino() != opened.ino() {
        return Err("the file changed while it was opened".to_string());
    }
    Ok(())
}

/// Writes `request` to the FIFO at `fifo` (a client's side, for tests and
/// `serc ctl`): fails rather than blocks when nobody serves it.
pub fn send_request(fifo: &Path, request: &[u8]) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(fifo)?;
    f.write_all(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(reply_dir: &str) -> Server {
        Server {
            mi: Mi::new(),
            opts: Arc::new(FifoOptions {
                fifo_name: PathBuf::from("/nonexistent"),
                mode: 0o600,
                reply_dir: reply_dir.to_string(),
                reply_indent: "\t".to_string(),
                uid: None,
                gid: None,
            }),
            permits: Arc::new(Semaphore::new(1)),
        }
    }

    #[test]
    fn requests_are_framed_by_empty_lines() {
        let s = server("/tmp/");
        let mut p = Pending::default();
        assert!(s.line(&mut p, b"").is_none(), "stray empty line skipped");
        assert!(s.line(&mut p, b":get_statistics:r1").is_none());
        assert!(s.line(&mut p, b"all").is_none());
        let done = s.line(&mut p, b"").expect("the empty line ends it");
        assert_eq!(
            done.head,
            Some(Ok(FifoCommand { command: "get_statistics".into(), reply_file: Some("r1".into()) }))
        );
        assert_eq!(done.lines, vec![b"all".to_vec()]);
        assert!(p.head.is_none());
        assert!(s.line(&mut p, b"garbage").is_none());
        let done = s.line(&mut p, b"").unwrap();
        assert!(matches!(done.head, Some(Err(_))));
    }

    #[test]
    fn oversized_requests_are_marked() {
        let s = server("/tmp/");
        let mut p = Pending::default();
        s.line(&mut p, b":which:r");
        let big = vec![b'x'; 1000];
        for _ in 0..70 {
            s.line(&mut p, &big);
        }
        let done = s.line(&mut p, b"").unwrap();
        assert!(done.too_long);
        assert!(done.lines.is_empty());
    }

    #[test]
    fn modes_and_owners() {
        assert_eq!(parse_mode("0660"), Some(0o660));
        assert_eq!(parse_mode("432"), Some(432));
        assert_eq!(parse_mode("x"), None);
        assert_eq!(owner(Value::Int(-1), "/etc/passwd"), Ok(None));
        assert_eq!(owner(Value::Int(0), "/etc/passwd"), Ok(Some(0)));
        assert_eq!(owner(Value::Str("0".into()), "/etc/passwd"), Ok(Some(0)));
        assert_eq!(owner(Value::Str("root".into()), "/etc/passwd"), Ok(Some(0)));
        assert!(owner(Value::Str("no-such-user-here".into()), "/etc/passwd").is_err());
    }
}
