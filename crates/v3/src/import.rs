//! CSV imports (docs/api/v3.md, "CSV imports": `POST …/bounces/import`,
//! `…/spam_reports/import`, `…/global/import`).
//!
//! The body is read as a stream: each chunk is parsed as it arrives
//! (`csv-core`, the parser under the `csv` crate) and good rows go to the
//! engine's importer, which commits them in bounded batches. Memory holds
//! one chunk, one batch and the first [`ERRORS_MAX`] row errors, whatever
//! the size of the file. An upload cut off mid-body keeps every row parsed
//! before the cut, and says so.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use csv_core::{ReadRecordResult, Reader};
use futures_util::StreamExt as _;
use hush_engine::Importer;
use hush_model::{BounceClass, Email, Kind, NewSuppression, Origin, Scope};

use crate::auth::{V3Key, Write};
use crate::lists::text_problem;
use crate::wire::{ImportReport, ImportRowError, enhanced_status};
use crate::{V3Error, V3State};

/// Row errors listed in the reply; `skipped` counts every one. A file of a
/// million bad rows must not make a reply of a million errors.
pub const ERRORS_MAX: usize = 1000;
/// The most bytes of row errors in a reply: values are echoed cut to
/// [`ECHO_MAX`] characters, and listing stops once this much is listed,
/// whatever the rows hold (1,100 rows of 60 KB addresses made a 60 MB
/// reply when values were echoed whole).
pub const ERRORS_BYTES_MAX: usize = 256 * 1024;
/// The most characters of an echoed value (the row's email, or the error
/// text that quotes it): the longest an address can be.
pub const ECHO_MAX: usize = 254;
/// The longest record accepted. A longer one is almost always an unclosed
/// quote swallowing the rest of the file, which would otherwise be buffered
/// whole.
pub const RECORD_MAX: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the rows of an import become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `email, reason`: hard bounces, the status read from the reason.
    Bounces,
    /// `email, source`: spam complaints.
    SpamReports,
    /// `email`: global unsubscribes.
    Global,
}

impl Target {
    /// The optional second column.
    fn detail_column(self) -> Option<&'static str> {
        match self {
            Self::Bounces => Some("reason"),
            Self::SpamReports => Some("source"),
            Self::Global => None,
        }
    }

    fn kind(self, detail: Option<String>) -> Kind {
        match self {
            Self::Bounces => Kind::Bounce {
                class: BounceClass::Hard,
                status: detail.as_deref().and_then(enhanced_status),
                reason: detail,
            },
            Self::SpamReports => Kind::SpamComplaint { source: detail },
            Self::Global => Kind::Unsubscribe,
        }
    }
}

