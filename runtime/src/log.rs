//! The log line: how [`crate::launch::Launch::main`] writes `tracing`'s events
//! to stderr.
//!
//! [`LineFormat`] writes the layout of `tracing_subscriber`'s default (`Full`)
//! format without ANSI colours:
//!
//! ```text
//! 2026-11-28T02:48:00.040758Z ERROR script: new branch at sip:bob@127.0.0.1:5070
//! ```
//!
//! — the time (UTC, microseconds), the level, the spans if any, the target,
//! the message, then the other fields as `name=value`. It exists for speed: a
//! script's `xlog` and acc lines are written while the message is handled,
//! some for every request and reply, and the default format spent more on a
//! line than the script did building it: it escapes a text character by
//! character and turns the clock into a calendar date for every line. Here a
//! line's text is scanned once and copied whole when it holds nothing to
//! escape (the usual case), and each thread turns the clock into a date once
//! a second.
//!
//! What is escaped is what the default format escapes, against terminal
//! injection through logged SIP text: ESC, BEL, BS, FF and DEL as `\x1b` …,
//! the C1 controls U+0080–U+009F as `\u{9b}` ….
//!
//! [`Gathered`] is where the lines go: a write system call per line, as
//! stderr is unbuffered, except while a UDP worker handles a batch of
//! datagrams ([`gather`]). The lines its handling logs are then written
//! together when the batch is handled, before its replies leave: the
//! default config logs a line or two for every request and reply, and those
//! writes were a quarter of the proxy's system calls.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// `tracing_subscriber`'s `fmt` layer writes its events with this
/// (`fmt::layer().event_format(LineFormat)`); see the module's documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write_time(&mut writer, SystemTime::now())?;
        let meta = event.metadata();
        writer.write_str(level_text(*meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, "{{{fields}}}")?;
                    }
                }
                writer.write_char(':')?;
                any = true;
            }
            if any {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields { out: &mut writer, first: true, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// The level as the default format writes it: five wide, right-aligned, and
/// the space after it.
fn level_text(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR ",
        Level::WARN => " WARN ",
        Level::INFO => " INFO ",
        Level::DEBUG => "DEBUG ",
        Level::TRACE => "TRACE ",
    }
}

/// Writes an event's fields in the order they are recorded, a space apart:
/// the message as it is, the others as `name=value` (a `str` value quoted,
/// as `Debug` does); everything escaped.
struct Fields<'w, 'a> {
    out: &'w mut Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// The separator before a field: none before the first.
    fn separate(&mut self) -> fmt::Result {
        if std::mem::take(&mut self.first) {
            Ok(())
        } else {
            self.out.write_char(' ')
        }
    }

    fn name(&mut self, field: &Field) -> fmt::Result {
        self.separate()?;
        let name = field.name();
        write!(Escaped(&mut *self.out), "{}=", name.strip_prefix("r#").unwrap_or(name))
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() != "message" {
            return self.record_debug(field, &value);
        }
        if self.result.is_ok() {
            self.result = self.separate().and_then(|()| Escaped(&mut *self.out).write_str(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            self.separate().and_then(|()| write!(Escaped(&mut *self.out), "{value:?}"))
        } else {
            self.name(field).and_then(|()| write!(Escaped(&mut *self.out), "{value:?}"))
        };
    }
}

/// A writer that escapes what could drive a terminal (see the module's
/// documentation) and copies everything else as it comes.
struct Escaped<'w, W: fmt::Write>(&'w mut W);

/// Whether a text may hold a character to escape: one of the C0 controls
/// or DEL, or the first byte of a C1 control's UTF-8 form (0xC2, which
/// also starts U+00A0–U+00BF: those are then checked one by one).
fn may_need_escape(text: &str) -> bool {
    text.bytes().any(|b| matches!(b, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f | 0xc2))
}

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if !may_need_escape(text) {
            return self.0.write_str(text);
        }
        let mut rest = text;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| escaped(c)) {
            self.0.write_str(&rest[..at])?;
            match c {
                '\x07' | '\x08' | '\x0c' | '\x1b' | '\x7f' => write!(self.0, "\\x{:02x}", u32::from(c))?,
                _ => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn escaped(c: char) -> bool {
    matches!(c, '\x07' | '\x08' | '\x0c' | '\x1b' | '\x7f' | '\u{80}'..='\u{9f}')
}

thread_local! {
    /// The second last written by this thread and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// Writes `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ ` (UTC; a time before 1970
/// as 1970's first second).
fn write_time(out: &mut impl fmt::Write, at: SystemTime) -> fmt::Result {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = civil_text(secs);
        SECOND.set((secs, text));
    }
    // Only ASCII digits and separators are ever written into it.
    out.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)?;
    write!(out, ".{:06}Z ", since.subsec_micros())
}

/// `YYYY-MM-DDTHH:MM:SS` of the UTC second `secs` after 1970 (years past
/// 9999 are written modulo 10000: not a concern of a log).
fn civil_text(secs: u64) -> [u8; 19] {
    let (year, month, day) = civil_date(secs / 86_400);
    let in_day = secs % 86_400;
    let mut text = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, in_day / 3600);
    put(14, 2, in_day / 60 % 60);
    put(17, 2, in_day % 60);
    text
}

/// The proleptic Gregorian (year, month, day) of the `days`-th day after
/// 1970-01-01. Counted in eras of 400 years (146,097 days, the calendar's
/// period) from 0000-03-01, so that each year's leap day comes last.
fn civil_date(days: u64) -> (u64, u64, u64) {
    const ERA_DAYS: u64 = 146_097;
    // 1970-01-01 is day 719,468 after 0000-03-01.
    let days = days + 719_468;
    let era = days / ERA_DAYS;
    let day_of_era = days % ERA_DAYS;
    // Years of the era: 365 days each, plus a leap day every 4, but for
    // every 100 (but for the 400th, the era's last day).
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / (ERA_DAYS - 1)) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 28/29,
    // which (153 · m + 2) / 5 counts.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// Where `tracing`'s lines are written (`fmt::layer().with_writer(…)`):
/// straight to the target each, or, on a thread inside [`gather`], into the
/// thread's buffer, written whole when the outermost [`Gathering`] ends.
///
/// A write to the target holds whole lines and at most [`GATHERED_MAX`]
/// bytes unless one line is longer, so lines of two threads never mix
/// inside a line (a pipe's writes of up to 4,096 bytes are atomic). If the
/// process is killed, the lines of the batch being handled are lost; a
/// panic unwinds through the [`Gathering`], which writes them.
#[derive(Clone)]
pub struct Gathered {
    target: Target,
}

/// Writes some whole lines where they go.
type Target = Arc<dyn Fn(&[u8]) + Send + Sync>;

impl Gathered {
    /// Lines to `target`'s writers (`io::stderr` for the proxy); a failed
    /// write is ignored, as `tracing_subscriber` ignores it.
    pub fn new<M>(target: M) -> Gathered
    where
        M: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    {
        Gathered {
            target: Arc::new(move |bytes: &[u8]| {
                let _ = io::Write::write_all(&mut target.make_writer(), bytes);
            }),
        }
    }
}

impl fmt::Debug for Gathered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gathered")
    }
}

