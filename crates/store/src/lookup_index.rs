//! The lookup index: every entry of every address, in memory, compactly, so
//! that a send check (`Backend::entries`) is answered without a database
//! read. Both stores use it: SQLite as below, PostgreSQL as a mirror kept
//! current from the database's change log (`postgres/mirror.rs`, which
//! says why that one is exact).
//!
//! Why it can be exact on SQLite: the backend holds the file's serving lock
//! (`SqliteBackend::open`), so every write to the file goes through this
//! process's writer thread. The index is built from the file at open, and
//! the writer applies each command's change to it after the transaction
//! that holds the change has committed and before the command is
//! acknowledged. A lookup that starts after a write was acknowledged
//! therefore sees it; a lookup racing an unacknowledged write may see it
//! or not, as it may in SQLite.
//!
//! Why it is compact: a benchmark lookup that read SQLite cost about 20 µs
//! of CPU in the gateway against 7 µs for one answered from memory
//! (docs/benchmarks.md), and the same process must stay within 150 MB
//! while it imports or dumps a 1,000,000-entry list (the benchmark's
//! memory limit, docs/benchmarks.md). So an
//! address is one record of bytes in a chunked arena, not a tree of
//! `String`s:
//!
//! - the address is its local part and a reference to its domain, and the
//!   texts (a bounce's status and reason, a complaint's source) are
//!   references into a table of distinct texts. A text that contains the
//!   address is stored as the parts around it (a remote MTA's reply
//!   usually quotes the recipient: `550 5.1.1 <a@b.example>: user
//!   unknown`), so one reply text shared by a million bounces is stored
//!   once. Decoding puts the address back where it was: exact.
//! - a hash table of 4-byte record handles finds an address's record.
//! - a change writes a new record and leaves the old one as garbage; the
//!   oldest chunks are compacted a chunk at a time, so memory never holds a
//!   second copy of the index.
//!
//! Bounded: when the index would grow past its budget
//! (`storage.lookup_index_mib`), the tenant whose write crossed it is
//! dropped from the index and its lookups go back to SQLite (behind the
//! address filter) until the next start. Interned texts are a tenant's own
//! and go with it; they count against the budget.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{PoisonError, RwLock};

use hashbrown::{DefaultHashBuilder, HashTable};
use hush_model::{
    Email, GroupId, KindFamily, Origin, Scope, Suppression, SuppressionId, TenantId, Timestamp,
};

use crate::sqlite::sql;

/// The index's budget unless told otherwise, in MiB, for either store. On
/// the benchmark's data (a bounce and an unsubscribe per address)
/// 1,000,000 addresses take 48 MiB (docs/benchmarks.md).
pub const DEFAULT_LOOKUP_INDEX_MIB: usize = 128;

/// How large a chunk of records is. A record larger than this (an address
/// with thousands of entries) cannot be indexed; its tenant is dropped.
const CHUNK: usize = 1 << 20;
/// Chunks a tenant may have: handles are 4 bytes, 12 bits of chunk and 20
/// of offset (4 GiB, far past any budget).
const MAX_CHUNKS: usize = 1 << 12;
/// Compaction starts when garbage exceeds this share of the live bytes
/// (and [`CHUNK`]).
const GARBAGE_SHARE: usize = 8;

/// Where a record starts: chunk and offset, in 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Handle(u32);

impl Handle {
    fn new(chunk: usize, at: usize) -> Option<Self> {
        (chunk < MAX_CHUNKS && at < CHUNK)
            .then(|| Self(u32::try_from((chunk << 20) | at).unwrap_or(u32::MAX)))
    }

    fn chunk(self) -> usize {
        (self.0 >> 20) as usize
    }

    fn at(self) -> usize {
        (self.0 & 0xF_FFFF) as usize
    }
}

// ---------------------------------------------------------------------------
// Byte encoding: LEB128 varints, and fixed 8 bytes for timestamps.

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads records this module wrote; a short or malformed record is a bug,
/// answered by a panic-free zero rather than a read past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn varint(&mut self) -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        while let Some(&byte) = self.bytes.get(self.at) {
            self.at += 1;
            value |= u64::from(byte & 0x7F) << shift;
            if byte < 0x80 || shift >= 63 {
                break;
            }
            shift += 7;
        }
        value
    }

    fn byte(&mut self) -> u8 {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte
    }

    fn take(&mut self, len: usize) -> &'a [u8] {
        let end = (self.at + len).min(self.bytes.len());
        let slice = self.bytes.get(self.at..end).unwrap_or_default();
        self.at = end;
        slice
    }

    fn fixed_i64(&mut self) -> i64 {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8).get(..8).unwrap_or(&[0; 8]));
        i64::from_le_bytes(raw)
    }
}

