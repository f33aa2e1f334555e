//! The health of deployments: which rest (cooling after a rate limit, out after repeated
//! failures) and until when, behind [`HealthStore`] so that replicas can share it.
//!
//! The store keeps facts only: "rests until T (why, after what back-off)", "a failure was
//! counted at T", "one probe was claimed". What they mean (the state a deployment is in, how long
//! it rests) is decided here, by [`Health`], from the `routing` settings, the same way whichever
//! store keeps the facts. Times are wall-clock Unix milliseconds, so replicas can compare them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;

use crate::config::generated::server::Routing as Settings;
use crate::llm::ProviderError;
use crate::server::catalog::ModelDef;

/// Why a deployment rests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// After a rate limit: back when the time is over.
    Cooling,
    /// After repeated failures: when the time is over, one probe call decides.
    Out,
}

/// What a store knows of one deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    /// Why it rests and until when (Unix ms); `None` when it does not.
    pub rest: Option<(Rest, u64)>,
    /// The length of its last time out (ms), doubled by a failed probe; 0 when it has none.
    pub backoff_ms: u64,
    /// Until when (Unix ms) a probe call is in flight, so that no other call probes.
    pub probe_until: u64,
}

/// Where deployment health is kept: in this process ([`MemoryHealth`]), or, to share it between
/// replicas, in a store they all reach. Keys are stable deployment ids (`MODEL/DEPLOYMENT`).
#[tonic::async_trait]
pub trait HealthStore: Send + Sync + 'static {
    /// What is known of `id` (all defaults when nothing is).
    async fn record(&self, id: &str) -> Record;
    /// What is known of each of `ids`, in order: for a shared store, one round trip.
    async fn records(&self, ids: &[String]) -> Vec<Record> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.record(id).await);
        }
        out
    }
    /// `id` rests for `rest` until `until_ms`, after a time out of `backoff_ms`. A rest that
    /// ends later is kept (two replicas that see the same 429 agree on the longer one).
    async fn rest(&self, id: &str, rest: Rest, until_ms: u64, backoff_ms: u64);
    /// Count one failure of `id` at `now_ms`: the failures counted within the last
    /// `window_ms`, this one included.
    async fn count_failure(&self, id: &str, now_ms: u64, window_ms: u64) -> u32;
    /// Claim the probe of `id` until `until_ms`: true for the one caller that gets it while no
    /// other claim is running.
    async fn claim_probe(&self, id: &str, now_ms: u64, until_ms: u64) -> bool;
    /// `id` answered a probe: it no longer rests, its back-off and failures are cleared.
    async fn restore(&self, id: &str);
}

/// The deployment health of this process only.
#[derive(Debug, Default)]
pub struct MemoryHealth {
    entries: Mutex<HashMap<String, (Record, Vec<u64>)>>,
}

impl MemoryHealth {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut (Record, Vec<u64>)) -> T) -> T {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(id.to_owned()).or_default())
    }
}

/// Most failure times kept per deployment (the threshold's maximum), by either store.
pub(crate) const MAX_FAILURES_KEPT: usize = 1000;

#[tonic::async_trait]
impl HealthStore for MemoryHealth {
    async fn record(&self, id: &str) -> Record {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).map(|(r, _)| *r).unwrap_or_default()
    }

    async fn rest(&self, id: &str, rest: Rest, until_ms: u64, backoff_ms: u64) {
        self.with(id, |(r, _)| {
            if r.rest.is_none_or(|(_, until)| until < until_ms) {
                r.rest = Some((rest, until_ms));
            }
            r.backoff_ms = r.backoff_ms.max(backoff_ms);
            r.probe_until = 0;
        });
    }

    async fn count_failure(&self, id: &str, now_ms: u64, window_ms: u64) -> u32 {
        self.with(id, |(_, times)| {
            times.retain(|t| now_ms.saturating_sub(*t) < window_ms);
            if times.len() >= MAX_FAILURES_KEPT {
                times.remove(0);
            }
            times.push(now_ms);
            times.len() as u32
        })
    }

    async fn claim_probe(&self, id: &str, now_ms: u64, until_ms: u64) -> bool {
        self.with(id, |(r, _)| {
            if r.probe_until > now_ms {
                return false;
            }
            r.probe_until = until_ms;
            true
        })
    }

    async fn restore(&self, id: &str) {
        self.with(id, |e| *e = Default::default());
    }
}

/// The state of a deployment at one moment, as `/metrics`, `status` and the log show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Healthy,
    /// Resting after a rate limit, for this long still.
    Cooling(Duration),
    /// Out after repeated failures, for this long still.
    Out(Duration),
    /// Out, its time over: the next call may probe it.
    Probe,
}

