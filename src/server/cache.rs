//! The exact response cache, in front of the provider call for both ingresses (gRPC in
//! [`service`](super::service), the HTTP APIs in [`http_api`](super::http_api)): a [`Lookup`]
//! made after model resolution wraps [`exec::complete`] and [`exec::stream`].
//!
//! It is off unless a model turns it on (`models.<id>.cache.enabled`). The key is the SHA-256
//! of the serialized resolved model (id and provider entry), the whole [`ChatRequest`] that
//! goes upstream (every field of it, so a field added later is part of the key by itself), and
//! the caller's subject unless the model is `shareable`. The value is the whole
//! [`ChatResponse`] as JSON, at most `server.cache.max_entry_bytes`; it lives
//! `models.<id>.cache.ttl_seconds`.
//!
//! Where: with `server.limits.backend: memory`, in this process ([`MemoryStore`], bounded by
//! `server.cache.max_bytes`, the least recently used answers dropped first); with `redis`, in
//! Redis under [`REDIS_PREFIX`] (`SET ... PX ttl`), shared by every replica on it. A Redis that
//! cannot be reached is a miss, never a failed call.
//!
//! Only a whole, successful answer is stored: a stream the client dropped, the timeout stopped
//! or the provider broke off is not. The store happens before the answer's end reaches the
//! client, so once a client has an answer, the same request is a hit. A hit replays the answer
//! as a stream to a streaming call (pieces of at most [`REPLAY_CHUNK_BYTES`], then the usual end
//! and usage), is charged no tokens (its usage record says `cache: hit`), and still counted by
//! the rate limits, which admitted it before the lookup. A caller skips the lookup (the fresh
//! answer is still stored) with `Cache-Control: no-cache` on HTTP or the gRPC metadata
//! [`BYPASS_METADATA`]`: no-cache`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use redis::aio::ConnectionManager;
use serde::Serialize;

use super::catalog::ModelDef;
use super::exec::{self, Prepared};
use super::governance::Governance;
use super::governance::meter::{CacheHit, Meter};
use super::governance::redis_backend::REDIS_TIMEOUT;
use super::state::State;
use crate::config::generated::server::ServerLimitsBackend;
use crate::llm::{ChatRequest, ChatResponse, ProviderError, StreamEvent, Usage};

/// The gRPC request metadata key whose value `no-cache` skips the cache lookup.
pub const BYPASS_METADATA: &str = "x-vibectl-cache";
/// The directive (of `Cache-Control` on HTTP, of [`BYPASS_METADATA`] on gRPC) that skips the
/// lookup.
pub const NO_CACHE: &str = "no-cache";
/// The prefix of the cache's Redis keys; the version changes when the key or value form does.
pub const REDIS_PREFIX: &str = "vibectl:cache:v1:";
/// The largest piece of text a replayed stream sends at once.
pub const REPLAY_CHUNK_BYTES: usize = 1024;
/// Bytes counted for one memory entry besides its value: its key, expiry and place in the
/// eviction order.
pub const ENTRY_OVERHEAD: usize = 96;

/// The metric results of a lookup.
mod result {
    pub const HIT: &str = "hit";
    pub const MISS: &str = "miss";
    pub const BYPASS: &str = "bypass";
}

type Key = [u8; 32];

/// Whether `Cache-Control` (HTTP) asks to skip the cache.
pub fn http_bypass(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case(NO_CACHE))
}

/// Whether the gRPC metadata asks to skip the cache ([`BYPASS_METADATA`]`: no-cache`).
pub fn grpc_bypass(metadata: &tonic::metadata::MetadataMap) -> bool {
    metadata
        .get(BYPASS_METADATA)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(NO_CACHE))
}

/// One stored answer in memory.
struct Slot {
    /// Its place in the eviction order.
    tick: u64,
    expires: Instant,
    value: Arc<[u8]>,
}

impl Slot {
    fn size(&self) -> usize {
        self.value.len() + ENTRY_OVERHEAD
    }
}

#[derive(Default)]
struct Lru {
    map: HashMap<Key, Slot>,
    /// Tick to key, least recently used first.
    order: BTreeMap<u64, Key>,
    bytes: usize,
    tick: u64,
}