// ---------------------------------------------------------------------------
// Texts: interned, with the address cut out.

/// A text as stored: its pieces between occurrences of the address it
/// belongs to (one piece when it does not contain the address). Joining
/// the pieces with the address gives the text back exactly.
#[derive(Debug, PartialEq, Eq)]
struct Text {
    pieces: Box<[Box<str>]>,
}

impl Text {
    fn bytes(&self) -> usize {
        self.pieces.iter().map(|p| p.len() + 16).sum::<usize>() + 32
    }

    fn is(&self, pieces: &[&str]) -> bool {
        self.pieces.len() == pieces.len() && self.pieces.iter().zip(pieces).all(|(a, b)| &**a == *b)
    }
}

#[derive(Default)]
struct Texts {
    items: Vec<Text>,
    table: HashTable<u32>,
    bytes: usize,
}

impl Texts {
    fn hash<'a>(hasher: &DefaultHashBuilder, pieces: impl Iterator<Item = &'a str>) -> u64 {
        let mut state = hasher.build_hasher();
        for piece in pieces {
            std::hash::Hash::hash(piece, &mut state);
        }
        std::hash::Hasher::finish(&state)
    }

    fn find(&self, hasher: &DefaultHashBuilder, pieces: &[&str]) -> (u64, Option<u32>) {
        let hash = Self::hash(hasher, pieces.iter().copied());
        let items = &self.items;
        let found = self
            .table
            .find(hash, |&i| {
                items.get(i as usize).is_some_and(|t| t.is(pieces))
            })
            .copied();
        (hash, found)
    }

    /// The reference of `text` as a text of `email` (an empty `email` cuts
    /// nothing out): 0 for none, else the index in `items` plus one.
    fn intern(&mut self, hasher: &DefaultHashBuilder, text: Option<&str>, email: &str) -> u64 {
        let Some(text) = text else { return 0 };
        let pieces: Vec<&str> = if email.is_empty() {
            vec![text]
        } else {
            text.split(email).collect()
        };
        let index = match self.find(hasher, &pieces) {
            (_, Some(i)) => i,
            (hash, None) => {
                let i = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
                let item = Text {
                    pieces: pieces.iter().map(|p| Box::<str>::from(*p)).collect(),
                };
                self.bytes += item.bytes();
                self.items.push(item);
                let items = &self.items;
                self.table.insert_unique(hash, i, |&i| {
                    items
                        .get(i as usize)
                        .map_or(0, |t| Self::hash(hasher, t.pieces.iter().map(|p| &**p)))
                });
                i
            }
        };
        u64::from(index) + 1
    }

    fn get(&self, reference: u64, email: &str) -> Option<String> {
        let item = self
            .items
            .get(usize::try_from(reference.checked_sub(1)?).ok()?)?;
        Some(item.pieces.join(email))
    }

    fn footprint(&self) -> usize {
        self.bytes + self.table.capacity() * 5
    }
}

// ---------------------------------------------------------------------------
// Records.

/// One entry, encoded; `key` orders an address's entries newest first.
struct EncodedEntry {
    key: (i64, i64),
    bytes: Vec<u8>,
}

/// Which texts a family has: a bounce's status and reason, an invalid
/// entry's reason, a complaint's source (`sql::kind_columns`).
fn texts_of(family: KindFamily) -> usize {
    match family {
        KindFamily::Bounce => 2,
        KindFamily::Invalid | KindFamily::Spam => 1,
        KindFamily::Unsubscribe | KindFamily::Manual => 0,
    }
}

/// Family (3 bits), origin (2) and bounce class (2, 3 = none) in a byte.
fn pack(family: i64, origin: i64, class: Option<i64>) -> Option<u8> {
    let (family, origin) = (u8::try_from(family).ok()?, u8::try_from(origin).ok()?);
    let class = match class {
        None => 3,
        Some(code) => u8::try_from(code).ok().filter(|c| *c < 3)?,
    };
    (family < 8 && origin < 4).then_some(family | (origin << 3) | (class << 5))
}

fn unpack(byte: u8) -> (i64, i64, Option<i64>) {
    let class = match byte >> 5 {
        3 => None,
        code => Some(i64::from(code)),
    };
    (i64::from(byte & 7), i64::from((byte >> 3) & 3), class)
}