pub async fn bounces(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, V3Error> {
    import(Target::Bounces, key, &state, &req, body).await
}

pub async fn spam_reports(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, V3Error> {
    import(Target::SpamReports, key, &state, &req, body).await
}

pub async fn global(
    key: V3Key<Write>,
    state: web::Data<V3State>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, V3Error> {
    import(Target::Global, key, &state, &req, body).await
}

/// `text/csv` is what the seed names. A body the client labels as JSON or
/// a form is refused before anything is read; a missing label, `text/plain`
/// and `application/octet-stream` (what many uploaders send) are read as
/// CSV. curl's `--data-binary` without `-H 'Content-Type: text/csv'` labels
/// the body `application/x-www-form-urlencoded`, which is refused with a
/// 415 (docs/api/v3.md, "CSV imports").
fn check_content_type(req: &HttpRequest) -> Result<(), V3Error> {
    let Some(value) = req.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" | "text/csv" | "application/csv" | "text/plain" | "application/octet-stream" => Ok(()),
        other => Err(V3Error::UnsupportedMediaType(format!(
            "an import body is CSV (Content-Type: text/csv); got {other}"
        ))),
    }
}

/// The running state of one import.
#[derive(Debug)]
struct Progress {
    target: Target,
    importer: Importer,
    skipped: u64,
    errors: Vec<ImportRowError>,
    /// Bytes of `errors`, roughly as the reply will hold them.
    error_bytes: usize,
    /// Column positions, from the header row when there is one.
    columns: Option<Columns>,
    last_row: u64,
}

#[derive(Debug, Clone, Copy)]
struct Columns {
    email: usize,
    detail: Option<usize>,
}

impl Progress {
    fn reject(&mut self, row: u64, email: &str, error: &str) {
        self.skipped += 1;
        if self.errors.len() >= ERRORS_MAX || self.error_bytes >= ERRORS_BYTES_MAX {
            return;
        }
        let listed = ImportRowError {
            row,
            email: echo(email),
            error: echo(error),
        };
        self.error_bytes += listed.email.len() + listed.error.len() + 40;
        self.errors.push(listed);
    }

    /// One parsed record. The first one is a header when its email column
    /// says `email`; otherwise columns are positional (email, then the
    /// detail).
    async fn row(&mut self, record: Record) -> Result<(), V3Error> {
        self.last_row = record.line;
        let columns = match self.columns {
            Some(columns) => columns,
            None => {
                let header: Vec<String> = record
                    .fields
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase())
                    .collect();
                if let Some(email) = header.iter().position(|h| h == "email") {
                    let detail = self
                        .target
                        .detail_column()
                        .and_then(|name| header.iter().position(|h| h == name));
                    self.columns = Some(Columns { email, detail });
                    return Ok(());
                }
                let positional = Columns {
                    email: 0,
                    detail: self.target.detail_column().map(|_| 1),
                };
                self.columns = Some(positional);
                positional
            }
        };
        let field = |at: Option<usize>| {
            at.and_then(|i| record.fields.get(i))
                .map(|bytes| std::str::from_utf8(bytes).map(str::trim))
        };
        let raw_email = match field(Some(columns.email)) {
            Some(Ok(raw)) => raw,
            Some(Err(_)) => {
                self.reject(record.line, "", "the row is not UTF-8 text");
                return Ok(());
            }
            None => "",
        };
        let email = match Email::parse(raw_email) {
            Ok(email) => email,
            Err(err) => {
                self.reject(record.line, raw_email, &err.to_string());
                return Ok(());
            }
        };
        let detail = match field(columns.detail) {
            None => None,
            Some(Ok("")) => None,
            Some(Ok(text)) => {
                let column = self.target.detail_column().unwrap_or("detail");
                if let Some(problem) = text_problem(column, text) {
                    let raw = raw_email.to_owned();
                    self.reject(record.line, &raw, &problem);
                    return Ok(());
                }
                Some(text.to_owned())
            }
            Some(Err(_)) => {
                let raw = raw_email.to_owned();
                self.reject(record.line, &raw, "the row is not UTF-8 text");
                return Ok(());
            }
        };
        // Imported entries record what happened to the recipient elsewhere
        // (docs/mapping.md, "Imports").
        let item = NewSuppression {
            email,
            scope: Scope::Global,
            kind: self.target.kind(detail),
            origin: Origin::Recipient,
            created_at: hush_engine::Engine::now(),
        };
        Ok(self.importer.push(item).await?)
    }
}

/// A value as a reply echoes it: at most [`ECHO_MAX`] characters, marked
/// with `…` when cut.
fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_MAX) {
        None => value.to_owned(),
        Some((at, _)) => format!("{}…", &value[..at]),
    }
}