impl Lru {
    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.map.remove(key) {
            self.order.remove(&slot.tick);
            self.bytes -= slot.size();
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

/// The answers kept in this process: bounded in bytes, least recently used dropped first, each
/// expiring at its TTL. It lives as long as the server, across reloads.
#[derive(Default)]
pub struct MemoryStore {
    lru: Mutex<Lru>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value under `key` unless it expired by `now`; a hit becomes the most recently used.
    fn get(&self, key: &Key, now: Instant) -> Option<Arc<[u8]>> {
        let mut lru = self.lock();
        let expired = lru.map.get(key)?.expires <= now;
        if expired {
            lru.remove(key);
            return None;
        }
        let tick = lru.next_tick();
        let slot = lru.map.get_mut(key)?;
        let old = std::mem::replace(&mut slot.tick, tick);
        let value = slot.value.clone();
        lru.order.remove(&old);
        lru.order.insert(tick, *key);
        Some(value)
    }

    /// Keep `value` under `key` until `expires`, dropping the least recently used answers until
    /// the store fits in `max_bytes`; a value that alone does not fit is not kept.
    fn put(&self, key: Key, value: &[u8], expires: Instant, max_bytes: usize) {
        let mut lru = self.lock();
        lru.remove(&key);
        let size = value.len() + ENTRY_OVERHEAD;
        if size > max_bytes {
            return;
        }
        while lru.bytes + size > max_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(slot) = lru.map.remove(&oldest) {
                lru.bytes -= slot.size();
            }
        }
        let tick = lru.next_tick();
        lru.order.insert(tick, key);
        lru.bytes += size;
        lru.map.insert(
            key,
            Slot {
                tick,
                expires,
                value: value.into(),
            },
        );
    }

    /// Bytes held (values and [`ENTRY_OVERHEAD`] each).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Answers held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where this call's answer is looked up and stored.
#[derive(Clone)]
enum Store {
    Memory { max_bytes: usize },
    Redis(ConnectionManager),
}

/// The cache as one call to a model with it on uses it.
struct On {
    key: Key,
    ttl: Duration,
    store: Store,
    max_entry_bytes: usize,
    /// The caller asked to skip the lookup.
    bypass: bool,
}

/// One call's use of the cache, made after model resolution: off (the model does not cache),
/// or its key, store and bounds. Spent by [`Lookup::complete`] or [`Lookup::stream`].
pub struct Lookup {
    on: Option<On>,
    gov: Arc<Governance>,
    model: ModelDef,
    hit: CacheHit,
    /// Which deployment and model answered the call: an answer of a fallback model is not
    /// kept under the key of the model asked for.
    served: crate::server::routing::ServedCell,
}

/// What the key is the hash of.
#[derive(Serialize)]
struct KeyParts<'a> {
    model: &'a str,
    provider: &'a str,
    subject: Option<&'a str>,
    request: &'a ChatRequest,
}

fn key_of(p: &Prepared, subject: Option<&str>) -> Option<Key> {
    let parts = KeyParts {
        model: &p.model.id,
        provider: &p.model.provider,
        subject,
        request: &p.chat,
    };
    let bytes = serde_json::to_vec(&parts).ok()?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    digest.as_ref().try_into().ok()
}

fn hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of `resp` in pieces of at most [`REPLAY_CHUNK_BYTES`], cut on character boundaries.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(REPLAY_CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head.to_owned());
        rest = tail;
    }
    out
}

impl Lookup {
    /// The cache use of `p`, a call of `sub` served by `state`, metered by `meter`; `bypass`
    /// when the caller asked for no-cache. Off when the model does not turn the cache on, or
    /// the Redis store cannot be set up.
    pub fn new(
        gov: &Arc<Governance>,
        state: &State,
        sub: &str,
        p: &Prepared,
        bypass: bool,
        meter: &Meter,
    ) -> Lookup {
        let on = Self::on(gov, state, sub, p, bypass);
        Lookup {
            on,
            gov: gov.clone(),
            model: p.model.clone(),
            hit: meter.cache_hit(),
            served: p.route.served.clone(),
        }
    }