/// Entry layout: id (varint), group id (varint, 0 = Global), the packed
/// family, origin and class, created_at (8 bytes), then the family's text
/// references (varint, 0 = none). `None` for what cannot be encoded (a
/// negative id, which SQLite's AUTOINCREMENT never assigns).
fn encode_entry(
    texts: &mut Texts,
    hasher: &DefaultHashBuilder,
    entry: &Suppression,
) -> Option<EncodedEntry> {
    let email = entry.email.as_str();
    let family = entry.kind.family();
    let (class, status, reason, source) = sql::kind_columns(&entry.kind);
    let mut bytes = Vec::with_capacity(20);
    put_varint(&mut bytes, u64::try_from(entry.id.0).ok()?);
    put_varint(
        &mut bytes,
        u64::try_from(sql::group_column(entry.scope)).ok()?,
    );
    bytes.push(pack(family.code(), entry.origin.code(), class)?);
    bytes.extend_from_slice(&entry.created_at.as_nanos().to_le_bytes());
    let family_texts: &[Option<&str>] = match family {
        KindFamily::Bounce => &[status, reason],
        KindFamily::Invalid => &[reason],
        KindFamily::Spam => &[source],
        KindFamily::Unsubscribe | KindFamily::Manual => &[],
    };
    for text in family_texts {
        put_varint(&mut bytes, texts.intern(hasher, *text, email));
    }
    Some(EncodedEntry {
        key: (entry.created_at.as_nanos(), entry.id.0),
        bytes,
    })
}

fn decode_entry(
    reader: &mut Reader<'_>,
    texts: &Texts,
    tenant: &TenantId,
    email: &Email,
) -> Option<Suppression> {
    let id = i64::try_from(reader.varint()).ok()?;
    let group = i64::try_from(reader.varint()).ok()?;
    let (family, origin, class) = unpack(reader.byte());
    let family = KindFamily::from_code(family)?;
    let origin = Origin::from_code(origin)?;
    let created_at = reader.fixed_i64();
    let mut text = || texts.get(reader.varint(), email.as_str());
    let kind = match family {
        KindFamily::Bounce => {
            let status = text();
            sql::kind_from_columns(family, class, status, text(), None)
        }
        KindFamily::Invalid => sql::kind_from_columns(family, class, None, text(), None),
        KindFamily::Spam => sql::kind_from_columns(family, class, None, None, text()),
        KindFamily::Unsubscribe | KindFamily::Manual => {
            sql::kind_from_columns(family, class, None, None, None)
        }
    }
    .ok()?;
    Some(Suppression {
        id: SuppressionId(id),
        tenant: tenant.clone(),
        email: email.clone(),
        scope: match group {
            0 => Scope::Global,
            id => Scope::Group(GroupId(id)),
        },
        kind,
        origin,
        created_at: Timestamp::from_nanos(created_at),
    })
}

/// Skips one encoded entry, returning its bytes and its ordering key.
fn split_entry<'a>(reader: &mut Reader<'a>) -> (&'a [u8], (i64, i64)) {
    let start = reader.at;
    let id = i64::try_from(reader.varint()).unwrap_or(i64::MAX);
    reader.varint();
    let (family, _, _) = unpack(reader.byte());
    let created_at = reader.fixed_i64();
    let family = KindFamily::from_code(family).unwrap_or(KindFamily::Unsubscribe);
    for _ in 0..texts_of(family) {
        reader.varint();
    }
    let bytes = reader.bytes.get(start..reader.at).unwrap_or_default();
    (bytes, (created_at, id))
}

/// Record layout: total length (varint), local part length (varint), local
/// part, domain reference (varint), entry count (varint), entries.
struct RecordView<'a> {
    local: &'a [u8],
    domain: u64,
    count: u64,
    entries: &'a [u8],
}

fn view(record: &[u8]) -> RecordView<'_> {
    let mut reader = Reader::new(record);
    let total = usize::try_from(reader.varint()).unwrap_or(0);
    let body_end = total.min(record.len());
    let local_len = usize::try_from(reader.varint()).unwrap_or(0);
    let local = reader.take(local_len);
    let domain = reader.varint();
    let count = reader.varint();
    let entries = record
        .get(reader.at.min(body_end)..body_end)
        .unwrap_or_default();
    RecordView {
        local,
        domain,
        count,
        entries,
    }
}

fn split_address(email: &str) -> (&str, &str) {
    email.rsplit_once('@').unwrap_or((email, ""))
}

// ---------------------------------------------------------------------------
// One tenant's index.

#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    live: usize,
}