async fn import(
    target: Target,
    key: V3Key<Write>,
    state: &V3State,
    req: &HttpRequest,
    mut body: web::Payload,
) -> Result<HttpResponse, V3Error> {
    check_content_type(req)?;
    // A body that says it is over the limit is refused before a byte of it
    // is read or a row imported; one without a length (chunked) is cut at
    // the limit as it streams.
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.import_limit) {
        return Err(V3Error::PayloadTooLarge(
            usize::try_from(state.import_limit).unwrap_or(usize::MAX),
        ));
    }
    let mut progress = Progress {
        target,
        // A CSV import is its own door: the journal tells a file's rows from
        // single calls, and names the key that sent the file.
        importer: state.engine.importer(
            key.tenant.clone(),
            hush_model::Actor {
                door: hush_model::Door::IMPORT,
                ..key.actor.clone()
            },
        ),
        skipped: 0,
        errors: Vec::new(),
        error_bytes: 0,
        columns: None,
        last_row: 0,
    };
    let mut parser = CsvRows::new();
    let mut received: u64 = 0;
    let mut rows = Vec::new();
    let outcome: Result<(), Interruption> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| Interruption::CutOff(err.to_string()))?;
            let room = state.import_limit.saturating_sub(received);
            received += chunk.len() as u64;
            // The part of the chunk within the limit is still read, so
            // every record wholly before the limit is imported
            // (docs/configuration.md, server.max_import_bytes); the record
            // the limit cuts is not.
            let over = received > state.import_limit;
            let within = if over {
                &chunk[..usize::try_from(room).unwrap_or(usize::MAX).min(chunk.len())]
            } else {
                &chunk[..]
            };
            parser.feed(within, &mut rows)?;
            for record in rows.drain(..) {
                progress.row(record).await?;
            }
            if over {
                progress.last_row = parser.position();
                return Err(Interruption::TooLarge);
            }
        }
        parser.finish(&mut rows)?;
        for record in rows.drain(..) {
            progress.row(record).await?;
        }
        Ok(())
    }
    .await;
    // Rows parsed before any failure are whole records: keep them too.
    let flushed = progress.importer.flush().await.map_err(V3Error::from);
    let imported = progress.importer.committed();
    let skipped = progress.skipped;
    let last_row = progress.last_row;
    match (outcome, flushed) {
        (Ok(()), Ok(())) => {
            tracing::info!(request_id = %hush_engine::request::current(), tenant = %key.tenant, ?target, imported, skipped, "import finished");
            Ok(HttpResponse::Ok().json(ImportReport {
                imported,
                skipped,
                errors: progress.errors,
            }))
        }
        (Err(Interruption::Failed(err)), _) | (_, Err(err)) => {
            tracing::warn!(request_id = %hush_engine::request::current(), tenant = %key.tenant, ?target, imported, skipped, last_row, "import stopped by a failure; committed rows stay");
            Err(err)
        }
        (Err(Interruption::TooLarge), _) => {
            tracing::warn!(request_id = %hush_engine::request::current(), tenant = %key.tenant, ?target, imported, skipped, last_row, limit = state.import_limit, "import over the size limit; committed rows stay");
            Err(V3Error::ImportTooLarge {
                limit: state.import_limit,
                imported,
                last_row,
            })
        }
        (Err(Interruption::CutOff(reason)), _) => {
            // The client has most likely gone; the log is where this is
            // read. If it is still there, it gets the counts.
            tracing::warn!(request_id = %hush_engine::request::current(), tenant = %key.tenant, ?target, imported, skipped, last_row, %reason, "import cut off mid-body; committed rows stay");
            Err(V3Error::ImportCutOff {
                imported,
                skipped,
                last_row,
                reason,
            })
        }
        (Err(Interruption::RecordTooLong(row)), _) => {
            tracing::warn!(request_id = %hush_engine::request::current(), tenant = %key.tenant, ?target, imported, skipped, row, "import stopped at an over-long record; committed rows stay");
            Err(V3Error::bad_request(
                "body",
                format!(
                    "the record starting on line {row} is longer than {RECORD_MAX} bytes (an unclosed quote?); the import stopped there: {imported} rows before it were imported and stay, {skipped} were skipped"
                ),
            ))
        }
    }
}

/// Why an import stopped before the end of its body.
#[derive(Debug)]
enum Interruption {
    CutOff(String),
    TooLarge,
    RecordTooLong(u64),
    Failed(V3Error),
}