    fn on(
        gov: &Arc<Governance>,
        state: &State,
        sub: &str,
        p: &Prepared,
        bypass: bool,
    ) -> Option<On> {
        let rule = &state.config.models.get(&p.model.id)?.cache;
        if !rule.enabled || !p.model.configured {
            return None;
        }
        let bounds = &state.config.server.cache;
        let limits = &state.config.server.limits;
        let store = match limits.backend {
            ServerLimitsBackend::Memory => Store::Memory {
                max_bytes: usize::try_from(bounds.max_bytes).unwrap_or(usize::MAX),
            },
            ServerLimitsBackend::Redis => match gov.redis_for(limits)? {
                Ok(redis) => Store::Redis(redis.connection()),
                Err(e) => {
                    tracing::warn!("the response cache is skipped: Redis cannot be used: {e}");
                    return None;
                }
            },
        };
        let subject = (!rule.shareable).then_some(sub);
        Some(On {
            key: key_of(p, subject)?,
            ttl: Duration::from_secs(u64::try_from(rule.ttl_seconds.max(1)).unwrap_or(1)),
            store,
            max_entry_bytes: usize::try_from(bounds.max_entry_bytes).unwrap_or(usize::MAX),
            bypass,
        })
    }

    /// The cached answer, when there is one and the caller did not skip the lookup (which the
    /// metrics count); a hit marks the call's meter and carries no provider tokens.
    async fn fetch(&self) -> Option<ChatResponse> {
        let on = self.on.as_ref()?;
        if on.bypass {
            self.gov.metrics.cache_lookup(&self.model, result::BYPASS);
            return None;
        }
        // A value that does not read back (another version wrote it) is a miss.
        let parse = |v: &[u8]| serde_json::from_slice::<ChatResponse>(v).ok();
        let found = match &on.store {
            Store::Memory { .. } => self
                .gov
                .cache
                .get(&on.key, Instant::now())
                .and_then(|v| parse(&v)),
            Store::Redis(con) => redis_get(con.clone(), &on.key)
                .await
                .and_then(|v| parse(&v)),
        };
        let Some(mut answer) = found else {
            self.gov.metrics.cache_lookup(&self.model, result::MISS);
            return None;
        };
        self.gov.metrics.cache_lookup(&self.model, result::HIT);
        self.hit.mark();
        answer.usage = Usage {
            input_tokens: Some(0),
            output_tokens: Some(0),
        };
        Some(answer)
    }

    /// Keep `answer`, when the model asked for gave it (not a fallback) and it fits
    /// `max_entry_bytes`.
    async fn store(&self, answer: &ChatResponse) {
        let Some(on) = &self.on else {
            return;
        };
        let served = crate::server::routing::served(&self.served);
        if served.model.id != self.model.id {
            tracing::debug!(
                model = %self.model.id,
                fallback = %served.model.id,
                "an answer of a fallback model is not kept"
            );
            return;
        }
        let Ok(value) = serde_json::to_vec(answer) else {
            return;
        };
        if value.len() > on.max_entry_bytes {
            tracing::debug!(
                bytes = value.len(),
                "an answer larger than the cache's entry bound is not kept"
            );
            return;
        }
        match &on.store {
            Store::Memory { max_bytes } => {
                self.gov
                    .cache
                    .put(on.key, &value, Instant::now() + on.ttl, *max_bytes)
            }
            Store::Redis(con) => redis_set(con.clone(), &on.key, &value, on.ttl).await,
        }
    }

    /// [`exec::complete`] through the cache: a hit answers without a provider call; a
    /// successful answer is stored before it is returned.
    pub async fn complete(
        &self,
        p: &Prepared,
    ) -> Result<(ChatResponse, u32), (ProviderError, u32)> {
        if let Some(answer) = self.fetch().await {
            return Ok((answer, 0));
        }
        let result = exec::complete(p).await;
        if let Ok((answer, _)) = &result {
            self.store(answer).await;
        }
        result
    }