#[derive(Default)]
struct TenantIndex {
    table: HashTable<Handle>,
    chunks: Vec<Chunk>,
    /// The chunks in use, oldest first; records are appended to the last.
    /// A compacted chunk's slot is reused, so handles (12 bits of chunk)
    /// last however many records are ever written.
    order: std::collections::VecDeque<usize>,
    /// Slots of `chunks` free for reuse.
    free: Vec<usize>,
    live: usize,
    garbage: usize,
    domains: Texts,
    /// The tenant's texts: its own, so that dropping a tenant over the
    /// budget frees them too (shared texts, never freed, once made every
    /// later tenant go the same way).
    texts: Texts,
}

/// One committed write's effect on an address, as the writer applies it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    Added(&'a Suppression),
    Removed(&'a str, SuppressionId),
    /// Every entry of the address goes; the `Added` that follow it (in the
    /// same `apply`) are what it holds now. How the PostgreSQL mirror
    /// replaces an address that another instance changed: it learns which
    /// addresses changed, not how (`postgres/mirror.rs`).
    Cleared(&'a str),
}

impl Change<'_> {
    fn email(&self) -> &str {
        match self {
            Self::Added(entry) => entry.email.as_str(),
            Self::Removed(email, _) | Self::Cleared(email) => email,
        }
    }
}

impl TenantIndex {
    fn record(&self, handle: Handle) -> &[u8] {
        record_in(&self.chunks, handle)
    }

    fn email_matches(&self, handle: Handle, local: &str, domain: Option<u64>) -> bool {
        let record = view(self.record(handle));
        record.local == local.as_bytes() && Some(record.domain) == domain
    }

    fn domain_ref(&self, hasher: &DefaultHashBuilder, domain: &str) -> Option<u64> {
        self.domains
            .find(hasher, &[domain])
            .1
            .map(|i| u64::from(i) + 1)
    }

    fn hash_of(hasher: &DefaultHashBuilder, local: &[u8], domain: u64) -> u64 {
        hasher.hash_one((local, domain))
    }

    /// The record of `email` and its hash.
    fn find(&self, hasher: &DefaultHashBuilder, email: &str) -> Option<(Handle, u64)> {
        let (local, domain) = split_address(email);
        let domain = self.domain_ref(hasher, domain)?;
        let hash = Self::hash_of(hasher, local.as_bytes(), domain);
        self.table
            .find(hash, |&h| self.email_matches(h, local, Some(domain)))
            .map(|&h| (h, hash))
    }

    fn entries(
        &self,
        hasher: &DefaultHashBuilder,
        texts: &Texts,
        tenant: &TenantId,
        email: &Email,
    ) -> Option<Vec<Suppression>> {
        let Some((handle, _)) = self.find(hasher, email.as_str()) else {
            return Some(Vec::new());
        };
        let record = view(self.record(handle));
        let mut reader = Reader::new(record.entries);
        // All or nothing: a record that does not decode whole (a bug) is
        // no answer, and the lookup reads SQLite, rather than a short one.
        (0..record.count)
            .map(|_| decode_entry(&mut reader, texts, tenant, email))
            .collect()
    }