impl From<V3Error> for Interruption {
    fn from(err: V3Error) -> Self {
        Self::Failed(err)
    }
}

/// One CSV record and the 1-based line it starts on.
#[derive(Debug)]
struct Record {
    line: u64,
    fields: Vec<Vec<u8>>,
}

/// Drives `csv-core` over chunks as they arrive. Blank lines are skipped
/// here, before the parser sees them, so that each record's first line is
/// known exactly; quoted fields may span lines.
#[derive(Debug)]
struct CsvRows {
    reader: Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
    out_len: usize,
    ends_len: usize,
    /// The line the next byte is on.
    line: u64,
    /// Whether the last byte counted was a `\r`, so that a `\n` after it
    /// (even in the next chunk) ends no second line.
    after_cr: bool,
    /// The line the record being read started on; `None` between records.
    record_line: Option<u64>,
    /// Whether the start of the body, where a BOM may be, is behind.
    started: bool,
    /// Whether the first record was emitted (a BOM split across chunks
    /// ends up in its first field).
    first_done: bool,
}

impl CsvRows {
    fn new() -> Self {
        Self {
            reader: Reader::new(),
            output: vec![0; 1024],
            ends: vec![0; 8],
            out_len: 0,
            ends_len: 0,
            line: 1,
            after_cr: false,
            record_line: None,
            started: false,
            first_done: false,
        }
    }

    fn feed(&mut self, mut input: &[u8], rows: &mut Vec<Record>) -> Result<(), Interruption> {
        if !self.started && !input.is_empty() {
            // A BOM before a quoted field must go before parsing.
            input = input.strip_prefix(BOM).unwrap_or(input);
            self.started = true;
        }
        loop {
            if self.record_line.is_none() {
                while let Some((&byte, rest)) = input.split_first() {
                    if byte != b'\n' && byte != b'\r' {
                        break;
                    }
                    self.count_lines(&[byte]);
                    input = rest;
                }
                if input.is_empty() {
                    return Ok(());
                }
                self.record_line = Some(self.line);
            }
            if self.step(&mut input, rows)? {
                return Ok(());
            }
        }
    }

    /// The line of the record being read, or of the next one.
    fn position(&self) -> u64 {
        self.record_line.unwrap_or(self.line)
    }