impl<'a> MakeWriter<'a> for Gathered {
    type Writer = GatheredLine<'a>;

    fn make_writer(&'a self) -> GatheredLine<'a> {
        GatheredLine(self)
    }
}

/// One event's line on its way through [`Gathered`]; `tracing_subscriber`
/// writes a line with one `write_all`.
#[derive(Debug)]
pub struct GatheredLine<'a>(&'a Gathered);

impl io::Write for GatheredLine<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let direct = PENDING.with_borrow_mut(|pending| {
            if pending.depth == 0 {
                return true;
            }
            let same = pending.target.as_ref().is_some_and(|t| Arc::ptr_eq(t, &self.0.target));
            if !same || pending.lines.len() + bytes.len() > GATHERED_MAX {
                pending.write_out();
            }
            if pending.target.is_none() {
                pending.target = Some(self.0.target.clone());
            }
            pending.lines.extend_from_slice(bytes);
            false
        });
        if direct {
            (self.0.target)(bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The most bytes of lines one write of a [`Gathering`] carries (`PIPE_BUF`).
pub const GATHERED_MAX: usize = 4096;

/// A thread's gathered lines and their target.
struct Pending {
    /// The [`Gathering`]s alive on the thread.
    depth: u32,
    lines: Vec<u8>,
    target: Option<Target>,
}

impl Pending {
    fn write_out(&mut self) {
        if let Some(target) = self.target.take() {
            if !self.lines.is_empty() {
                target(&self.lines);
            }
        }
        self.lines.clear();
        // A line of a message dumped whole does not keep its size.
        self.lines.shrink_to(2 * GATHERED_MAX);
    }
}

thread_local! {
    static PENDING: RefCell<Pending> = const { RefCell::new(Pending { depth: 0, lines: Vec::new(), target: None }) };
}

/// Until the returned [`Gathering`] is dropped, the lines this thread logs
/// through [`Gathered`] are kept and then written together (see there). It
/// is not `Send`: it cannot be held across an `.await`, after which a task
/// may run on another thread.
pub fn gather() -> Gathering {
    PENDING.with_borrow_mut(|pending| pending.depth += 1);
    Gathering(PhantomData)
}

/// See [`gather`].
#[derive(Debug)]
#[must_use = "the lines are gathered only while it lives"]
pub struct Gathering(PhantomData<*const ()>);

impl Drop for Gathering {
    fn drop(&mut self) {
        // `try_with`: a thread's locals may be gone when it ends.
        let _ = PENDING.try_with(|pending| {
            let mut pending = pending.borrow_mut();
            pending.depth -= 1;
            if pending.depth == 0 {
                pending.write_out();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Each write the target gets, whole.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl io::Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("writes").push(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Writes {
        type Writer = Writes;
        fn make_writer(&'a self) -> Writes {
            self.clone()
        }
    }

    impl Writes {
        /// The writes so far, each as text.
        fn texts(&self) -> Vec<String> {
            self.0.lock().expect("writes").iter().map(|w| String::from_utf8(w.clone()).expect("UTF-8")).collect()
        }
    }

    /// What `log` writes through [`LineFormat`] and through the default
    /// format (without its time, which our lines' first 28 bytes are).
    fn both(log: impl Fn()) -> (String, String) {
        let ours = Writes::default();
        let theirs = Writes::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().event_format(LineFormat).with_writer(ours.clone()))
            .with(tracing_subscriber::fmt::layer().without_time().with_writer(theirs.clone()));
        tracing::subscriber::with_default(subscriber, log);
        (ours.texts().concat(), theirs.texts().concat())
    }

    fn without_time(lines: &str) -> String {
        lines
            .lines()
            .map(|line| {
                let (time, rest) = line.split_at(28);
                assert_eq!(time.len(), 28);
                assert!(time.ends_with("Z "), "{line}");
                format!("{rest}\n")
            })
            .collect()
    }

    #[test]
    fn a_line_is_laid_out_as_the_default_format_lays_it_out() {
        let text = "new branch at sip:bob@127.0.0.1:5070";
        let (ours, theirs) = both(|| {
            tracing::error!(target: "script", "{}", text);
            tracing::warn!(listen = %"udp:127.0.0.1:5060", "listed twice: bound once");
            tracing::info!(target: "acc", "ACC: transaction answered: code=200");
            tracing::debug!(r#type = 3, name = "a \"quoted\" text", "fields");
            tracing::error!(message = text, extra = 1);
            tracing::error!(count = 2);
            let span = tracing::error_span!("call", id = 7);
            let _entered = span.enter();
            tracing::error!(target: "script", "in a span");
        });
        assert_eq!(ours.lines().count(), 7, "{ours}");
        assert_eq!(without_time(&ours), theirs);
        assert!(theirs.starts_with("ERROR script: new branch at sip:bob@127.0.0.1:5070\n"), "{theirs}");
        assert!(theirs.contains("ERROR call{id=7}: script: in a span\n"), "{theirs}");
    }

    #[test]
    fn what_could_drive_a_terminal_is_escaped_as_the_default_format_escapes_it() {
        let texts =
            ["\x1b[31mred\x1b[0m", "bell\x07 back\x08 feed\x0c del\x7f", "c1 \u{9b}2J \u{85}", "¡nbsp\u{a0} é ü ok"];
        let (ours, theirs) = both(|| {
            for text in texts {
                tracing::error!(target: "script", "{}", text);
                tracing::error!(target: "script", message = text, field = text);
            }
        });
        assert_eq!(without_time(&ours), theirs);
        assert!(ours.contains(r"\x1b[31mred\x1b[0m"), "{ours}");
        assert!(ours.contains(r"c1 \u{9b}2J \u{85}"), "{ours}");
        assert!(ours.contains("¡nbsp\u{a0} é ü ok"), "{ours}");
        assert!(!ours.contains('\x1b') && !ours.contains('\u{9b}'), "{ours}");
    }

    /// Runs `log` with the proxy's layer writing to a [`Writes`] through
    /// [`Gathered`]; returns the writes.
    fn gathered(log: impl FnOnce(&Writes)) -> Vec<String> {
        let writes = Writes::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().event_format(LineFormat).with_writer(Gathered::new(writes.clone())));
        tracing::subscriber::with_default(subscriber, || log(&writes));
        writes.texts()
    }

    #[test]
    fn lines_logged_while_gathering_are_written_together_when_it_ends() {
        let writes = gathered(|writes| {
            tracing::error!(target: "script", "alone");
            assert_eq!(writes.texts().len(), 1, "a line outside a gathering is written at once");
            {
                let _outer = gather();
                tracing::error!(target: "script", "one");
                {
                    let _inner = gather();
                    tracing::error!(target: "script", "two");
                }
                tracing::warn!(target: "script", "three");
                assert_eq!(writes.texts().len(), 1, "nothing is written before the outermost gathering ends");
            }
            tracing::error!(target: "script", "after");
        });
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert!(writes[0].ends_with("ERROR script: alone\n"), "{writes:?}");
        let lines: Vec<&str> = writes[1].lines().map(|l| &l[28..]).collect();
        assert_eq!(lines, ["ERROR script: one", "ERROR script: two", " WARN script: three"]);
        assert!(writes[1].ends_with('\n'), "{writes:?}");
        assert!(writes[2].ends_with("ERROR script: after\n"), "{writes:?}");
    }

    #[test]
    fn a_gathered_write_holds_whole_lines_and_at_most_pipe_buf_bytes() {
        let text = "x".repeat(100);
        let long = "y".repeat(GATHERED_MAX + 10);
        let writes = gathered(|_| {
            let _lines = gather();
            for i in 0..100 {
                tracing::error!(target: "script", "{i:03} {text}");
            }
            tracing::error!(target: "script", "{long}");
            tracing::error!(target: "script", "last");
        });
        assert!(writes.len() >= 4, "{} writes", writes.len());
        for write in &writes {
            assert!(write.ends_with('\n'), "a write ends inside a line");
            assert!(write.len() <= GATHERED_MAX || write.lines().count() == 1, "{} bytes", write.len());
        }
        let lines: Vec<String> = writes.concat().lines().map(|l| l[28..].to_owned()).collect();
        let mut expected: Vec<String> = (0..100).map(|i| format!("ERROR script: {i:03} {text}")).collect();
        expected.push(format!("ERROR script: {long}"));
        expected.push("ERROR script: last".to_owned());
        assert_eq!(lines, expected, "every line once, in order");
    }

    #[test]
    fn a_panic_while_gathering_still_writes_the_lines() {
        let writes = gathered(|_| {
            let unwound = std::panic::catch_unwind(|| {
                let _lines = gather();
                tracing::error!(target: "script", "before the panic");
                panic!("in a handler");
            });
            assert!(unwound.is_err());
            tracing::error!(target: "script", "afterwards");
        });
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert!(writes[0].ends_with("ERROR script: before the panic\n"), "{writes:?}");
        assert!(writes[1].ends_with("ERROR script: afterwards\n"), "{writes:?}");
    }

    #[test]
    fn the_time_is_utc_to_the_microsecond() {
        let write = |secs: u64, micros: u64| {
            let mut out = String::new();
            write_time(&mut out, UNIX_EPOCH + Duration::from_micros(secs * 1_000_000 + micros)).expect("write");
            out
        };
        assert_eq!(write(0, 0), "1970-01-01T00:00:00.000000Z ");
        assert_eq!(write(1_795_834_080, 40_758), "2026-11-28T02:48:00.040758Z ");
        // Leap days: a year divisible by 4, by 400; not by 100.
        assert_eq!(write(951_782_400 + 86_399, 999_999), "2000-02-29T23:59:59.999999Z ");
        assert_eq!(write(951_868_800, 1), "2000-03-01T00:00:00.000001Z ");
        assert_eq!(write(1_709_164_800, 0), "2024-02-29T00:00:00.000000Z ");
        assert_eq!(write(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z ");
        assert_eq!(write(4_107_456_000, 0), "2100-02-28T00:00:00.000000Z ");
        assert_eq!(write(1_704_067_199, 0), "2023-12-31T23:59:59.000000Z ");
        // The same second twice (the cached text), then the next.
        assert_eq!(write(1_704_067_199, 5), "2023-12-31T23:59:59.000005Z ");
        assert_eq!(write(1_704_067_200, 0), "2024-01-01T00:00:00.000000Z ");
        // Before 1970: its first second.
        let mut out = String::new();
        write_time(&mut out, UNIX_EPOCH - Duration::from_secs(5)).expect("write");
        assert_eq!(out, "1970-01-01T00:00:00.000000Z ");
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_one_before() {
        // Day by day from 1970 past 2370: the day of month advances by one
        // or the month turns over after its last day, the year after December.
        let days_in = |year: u64, month: u64| match month {
            2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut previous = civil_date(0);
        assert_eq!(previous, (1970, 1, 1));
        for days in 1..146_097 + 366 {
            let (year, month, day) = civil_date(days);
            let (py, pm, pd) = previous;
            if pd < days_in(py, pm) {
                assert_eq!((year, month, day), (py, pm, pd + 1), "day {days}");
            } else if pm < 12 {
                assert_eq!((year, month, day), (py, pm + 1, 1), "day {days}");
            } else {
                assert_eq!((year, month, day), (py + 1, 1, 1), "day {days}");
            }
            previous = (year, month, day);
        }
    }
}