    /// Applies changes to one address: the record is rewritten (or removed
    /// when no entry is left). False when the record cannot be indexed.
    fn change(
        &mut self,
        hasher: &DefaultHashBuilder,
        texts: &mut Texts,
        email: &str,
        changes: &[Change<'_>],
    ) -> bool {
        let existing = self.find(hasher, email);
        let mut entries: Vec<((i64, i64), Vec<u8>)> = Vec::new();
        if let Some((handle, _)) = existing {
            let record = view(self.record(handle));
            let mut reader = Reader::new(record.entries);
            for _ in 0..record.count {
                let (bytes, key) = split_entry(&mut reader);
                entries.push((key, bytes.to_vec()));
            }
        }
        for change in changes {
            match change {
                Change::Added(entry) => {
                    if entries.iter().any(|(key, _)| key.1 == entry.id.0) {
                        continue;
                    }
                    let Some(encoded) = encode_entry(texts, hasher, entry) else {
                        return false;
                    };
                    entries.push((encoded.key, encoded.bytes));
                }
                Change::Removed(_, id) => entries.retain(|(key, _)| key.1 != id.0),
                Change::Cleared(_) => entries.clear(),
            }
        }
        // Newest first, as SQLite's `ORDER BY created_at DESC, id DESC`.
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        let (local, domain) = split_address(email);
        if let Some((handle, hash)) = existing {
            self.release(handle);
            if let Ok(slot) = self.table.find_entry(hash, |&h| h == handle) {
                slot.remove();
            }
        }
        if entries.is_empty() {
            return true;
        }
        let domain = self.domains.intern(hasher, Some(domain), "");
        let mut body = Vec::with_capacity(16 + local.len() + entries.len() * 24);
        put_varint(&mut body, local.len() as u64);
        body.extend_from_slice(local.as_bytes());
        put_varint(&mut body, domain);
        put_varint(&mut body, entries.len() as u64);
        for (_, bytes) in &entries {
            body.extend_from_slice(bytes);
        }
        let mut record = Vec::with_capacity(body.len() + 4);
        // The length counts itself, so a record can be skipped whole.
        let mut total = body.len() + 1;
        loop {
            let mut prefix = Vec::new();
            put_varint(&mut prefix, total as u64);
            if prefix.len() + body.len() == total {
                record.extend_from_slice(&prefix);
                break;
            }
            total = prefix.len() + body.len();
        }
        record.extend_from_slice(&body);
        let Some(handle) = self.push(&record) else {
            return false;
        };
        let hash = Self::hash_of(hasher, local.as_bytes(), domain);
        let chunks = &self.chunks;
        self.table.insert_unique(hash, handle, |h| {
            let record = view(record_in(chunks, *h));
            Self::hash_of(hasher, record.local, record.domain)
        });
        true
    }

    fn push(&mut self, record: &[u8]) -> Option<Handle> {
        if record.len() > CHUNK {
            return None;
        }
        let current = self.order.back().copied();
        let fits = current
            .and_then(|c| self.chunks.get(c))
            .is_some_and(|c| c.bytes.len() + record.len() <= CHUNK);
        let chunk_index = match current {
            Some(c) if fits => c,
            _ => {
                // Grown as records arrive (offsets stay valid when it moves),
                // so a tenant with a handful of addresses costs a handful
                // of bytes of the budget, not a whole chunk.
                let fresh = Chunk::default();
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.chunks[slot] = fresh;
                        slot
                    }
                    None => {
                        self.chunks.push(fresh);
                        self.chunks.len() - 1
                    }
                };
                self.order.push_back(slot);
                slot
            }
        };
        let chunk = self.chunks.get_mut(chunk_index)?;
        let handle = Handle::new(chunk_index, chunk.bytes.len())?;
        chunk.bytes.extend_from_slice(record);
        chunk.live += record.len();
        self.live += record.len();
        Some(handle)
    }

    /// Marks a record as garbage.
    fn release(&mut self, handle: Handle) {
        let len = record_len(self.record(handle));
        if let Some(chunk) = self.chunks.get_mut(handle.chunk()) {
            chunk.live = chunk.live.saturating_sub(len);
        }
        self.live = self.live.saturating_sub(len);
        self.garbage += len;
    }

    /// Moves the live records out of the oldest chunks, one chunk at a time,
    /// while garbage is more than its share. False when a record could not
    /// be moved (the tenant must be dropped).
    fn compact(&mut self, hasher: &DefaultHashBuilder, allowed: usize) -> bool {
        while self.garbage > allowed && self.order.len() > 1 {
            let Some(index) = self.order.pop_front() else {
                break;
            };
            let bytes = std::mem::take(&mut self.chunks[index].bytes);
            let mut at = 0;
            while at < bytes.len() {
                let record = &bytes[at..];
                let len = record_len(record).max(1);
                let handle = Handle::new(index, at);
                let view = view(record);
                let hash = Self::hash_of(hasher, view.local, view.domain);
                let live = handle.is_some_and(|h| self.table.find(hash, |&x| x == h).is_some());
                if live {
                    let Some(moved) = self.push(&record[..len.min(record.len())]) else {
                        return false;
                    };
                    self.live = self.live.saturating_sub(len);
                    if let Ok(slot) = self.table.find_entry(hash, |&x| Some(x) == handle) {
                        *slot.into_mut() = moved;
                    }
                }
                at += len;
            }
            let freed = bytes.len().saturating_sub(self.chunks[index].live);
            self.garbage = self.garbage.saturating_sub(freed);
            self.chunks[index] = Chunk::default();
            self.free.push(index);
        }
        true
    }

    fn footprint(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.bytes.capacity())
            .sum::<usize>()
            + self.table.capacity() * 5
            + self.domains.footprint()
            + self.texts.footprint()
    }
}

fn record_in(chunks: &[Chunk], handle: Handle) -> &[u8] {
    chunks
        .get(handle.chunk())
        .and_then(|c| c.bytes.get(handle.at()..))
        .unwrap_or_default()
}