    /// [`exec::stream`] through the cache: a hit replays the answer (its items as
    /// [`ChatResponse::into_events`] gives them, the text in pieces); a miss forwards the
    /// provider's stream and stores the answer once it has ended whole, before the stream ends.
    pub fn stream(
        self,
        p: &Prepared,
    ) -> impl Stream<Item = Result<(StreamEvent, u32), (ProviderError, u32)>> + Send + 'static {
        let upstream = exec::stream(p);
        async_stream::stream! {
            if let Some(answer) = self.fetch().await {
                for event in answer.into_events() {
                    match event {
                        StreamEvent::Text(text) => {
                            for piece in pieces(&text) {
                                yield Ok((StreamEvent::Text(piece), 0));
                            }
                        }
                        other => yield Ok((other, 0)),
                    }
                }
                return;
            }
            let bound = self.on.as_ref().map_or(0, |on| on.max_entry_bytes);
            let mut answer = ChatResponse::default();
            // Whether the answer so far is whole, successful and small enough to keep.
            let mut keep = self.on.is_some();
            let mut ended = false;
            let mut upstream = std::pin::pin!(upstream);
            while let Some(item) = upstream.next().await {
                match &item {
                    Ok((event, _)) if keep => {
                        ended = answer.absorb(event);
                        if answer.text_bytes() > bound {
                            keep = false;
                            answer = ChatResponse::default();
                        }
                    }
                    Ok((event, _)) => ended |= matches!(event, StreamEvent::Usage(_)),
                    Err(_) => keep = false,
                }
                yield item;
            }
            if keep && ended {
                self.store(&answer).await;
            }
        }
    }
}

fn redis_key(key: &Key) -> String {
    format!("{REDIS_PREFIX}{}", hex(key))
}

async fn redis_get(mut con: ConnectionManager, key: &Key) -> Option<Vec<u8>> {
    let cmd = redis::cmd("GET").arg(redis_key(key)).clone();
    match tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<Option<Vec<u8>>>(&mut con)).await {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => {
            tracing::warn!("cannot read the response cache in Redis: {e}");
            None
        }
        Err(_) => {
            tracing::warn!("cannot read the response cache in Redis: it did not answer in time");
            None
        }
    }
}

async fn redis_set(mut con: ConnectionManager, key: &Key, value: &[u8], ttl: Duration) {
    let cmd = redis::cmd("SET")
        .arg(redis_key(key))
        .arg(value)
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .clone();
    match tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<()>(&mut con)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cannot store an answer in the Redis response cache: {e}"),
        Err(_) => tracing::warn!(
            "cannot store an answer in the Redis response cache: it did not answer in time"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn the_memory_store_drops_the_least_recently_used_to_fit_its_bytes() {
        let store = MemoryStore::default();
        let later = Instant::now() + Duration::from_secs(60);
        let max = 3 * (10 + ENTRY_OVERHEAD);
        for n in 1..=3 {
            store.put(key(n), &[n; 10], later, max);
        }
        assert_eq!(store.len(), 3);
        // 1 is used, so 2 is now the least recently used.
        assert!(store.get(&key(1), Instant::now()).is_some());
        store.put(key(4), &[4; 10], later, max);
        assert!(
            store.get(&key(2), Instant::now()).is_none(),
            "2 was dropped"
        );
        for n in [1, 3, 4] {
            assert!(store.get(&key(n), Instant::now()).is_some(), "{n} is kept");
        }
        assert_eq!(store.bytes(), max);
        // A value that alone is over the bound is not kept, and drops nothing.
        store.put(key(5), &[5; 400], later, max);
        assert!(store.get(&key(5), Instant::now()).is_none());
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn an_expired_answer_is_gone_and_frees_its_bytes() {
        let store = MemoryStore::default();
        let now = Instant::now();
        store.put(key(1), b"answer", now + Duration::from_secs(1), 4096);
        assert!(store.get(&key(1), now).is_some());
        assert!(store.get(&key(1), now + Duration::from_secs(1)).is_none());
        assert_eq!((store.len(), store.bytes()), (0, 0));
    }

    #[test]
    fn replayed_pieces_cut_on_character_boundaries() {
        let text = "é".repeat(REPLAY_CHUNK_BYTES);
        let parts = pieces(&text);
        assert!(parts.iter().all(|p| p.len() <= REPLAY_CHUNK_BYTES));
        assert_eq!(parts.concat(), text);
        assert!(pieces("").is_empty());
    }

    #[test]
    fn the_bypass_directive_is_read_from_either_ingress() {
        let mut h = http::HeaderMap::new();
        assert!(!http_bypass(&h));
        h.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("max-age=0, No-Cache"),
        );
        assert!(http_bypass(&h));
        let mut md = tonic::metadata::MetadataMap::new();
        assert!(!grpc_bypass(&md));
        md.insert(BYPASS_METADATA, "no-cache".parse().expect("ascii"));
        assert!(grpc_bypass(&md));
    }
}