    /// Counts line breaks as the parser delimits records: `\r\n`, a bare
    /// `\n` and a bare `\r` each end one line (csv-core's default
    /// terminator), also inside quoted fields.
    fn count_lines(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            match byte {
                b'\r' => self.line += 1,
                b'\n' if !self.after_cr => self.line += 1,
                _ => {}
            }
            self.after_cr = byte == b'\r';
        }
    }

    /// The end of the body: a last record without a line break.
    fn finish(&mut self, rows: &mut Vec<Record>) -> Result<(), Interruption> {
        if self.record_line.is_none() {
            return Ok(());
        }
        let mut empty: &[u8] = &[];
        while !self.step(&mut empty, rows)? {}
        Ok(())
    }

    /// Parses from `input`; true when more input is needed (or the end was
    /// reached), false when a record ended and parsing may go on.
    fn step(&mut self, input: &mut &[u8], rows: &mut Vec<Record>) -> Result<bool, Interruption> {
        loop {
            let (result, read, wrote, ended) = self.reader.read_record(
                input,
                &mut self.output[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            self.count_lines(&input[..read]);
            *input = &input[read..];
            self.out_len += wrote;
            self.ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty => return Ok(true),
                ReadRecordResult::End => {
                    self.record_line = None;
                    return Ok(true);
                }
                ReadRecordResult::OutputFull => {
                    if self.output.len() >= RECORD_MAX {
                        return Err(Interruption::RecordTooLong(
                            self.record_line.unwrap_or(self.line),
                        ));
                    }
                    let grown = self.output.len() * 2;
                    self.output.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() >= RECORD_MAX {
                        return Err(Interruption::RecordTooLong(
                            self.record_line.unwrap_or(self.line),
                        ));
                    }
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    let mut fields = Vec::with_capacity(self.ends_len);
                    let mut start = 0;
                    for &end in &self.ends[..self.ends_len] {
                        fields.push(self.output[start..end].to_vec());
                        start = end;
                    }
                    if !self.first_done {
                        self.first_done = true;
                        if let Some(first) = fields.first_mut()
                            && first.starts_with(BOM)
                        {
                            first.drain(..BOM.len());
                        }
                    }
                    rows.push(Record {
                        line: self.record_line.take().unwrap_or(self.line),
                        fields,
                    });
                    self.out_len = 0;
                    self.ends_len = 0;
                    return Ok(false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<(u64, Vec<String>)> {
        let mut parser = CsvRows::new();
        let mut rows = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut rows).expect("feed");
        }
        parser.finish(&mut rows).expect("finish");
        rows.into_iter()
            .map(|r| {
                (
                    r.line,
                    r.fields
                        .into_iter()
                        .map(|f| String::from_utf8(f).expect("utf-8"))
                        .collect(),
                )
            })
            .collect()
    }

    fn owned(line: u64, fields: &[&str]) -> (u64, Vec<String>) {
        (line, fields.iter().map(|f| (*f).to_owned()).collect())
    }

    #[test]
    fn lines_bom_crlf_quotes_and_blank_lines() {
        let body = b"\xEF\xBB\xBFemail,reason\r\na@x.com,\"multi\r\nline, quoted\"\r\n\r\nb@x.com,\"say \"\"hi\"\"\"\nc@x.com";
        let expected = vec![
            owned(1, &["email", "reason"]),
            owned(2, &["a@x.com", "multi\r\nline, quoted"]),
            owned(5, &["b@x.com", "say \"hi\""]),
            owned(6, &["c@x.com"]),
        ];
        assert_eq!(parse(&[body]), expected);
        // The same bytes in chunks of every size give the same records.
        for size in 1..body.len() {
            let chunks: Vec<&[u8]> = body.chunks(size).collect();
            assert_eq!(parse(&chunks), expected, "chunk size {size}");
        }
    }

    #[test]
    fn bare_cr_and_mixed_line_endings_count_one_line_each() {
        let body = b"email\rbad\rok9@example.com\rbad2\r";
        let expected = vec![
            owned(1, &["email"]),
            owned(2, &["bad"]),
            owned(3, &["ok9@example.com"]),
            owned(4, &["bad2"]),
        ];
        assert_eq!(parse(&[body]), expected);
        // CRLF, LF and CR mixed, a blank CR line, a CR inside quotes, and a
        // CRLF split across chunks.
        let mixed = b"a@x.com\r\nb@x.com\n\rc@x.com,\"x\ry\"\rd@x.com";
        let expected = vec![
            owned(1, &["a@x.com"]),
            owned(2, &["b@x.com"]),
            owned(4, &["c@x.com", "x\ry"]),
            owned(6, &["d@x.com"]),
        ];
        for size in 1..mixed.len() {
            let chunks: Vec<&[u8]> = mixed.chunks(size).collect();
            assert_eq!(parse(&chunks), expected, "chunk size {size}");
        }
    }

    #[test]
    fn long_records_grow_the_buffers_up_to_a_limit() {
        let reason = "r".repeat(5000);
        let body = format!("a@x.com,{reason}\n");
        assert_eq!(
            parse(&[body.as_bytes()]),
            vec![owned(1, &["a@x.com", &reason])]
        );
        let mut parser = CsvRows::new();
        let mut rows = Vec::new();
        let unclosed = format!("a@x.com\n\"{}", "x".repeat(RECORD_MAX * 2));
        let result = parser.feed(unclosed.as_bytes(), &mut rows);
        assert!(matches!(result, Err(Interruption::RecordTooLong(2))));
        assert_eq!(rows.len(), 1, "the record before it was read");
    }
}