fn record_len(record: &[u8]) -> usize {
    usize::try_from(Reader::new(record).varint()).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The index.

struct State {
    budget: usize,
    tenants: HashMap<TenantId, TenantIndex>,
    /// Tenants whose index went over the budget: the database answers them.
    dropped: HashSet<TenantId>,
}

impl State {
    fn footprint(&self) -> usize {
        self.tenants
            .values()
            .map(TenantIndex::footprint)
            .sum::<usize>()
    }
}

pub(crate) struct LookupIndex {
    hasher: DefaultHashBuilder,
    state: RwLock<State>,
}

impl LookupIndex {
    /// An empty index that may hold `budget` bytes; 0 turns it off (every
    /// lookup reads SQLite).
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            hasher: DefaultHashBuilder::default(),
            state: RwLock::new(State {
                budget,
                tenants: HashMap::new(),
                dropped: HashSet::new(),
            }),
        }
    }

    /// Every entry of `email`, newest first; `None` when the index does not
    /// cover `tenant` (off, or over its budget).
    pub(crate) fn entries(&self, tenant: &TenantId, email: &Email) -> Option<Vec<Suppression>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if state.budget == 0 || state.dropped.contains(tenant) {
            return None;
        }
        match state.tenants.get(tenant) {
            None => Some(Vec::new()),
            Some(index) => index.entries(&self.hasher, &index.texts, tenant, email),
        }
    }

    /// Forgets every tenant, dropped ones included, and turns the index back
    /// on should a failed apply have turned it off: before it is built
    /// again from scratch.
    pub(crate) fn clear(&self, budget: usize) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        *state = State {
            budget,
            tenants: HashMap::new(),
            dropped: HashSet::new(),
        };
    }

    /// Whether lookups of `tenant` are answered by the index (it is on and
    /// the tenant within its budget).
    pub(crate) fn covers(&self, tenant: &TenantId) -> bool {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.budget > 0 && !state.dropped.contains(tenant)
    }

    /// Addresses held, over every tenant.
    pub(crate) fn addresses(&self) -> usize {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.tenants.values().map(|t| t.table.len()).sum()
    }

    /// Takes a tenant out of the index for good (until the next start):
    /// its lookups read SQLite.
    pub(crate) fn drop_tenant(&self, tenant: &TenantId) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.tenants.remove(tenant);
        state.dropped.insert(tenant.clone());
    }

    /// Applies committed changes of one tenant. Runs on the writer thread;
    /// should it panic, the index may be half-changed, so it is turned off
    /// (every lookup reads SQLite) rather than trusted.
    pub(crate) fn apply(&self, tenant: &TenantId, changes: &[Change<'_>]) {
        if changes.is_empty() {
            return;
        }
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.try_apply(tenant, changes);
        }));
        if applied.is_err() {
            tracing::error!(
                "the lookup index failed to apply a write; lookups read the database from now on"
            );
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            state.budget = 0;
            state.tenants.clear();
        }
    }

    fn try_apply(&self, tenant: &TenantId, changes: &[Change<'_>]) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.budget == 0 || state.dropped.contains(tenant) {
            return;
        }
        // Grouped by address: one rewrite of a record per address.
        let mut changes = changes.to_vec();
        // Stable: a `Cleared` stays ahead of the `Added` that follow it.
        changes.sort_by(|a, b| a.email().cmp(b.email()));
        let index = state.tenants.entry(tenant.clone()).or_default();
        let mut texts = std::mem::take(&mut index.texts);
        let mut ok = true;
        for group in changes.chunk_by(|a, b| a.email() == b.email()) {
            if !index.change(&self.hasher, &mut texts, group[0].email(), group) {
                ok = false;
                break;
            }
        }
        index.texts = texts;
        let allowed = CHUNK.max(index.live / GARBAGE_SHARE);
        ok = ok && index.compact(&self.hasher, allowed);
        if !ok || state.footprint() > state.budget {
            tracing::warn!(
                tenant = %tenant,
                budget_mib = state.budget >> 20,
                "the lookup index is over its budget (storage.lookup_index_mib): this tenant's lookups read the database until the next start"
            );
            state.tenants.remove(tenant);
            state.dropped.insert(tenant.clone());
        }
    }
}

