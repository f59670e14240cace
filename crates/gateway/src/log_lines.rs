//! How log lines are formatted and written: the cheap path for the one line
//! every request writes.
//!
//! In the lookup benchmark, logging that line through tracing's default
//! text format and `tracing-appender`'s channel and writer thread cost 1.7
//! µs of the gateway's 8.9 µs per request, the largest cost of a lookup
//! after the kernel's share (docs/benchmarks.md). Two things here make it
//! cheaper without giving up a line:
//!
//! - [`TextFormat`] writes tracing's default layout (`<time> <LEVEL>
//!   <target>: <message> <field>=<value>…`) directly: the date is worked out
//!   once a second per thread, not per line, and nothing is styled.
//! - [`BatchedStderr`] collects each thread's lines in a buffer of its own
//!   and writes it to stderr in one `write` when it fills, and at least
//!   every [`FLUSH_EVERY`] (a flusher thread). No channel, no wake-up of
//!   another thread per line. Warnings and errors are written at once, so
//!   the lines that explain a failure are on disk before anything else
//!   happens. Nothing is dropped: a full buffer is written by the thread
//!   that filled it. A `kill -9` loses at most the last [`FLUSH_EVERY`] of
//!   info lines, as a queue in front of a writer thread would.

use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The longest an info line waits in a buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this full is written by the thread that filled it.
const FLUSH_AT: usize = 32 * 1024;

type Buffer = Arc<Mutex<Vec<u8>>>;

struct Shared {
    /// Every thread's buffer, for the flusher.
    buffers: Mutex<Vec<Buffer>>,
    stopping: AtomicBool,
}

impl Shared {
    fn flush_all(&self) {
        let buffers = self
            .buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for buffer in buffers {
            write_out(&mut buffer.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

/// Writes a buffer to stderr and empties it. Held under the buffer's lock,
/// so one thread's lines stay in order. A failed write to stderr has
/// nowhere to be reported; the lines are dropped rather than retried.
fn write_out(buffer: &mut Vec<u8>) {
    if !buffer.is_empty() {
        let _ = std::io::stderr().write_all(buffer);
        buffer.clear();
    }
}

thread_local! {
    static MINE: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// The `MakeWriter` of [the module](self).
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

/// Keep it until exit: dropping it stops the flusher and writes every
/// buffered line.
pub struct FlushGuard {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl BatchedStderr {
    pub fn start() -> (Self, FlushGuard) {
        let shared = Arc::new(Shared {
            buffers: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let for_flusher = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("hush-log".into())
            .spawn(move || {
                while !for_flusher.stopping.load(Ordering::Acquire) {
                    std::thread::park_timeout(FLUSH_EVERY);
                    for_flusher.flush_all();
                }
            })
            .ok();
        (
            Self {
                shared: Arc::clone(&shared),
            },
            FlushGuard { shared, flusher },
        )
    }

    fn buffer(&self) -> Buffer {
        MINE.with(|mine| {
            Arc::clone(mine.borrow_mut().get_or_insert_with(|| {
                let buffer: Buffer = Arc::new(Mutex::new(Vec::with_capacity(FLUSH_AT * 2)));
                self.shared
                    .buffers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Arc::clone(&buffer));
                buffer
            }))
        })
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(flusher) = self.flusher.take() {
            flusher.thread().unpark();
            let _ = flusher.join();
        }
        self.shared.flush_all();
    }
}

/// One line's writer: appends to the thread's buffer.
pub struct LineWriter {
    buffer: Buffer,
    at_once: bool,
    shared: Arc<Shared>,
}

impl LineWriter {
    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }
}

impl std::io::Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.extend_from_slice(bytes);
        // After the guard is dropped no flusher runs: lines logged while
        // the process winds down are written at once.
        if self.at_once || buffer.len() >= FLUSH_AT || self.stopping() {
            write_out(&mut buffer);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        write_out(&mut self.buffer.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            buffer: self.buffer(),
            at_once: false,
            shared: Arc::clone(&self.shared),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LineWriter {
            buffer: self.buffer(),
            at_once: *meta.level() <= Level::WARN,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// tracing's default text layout, without span context (hush opens no
/// spans; a request's id is a field of its line) and without styling.
pub struct TextFormat;

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_now(&mut writer)?;
        let meta = event.metadata();
        write!(writer, " {:>5} {}: ", meta.level(), meta.target())?;
        let mut fields = Fields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

struct Fields<'w, 'a> {
    writer: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            // Quoted and escaped, as tracing's default format writes a
            // string field: a value cannot forge a line of its own.
            self.result = match field.name() {
                "message" => self.writer.write_str(value),
                name => write!(self.writer, " {name}={value:?}"),
            };
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = write!(self.writer, " {}={value}", field.name());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_ok() {
            self.result = write!(self.writer, " {}={value}", field.name());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.result.is_ok() {
            self.result = write!(self.writer, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = match field.name() {
                "message" => write!(self.writer, "{value:?}"),
                name => write!(self.writer, " {name}={value:?}"),
            };
        }
    }
}

thread_local! {
    /// The second last formatted and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-12-01T10:25:04.446371Z`, in UTC, as tracing's default timer.
fn write_now(writer: &mut Writer<'_>) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs();
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != seconds {
            second.1 = civil_time(seconds);
            second.0 = seconds;
        }
        write!(writer, "{}.{:06}Z", second.1, now.subsec_micros())
    })
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time (Howard Hinnant's days-to-civil).
fn civil_time(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let rest = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_has_tracings_layout_with_strings_quoted() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(TextFormat)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = "/v3/x";
            tracing::info!(request_id = %"abc", path = %path, status = 200u16, ok = true, note = "two\nlines", "request");
        });
        let text = String::from_utf8(
            captured
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
        .unwrap_or_default();
        let (time, rest) = text.split_once(' ').unwrap_or_default();
        assert_eq!(time.len(), "2026-12-01T10:25:04.446371Z".len(), "{text}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{text}");
        assert_eq!(
            rest,
            " INFO hush::log_lines::tests: request request_id=abc path=/v3/x status=200 ok=true note=\"two\\nlines\"\n"
        );
    }

    #[test]
    fn civil_time_matches_known_dates() {
        assert_eq!(civil_time(0), "1970-01-01T00:00:00");
        assert_eq!(civil_time(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(civil_time(1_796_119_504), "2026-12-01T10:05:04");
        assert_eq!(civil_time(4_107_542_399), "2100-02-28T23:59:59");
    }
}