/// Every state's name, as [`Status::name`] gives it.
pub const STATES: &[&str] = &["healthy", "cooling", "out", "probe"];

impl Status {
    /// The state's name: healthy, cooling, out or probe.
    pub fn name(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Cooling(_) => "cooling",
            Status::Out(_) => "out",
            Status::Probe => "probe",
        }
    }

    /// How long it rests still (zero when it does not).
    pub fn remaining(self) -> Duration {
        match self {
            Status::Cooling(d) | Status::Out(d) => d,
            Status::Healthy | Status::Probe => Duration::ZERO,
        }
    }

    /// Whether a call may go to it without waiting (a probe must be claimed first).
    pub fn available(self) -> bool {
        matches!(self, Status::Healthy | Status::Probe)
    }
}

/// What one attempt at a deployment came to, for its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    /// A rate limit, with the wait the provider asked for.
    RateLimited(Option<Duration>),
    /// A server error, connection error or timeout.
    Failed,
    /// A failure the request caused (or a bad answer): not the deployment's health.
    Other,
}

impl Outcome {
    pub fn of(e: &ProviderError) -> Outcome {
        match e {
            ProviderError::RateLimited { .. } => Outcome::RateLimited(e.retry_after()),
            ProviderError::Overloaded { .. }
            | ProviderError::Server { .. }
            | ProviderError::Connect { .. }
            | ProviderError::Timeout { .. } => Outcome::Failed,
            _ => Outcome::Other,
        }
    }

    /// Whether the call moves on to another deployment after it.
    pub fn moves_on(self) -> bool {
        matches!(self, Outcome::RateLimited(_) | Outcome::Failed)
    }
}

/// Wall-clock now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.0, 86_400.0)
    } else {
        0.0
    })
}

/// The longest a probe claim holds when its call never reports back.
const PROBE_LEASE: Duration = Duration::from_secs(60);

/// Deployment health: the store and the rules, and the last state each deployment was seen in
/// (to log each change once). Shared by every call of the process and kept across reloads; a
/// reload may swap its store ([`Health::share`]).
pub struct Health {
    store: RwLock<Arc<dyn HealthStore>>,
    /// The store of this process alone, used when none is shared.
    own: Arc<dyn HealthStore>,
    seen: Mutex<HashMap<String, &'static str>>,
    /// The deployments calls were routed over, with the model each serves, for `/metrics`.
    known: Mutex<IndexMap<String, ModelDef>>,
}

/// Most deployments [`Health::register`] keeps (ids come from the config, so this is a backstop).
const MAX_KNOWN: usize = 1000;

impl Default for Health {
    fn default() -> Self {
        Health::new(Arc::new(MemoryHealth::default()))
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").finish_non_exhaustive()
    }
}

impl Health {
    pub fn new(store: Arc<dyn HealthStore>) -> Health {
        Health {
            store: RwLock::new(store.clone()),
            own: store,
            seen: Mutex::new(HashMap::new()),
            known: Mutex::new(IndexMap::new()),
        }
    }

    /// Keep health in `shared` from now on, or, with `None`, in this process again (what it
    /// knew before it shared is still there).
    pub fn share(&self, shared: Option<Arc<dyn HealthStore>>) {
        let store = shared.unwrap_or_else(|| self.own.clone());
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = store;
    }

    fn store(&self) -> Arc<dyn HealthStore> {
        self.store.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Note deployments (id, and the model as it serves it) that calls may go to.
    pub fn register(&self, deployments: impl Iterator<Item = (String, ModelDef)>) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for (id, model) in deployments {
            if known.len() < MAX_KNOWN && !known.contains_key(&id) {
                known.insert(id, model);
            }
        }
    }

    /// Every registered deployment, with the model it serves and its state now.
    pub async fn all(&self) -> Vec<(String, ModelDef, Status)> {
        let known: Vec<(String, ModelDef)> = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let ids: Vec<String> = known.iter().map(|(id, _)| id.clone()).collect();
        let states = self.statuses(&ids).await;
        known
            .into_iter()
            .zip(states)
            .map(|((id, model), status)| (id, model, status))
            .collect()
    }

    /// The state of `id` now; a change from the state last seen is logged.
    pub async fn status(&self, id: &str) -> Status {
        self.statuses(&[id.to_owned()])
            .await
            .pop()
            .unwrap_or(Status::Healthy)
    }

    /// The state of each of `ids` now, read from the store at once (one round trip for a
    /// shared store); changes from the states last seen are logged.
    pub async fn statuses(&self, ids: &[String]) -> Vec<Status> {
        let records = self.store().records(ids).await;
        let now = now_ms();
        ids.iter()
            .zip(records)
            .map(|(id, r)| {
                let status = match r.rest {
                    Some((rest, until)) if until > now => {
                        let left = Duration::from_millis(until - now);
                        match rest {
                            Rest::Cooling => Status::Cooling(left),
                            Rest::Out => Status::Out(left),
                        }
                    }
                    Some((Rest::Out, _)) => Status::Probe,
                    _ => Status::Healthy,
                };
                self.note(id, status);
                status
            })
            .collect()
    }