impl LookupIndex {
    /// Compacts every tenant as far as it goes: after the build at open,
    /// which rewrites the record of an address for each of its entries.
    pub(crate) fn compact_all(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let State {
            tenants, dropped, ..
        } = &mut *state;
        tenants.retain(|tenant, index| {
            let kept = index.compact(&self.hasher, 0);
            if !kept {
                dropped.insert(tenant.clone());
            }
            kept
        });
    }
}

impl fmt::Debug for LookupIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("LookupIndex")
            .field("tenants", &state.tenants.len())
            .field("dropped", &state.dropped.len())
            .field(
                "addresses",
                &state.tenants.values().map(|t| t.table.len()).sum::<usize>(),
            )
            .field("mib", &(state.footprint() >> 20))
            .field("budget_mib", &(state.budget >> 20))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use hush_model::{BounceClass, Kind};

    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn email(n: usize) -> Email {
        Email::parse(&format!("user{n}@example.com")).unwrap()
    }

    fn bounce(id: i64, n: usize, at: i64) -> Suppression {
        let email = email(n);
        Suppression {
            id: SuppressionId(id),
            tenant: tenant("t"),
            kind: Kind::Bounce {
                class: BounceClass::Hard,
                status: Some("5.1.1".into()),
                reason: Some(format!(
                    "550 5.1.1 <{}>: no such user ({})",
                    email.as_str(),
                    email.as_str()
                )),
            },
            email,
            scope: Scope::Global,
            origin: Origin::Recipient,
            created_at: Timestamp::from_nanos(at),
        }
    }

    fn unsubscribe(id: i64, n: usize, group: i64, at: i64) -> Suppression {
        Suppression {
            id: SuppressionId(id),
            tenant: tenant("t"),
            email: email(n),
            scope: if group == 0 {
                Scope::Global
            } else {
                Scope::Group(GroupId(group))
            },
            kind: Kind::Unsubscribe,
            origin: Origin::Customer,
            created_at: Timestamp::from_nanos(at),
        }
    }

    #[test]
    fn answers_every_entry_exactly_newest_first() {
        let index = LookupIndex::new(64 << 20);
        let t = tenant("t");
        let spam = Suppression {
            kind: Kind::SpamComplaint { source: None },
            ..unsubscribe(3, 1, 0, 20)
        };
        let entries = [
            bounce(1, 1, 10),
            unsubscribe(2, 1, 7, 30),
            spam,
            bounce(4, 2, -5),
        ];
        let changes: Vec<Change<'_>> = entries.iter().map(Change::Added).collect();
        index.apply(&t, &changes);
        let got = index.entries(&t, &email(1)).unwrap();
        let want = vec![entries[1].clone(), entries[2].clone(), entries[0].clone()];
        assert_eq!(got, want);
        assert_eq!(
            index.entries(&t, &email(2)).unwrap(),
            vec![entries[3].clone()]
        );
        // An address without entries, and a tenant without any, are known
        // to be empty; the texts of one address never leak into another's.
        assert_eq!(index.entries(&t, &email(3)).unwrap(), Vec::new());
        assert_eq!(index.entries(&tenant("u"), &email(1)).unwrap(), Vec::new());
    }

    #[test]
    fn removals_and_re_adds_follow_the_writes() {
        let index = LookupIndex::new(64 << 20);
        let t = tenant("t");
        let (a, b) = (bounce(1, 1, 10), unsubscribe(2, 1, 0, 20));
        index.apply(&t, &[Change::Added(&a), Change::Added(&b)]);
        index.apply(
            &t,
            &[Change::Removed("user1@example.com", SuppressionId(2))],
        );
        assert_eq!(index.entries(&t, &email(1)).unwrap(), vec![a.clone()]);
        index.apply(
            &t,
            &[Change::Removed("user1@example.com", SuppressionId(1))],
        );
        assert_eq!(index.entries(&t, &email(1)).unwrap(), Vec::new());
        let again = bounce(3, 1, 40);
        index.apply(&t, &[Change::Added(&again)]);
        assert_eq!(index.entries(&t, &email(1)).unwrap(), vec![again]);
    }

    #[test]
    fn compaction_keeps_every_live_record() {
        let index = LookupIndex::new(512 << 20);
        let t = tenant("t");
        let n = 60_000;
        // Every address is rewritten twice: the first generations become
        // garbage and the oldest chunks are compacted away.
        let first: Vec<Suppression> = (0..n).map(|i| bounce(i as i64 + 1, i, 1)).collect();
        let second: Vec<Suppression> = (0..n)
            .map(|i| unsubscribe((n + i) as i64 + 1, i, 0, 2))
            .collect();
        for batch in first.chunks(5_000).chain(second.chunks(5_000)) {
            let changes: Vec<Change<'_>> = batch.iter().map(Change::Added).collect();
            index.apply(&t, &changes);
        }
        let removed: Vec<String> = (0..n).step_by(2).map(|i| email(i).into_string()).collect();
        let changes: Vec<Change<'_>> = removed
            .iter()
            .enumerate()
            .map(|(k, e)| Change::Removed(e, SuppressionId((n + 2 * k) as i64 + 1)))
            .collect();
        index.apply(&t, &changes);
        {
            let state = index.state.read().unwrap();
            let tenant_index = &state.tenants[&t];
            assert!(!tenant_index.free.is_empty(), "nothing was compacted");
            assert!(tenant_index.garbage <= CHUNK.max(tenant_index.live / GARBAGE_SHARE));
        }
        for i in 0..n {
            let mut want = vec![first[i].clone()];
            if i % 2 == 1 {
                want.insert(0, second[i].clone());
            }
            assert_eq!(index.entries(&t, &email(i)).unwrap(), want, "address {i}");
        }
    }

    #[test]
    fn chunk_slots_are_reused_however_long_the_writes_go_on() {
        let index = LookupIndex::new(64 << 20);
        let t = tenant("t");
        let mut id = 0i64;
        let mut current: Vec<Suppression> = Vec::new();
        // About 60 MB of records written in all, never more than 1 MB of
        // them live: without reuse that is 60 chunk slots, and a long
        // enough run would use up the 4,096 a handle can name.
        for round in 0..100 {
            let batch: Vec<Suppression> = (0..10_000)
                .map(|i| {
                    id += 1;
                    bounce(id, i, round)
                })
                .collect();
            let mut changes: Vec<Change<'_>> = current
                .iter()
                .map(|old| Change::Removed(old.email.as_str(), old.id))
                .collect();
            changes.extend(batch.iter().map(Change::Added));
            index.apply(&t, &changes);
            current = batch;
        }
        let state = index.state.read().unwrap();
        let tenant_index = &state.tenants[&t];
        assert!(
            tenant_index.chunks.len() < 64,
            "{} chunk slots",
            tenant_index.chunks.len()
        );
        drop(state);
        assert_eq!(
            index.entries(&t, &email(77)).unwrap(),
            vec![current[77].clone()]
        );
    }

    #[test]
    fn small_tenants_cost_little_of_the_budget() {
        let index = LookupIndex::new(16 << 20);
        let e = email(1);
        for n in 0..300 {
            let t = tenant(&format!("t{n}"));
            let entry = Suppression {
                tenant: t.clone(),
                ..unsubscribe(n + 1, 1, 0, 1)
            };
            index.apply(&t, &[Change::Added(&entry)]);
            assert_eq!(index.entries(&t, &e).unwrap(), vec![entry], "tenant {n}");
        }
    }

    #[test]
    fn a_tenant_over_the_budget_goes_back_to_sqlite() {
        let index = LookupIndex::new(2 << 20);
        let (t, other) = (tenant("t"), tenant("u"));
        let small = Suppression {
            tenant: other.clone(),
            ..bounce(1, 1, 1)
        };
        index.apply(&other, &[Change::Added(&small)]);
        let many: Vec<Suppression> = (0..100_000)
            .map(|i| unsubscribe(i + 2, i as usize, 0, 1))
            .collect();
        let changes: Vec<Change<'_>> = many.iter().map(Change::Added).collect();
        index.apply(&t, &changes);
        assert_eq!(index.entries(&t, &email(5)), None);
        // Later writes of that tenant are not applied either.
        index.apply(&t, &[Change::Added(&small)]);
        assert_eq!(index.entries(&t, &email(1)), None);
        assert_eq!(index.entries(&other, &email(1)).unwrap(), vec![small]);
        assert_eq!(LookupIndex::new(0).entries(&t, &email(1)), None);
    }

    #[test]
    fn texts_are_stored_once_with_the_address_cut_out() {
        let index = LookupIndex::new(64 << 20);
        let t = tenant("t");
        let entries: Vec<Suppression> = (0..1_000).map(|i| bounce(i as i64 + 1, i, 1)).collect();
        let changes: Vec<Change<'_>> = entries.iter().map(Change::Added).collect();
        index.apply(&t, &changes);
        // One status, one reason shape, one domain.
        assert_eq!(index.state.read().unwrap().tenants[&t].texts.items.len(), 2);
        assert_eq!(
            index.entries(&t, &email(7)).unwrap(),
            vec![entries[7].clone()]
        );
    }
}