    /// Log `id`'s state when it differs from the state last seen.
    fn note(&self, id: &str, status: Status) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let name = status.name();
        let before = seen.insert(id.to_owned(), name);
        if before.is_some_and(|b| b != name) || (before.is_none() && status != Status::Healthy) {
            tracing::info!(
                deployment = %id,
                state = name,
                rest_seconds = status.remaining().as_secs_f64(),
                "deployment {id} is now {name}"
            );
        }
    }

    /// Claim the probe call of `id`, which is in [`Status::Probe`].
    pub async fn claim_probe(&self, id: &str) -> bool {
        let now = now_ms();
        self.store()
            .claim_probe(id, now, now + ms(PROBE_LEASE))
            .await
    }

    /// Record what an attempt at `id` came to; `probe` when the attempt was its probe. An
    /// answer that is not a probe, and a failure the request caused, change nothing and cost no
    /// store access.
    pub async fn report(&self, id: &str, outcome: Outcome, probe: bool, rules: &Settings) {
        let now = now_ms();
        let store = self.store();
        match outcome {
            Outcome::Answered if probe => store.restore(id).await,
            Outcome::Answered | Outcome::Other => return,
            Outcome::RateLimited(asked) => {
                let max = secs(rules.max_cooldown_seconds);
                let wait = asked
                    .unwrap_or_else(|| secs(rules.default_cooldown_seconds))
                    .min(max);
                store.rest(id, Rest::Cooling, now + ms(wait), 0).await;
            }
            Outcome::Failed => {
                let base = ms(secs(rules.backoff_seconds));
                let max = ms(secs(rules.max_backoff_seconds));
                if probe {
                    let last = store.record(id).await.backoff_ms.max(base);
                    let next = last.saturating_mul(2).min(max);
                    store.rest(id, Rest::Out, now + next, next).await;
                } else {
                    let window = ms(secs(rules.failure_window_seconds));
                    let n = store.count_failure(id, now, window).await;
                    if i64::from(n) >= rules.failure_threshold {
                        let backoff = base.min(max);
                        store.rest(id, Rest::Out, now + backoff, backoff).await;
                    }
                }
            }
        }
        self.status(id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Settings {
        Settings {
            failure_threshold: 2,
            backoff_seconds: 30.0,
            max_backoff_seconds: 100.0,
            ..Settings::default()
        }
    }

    #[tokio::test]
    async fn failures_take_a_deployment_out_and_a_failed_probe_doubles_its_time() {
        let h = Health::default();
        let r = rules();
        h.report("m/a", Outcome::Failed, false, &r).await;
        assert_eq!(h.status("m/a").await, Status::Healthy);
        h.report("m/a", Outcome::Failed, false, &r).await;
        assert!(matches!(h.status("m/a").await, Status::Out(d) if d > Duration::from_secs(29)));
        h.report("m/a", Outcome::Failed, true, &r).await;
        assert!(matches!(h.status("m/a").await, Status::Out(d) if d > Duration::from_secs(59)));
        h.report("m/a", Outcome::Failed, true, &r).await;
        // Doubled again, but cut to max_backoff_seconds.
        assert!(
            matches!(h.status("m/a").await, Status::Out(d) if d <= Duration::from_secs(100) && d > Duration::from_secs(99))
        );
        h.report("m/a", Outcome::Answered, true, &r).await;
        assert_eq!(h.status("m/a").await, Status::Healthy);
    }

    #[tokio::test]
    async fn a_rate_limit_cools_for_its_wait_cut_to_the_maximum() {
        let h = Health::default();
        let r = Settings {
            max_cooldown_seconds: 5.0,
            ..Settings::default()
        };
        h.report(
            "a",
            Outcome::RateLimited(Some(Duration::from_secs(3600))),
            false,
            &r,
        )
        .await;
        assert!(matches!(h.status("a").await, Status::Cooling(d) if d <= Duration::from_secs(5)));
        h.report("b", Outcome::RateLimited(None), false, &Settings::default())
            .await;
        assert!(
            matches!(h.status("b").await, Status::Cooling(d) if d > Duration::from_secs(9) && d <= Duration::from_secs(10))
        );
    }

    #[tokio::test]
    async fn one_caller_gets_the_probe() {
        let h = Health::default();
        assert!(h.claim_probe("a").await);
        assert!(!h.claim_probe("a").await);
    }
}
