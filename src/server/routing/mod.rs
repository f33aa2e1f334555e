//! Routing one call over a model's deployments and its fallback models (see docs/routing.md):
//! the deployments each model has ([`Table`], checked when a config is loaded), the candidates
//! of one call in the order they are tried ([`Route`]), and running a whole or streamed call
//! over them, with each deployment's [`health`] updated by what it answered.
//!
//! A model without `deployments` has one: its provider and upstream model. A call goes to a
//! healthy deployment chosen by weight; a rate limit, server error, connection error or timeout
//! moves it to the next healthy one, then to the fallback models in order, within the call's
//! deadline; any other failure ends it. The provider's retry policy retries only the last
//! candidate left, so a call does not retry each deployment as well as move on.

pub mod health;
pub mod shared;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use indexmap::IndexMap;

use self::health::{Health, Outcome, Status};
use super::catalog::{Catalog, ModelDef};
use super::governance::Governance;
use super::state::KeyProblem;
use super::upstream::Upstream;
use crate::config::generated::server::{Routing as Settings, key};
use crate::config::{KeyPath, ServerConfig};
use crate::llm::retry::RetryPolicy;
use crate::llm::{ChatRequest, ChatResponse, ProviderClient, ProviderError, StreamEvent};

/// One deployment of a configured model.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `MODEL/DEPLOYMENT`: the key of its health, and its metrics label.
    pub id: String,
    pub provider: String,
    pub upstream_model: String,
    pub weight: u32,
    /// Its client (own key or base URL, else its provider's), or why it cannot be called.
    pub client: Result<ProviderClient, String>,
    pub retry: RetryPolicy,
    pub deadline: std::time::Duration,
}

/// The deployments and fallbacks of the configured models that have any.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub deployments: IndexMap<String, Vec<Deployment>>,
    pub fallbacks: IndexMap<String, Vec<String>>,
}

impl Table {
    /// The table of `cfg` over the built `upstreams`, or every problem [`check`] finds.
    pub fn build(
        cfg: &ServerConfig,
        upstreams: &IndexMap<String, Upstream>,
        catalog: Option<&Catalog>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Table, Vec<KeyProblem>> {
        let problems = check(cfg);
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut table = Table::default();
        for (id, m) in &cfg.models {
            let mut list = Vec::new();
            for (name, d) in &m.deployments {
                let provider = d
                    .provider
                    .clone()
                    .or_else(|| m.provider.clone())
                    .or_else(|| Some(catalog?.models.get(id)?.provider.clone()));
                let Some(up) = provider.as_deref().and_then(|p| upstreams.get(p)) else {
                    continue;
                };
                let client = up.deployment_client(
                    d.key.as_ref(),
                    d.key_file.as_deref(),
                    d.base_url.as_deref(),
                    env,
                );
                list.push(Deployment {
                    id: format!("{id}/{name}"),
                    provider: up.name.clone(),
                    upstream_model: d
                        .upstream_model
                        .clone()
                        .or_else(|| m.upstream_model.clone())
                        .unwrap_or_else(|| id.clone()),
                    weight: d.weight.clamp(0, 1000) as u32,
                    client,
                    retry: up.retry,
                    deadline: up.deadline,
                });
            }
            if !list.is_empty() {
                table.deployments.insert(id.clone(), list);
            }
            if !m.fallbacks.is_empty() {
                table.fallbacks.insert(id.clone(), m.fallbacks.clone());
            }
        }
        Ok(table)
    }

    /// A path of fallbacks from `id` back to `id`, if there is one.
    fn cycle_from(&self, id: &str) -> Option<Vec<String>> {
        let mut stack = vec![vec![id.to_owned()]];
        let mut seen = std::collections::HashSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().expect("paths are never empty");
            for next in self.fallbacks.get(last).into_iter().flatten() {
                let mut longer = path.clone();
                longer.push(next.clone());
                if next == id {
                    return Some(longer);
                }
                if seen.insert(next.clone()) {
                    stack.push(longer);
                }
            }
        }
        None
    }

    /// The models a call to `id` may be answered by, in order: `id`, then its fallbacks, each
    /// once (a fallback's own fallbacks follow it, depth first).
    pub fn chain(&self, id: &str) -> Vec<String> {
        let mut out = vec![id.to_owned()];
        let mut i = 0;
        while i < out.len() {
            let at = out[i].clone();
            let mut next: Vec<String> = Vec::new();
            for f in self.fallbacks.get(&at).into_iter().flatten() {
                if !out.contains(f) && !next.contains(f) {
                    next.push(f.clone());
                }
            }
            for (j, f) in next.into_iter().enumerate() {
                out.insert(i + 1 + j, f);
            }
            i += 1;
        }
        out
    }
}

/// The routing problems of `cfg`, each naming its key: a deployment whose provider is not an
/// entry of providers, deployments whose weights sum to 0, a fallback that is not a configured
/// model, fallbacks that lead back to their model. `config validate`, `serve` and a reload all
/// refuse a config that has any.
pub fn check(cfg: &ServerConfig) -> Vec<KeyProblem> {
    let mut problems = Vec::new();
    let providers: Vec<String> = super::upstream::entries(cfg)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    let mut table = Table::default();
    for (id, m) in &cfg.models {
        if !m.deployments.is_empty() && m.deployments.values().map(|d| d.weight).sum::<i64>() <= 0 {
            problems.push((
                KeyPath::fill(key::MODELS_ID_DEPLOYMENTS, &[id]).to_string(),
                "the weights of its deployments sum to 0; give at least one a weight of 1 or more"
                    .to_owned(),
            ));
        }
        for (name, d) in &m.deployments {
            if let Some(p) = d.provider.as_ref().filter(|p| !providers.contains(p)) {
                problems.push((
                    KeyPath::fill(key::MODELS_ID_DEPLOYMENTS_DEPLOYMENT_PROVIDER, &[id, name])
                        .to_string(),
                    format!(
                        "`{p}` is not an entry of providers (known: {}); add providers.{p} or name one of those",
                        providers.join(", ")
                    ),
                ));
            }
        }
        for f in &m.fallbacks {
            if !cfg.models.contains_key(f) {
                problems.push((
                    KeyPath::fill(key::MODELS_ID_FALLBACKS, &[id]).to_string(),
                    format!(
                        "`{f}` is not a key of models; a fallback must be a configured model id"
                    ),
                ));
            }
        }
        if !m.fallbacks.is_empty() {
            table.fallbacks.insert(id.clone(), m.fallbacks.clone());
        }
    }
    for id in cfg.models.keys() {
        if let Some(cycle) = table.cycle_from(id) {
            problems.push((
                KeyPath::fill(key::MODELS_ID_FALLBACKS, &[id]).to_string(),
                format!(
                    "the fallbacks lead back to `{id}` ({}); remove one of them",
                    cycle.join(" -> ")
                ),
            ));
        }
    }
    problems
}

/// The model and deployment a call was answered by (or last tried).
#[derive(Debug, Clone)]
pub struct Served {
    pub model: ModelDef,
    pub deployment: String,
}

/// [`Served`], updated while the call runs, read by its meter and its response.
pub type ServedCell = Arc<Mutex<Served>>;

/// Read a [`ServedCell`].
pub fn served(cell: &ServedCell) -> Served {
    cell.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// One candidate of a call: a deployment of the requested model or of a fallback.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    /// The model it answers as, with this deployment's provider and upstream model name.
    pub model: ModelDef,
    pub weight: u32,
    /// Its client, its attempts ending by the call's deadline.
    pub client: ProviderClient,
    pub retry: RetryPolicy,
    /// Whether it belongs to a fallback model.
    pub fallback: bool,
}

/// The candidates of one call and what it needs to run over them.
#[derive(Clone)]
pub struct Route {
    pub targets: Vec<Target>,
    pub gov: Arc<Governance>,
    pub settings: Settings,
    pub served: ServedCell,
    pub deadline: Instant,
}

/// The candidate at `i` of an ordered route, and whether the attempt is its probe.
type Pick = (usize, bool);

impl Route {
    fn health(&self) -> &Health {
        &self.gov.health
    }

    /// The order the candidates are tried in: per model (the requested one, then each
    /// fallback), a deployment whose time out is over first (its probe, when this call claims
    /// it), then the healthy ones with a weight in a random order drawn by weight, then the
    /// healthy standbys (weight 0) in config order. Resting deployments are left out, unless
    /// every candidate rests: then all are tried in config order.
    async fn order(&self) -> Vec<Pick> {
        // One read of the store for every candidate (one round trip when it is shared).
        let ids: Vec<String> = self.targets.iter().map(|t| t.id.clone()).collect();
        let states = self.health().statuses(&ids).await;
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.targets.len() {
            let model = &self.targets[i].model.id;
            let end = (i..self.targets.len())
                .find(|&j| &self.targets[j].model.id != model)
                .unwrap_or(self.targets.len());
            let mut weighted = Vec::new();
            let mut standby = Vec::new();
            for (j, status) in states.iter().enumerate().take(end).skip(i) {
                let t = &self.targets[j];
                match *status {
                    Status::Probe => {
                        if self.health().claim_probe(&t.id).await {
                            out.push((j, true));
                        }
                    }
                    Status::Healthy if t.weight > 0 => weighted.push(j),
                    Status::Healthy => standby.push(j),
                    Status::Cooling(_) | Status::Out(_) => {}
                }
            }
            while !weighted.is_empty() {
                let total: u64 = weighted
                    .iter()
                    .map(|&j| u64::from(self.targets[j].weight))
                    .sum();
                let mut draw = (rand::random::<f64>() * total as f64) as u64;
                let mut at = weighted.len() - 1;
                for (k, &j) in weighted.iter().enumerate() {
                    let w = u64::from(self.targets[j].weight);
                    if draw < w {
                        at = k;
                        break;
                    }
                    draw -= w;
                }
                out.push((weighted.remove(at), false));
            }
            out.extend(standby.into_iter().map(|j| (j, false)));
            i = end;
        }
        if out.is_empty() {
            out = (0..self.targets.len()).map(|j| (j, false)).collect();
        }
        out
    }

    /// The request for candidate `t`.
    fn chat(t: &Target, chat: &ChatRequest) -> ChatRequest {
        let mut c = chat.clone();
        c.model = t.model.upstream.clone();
        c
    }

    fn serve(&self, t: &Target) {
        *self.served.lock().unwrap_or_else(|e| e.into_inner()) = Served {
            model: t.model.clone(),
            deployment: t.id.clone(),
        };
    }

    /// Record an attempt at `t`: its health, and the call and fallback counters.
    async fn report(&self, t: &Target, outcome: Outcome, probe: bool, requested: &str) {
        self.health()
            .report(&t.id, outcome, probe, &self.settings)
            .await;
        let result = match outcome {
            Outcome::Answered => "answered",
            Outcome::RateLimited(_) => "rate_limited",
            Outcome::Failed => "failed",
            Outcome::Other => "error",
        };
        self.gov.metrics.deployment_call(&t.model, &t.id, result);
        if outcome == Outcome::Answered && t.fallback {
            self.gov.metrics.fallback(requested, &t.model);
        }
    }

    /// The wait before retrying candidate `t` after `e`, when it is the last one left.
    fn retry_wait(
        &self,
        t: &Target,
        e: &ProviderError,
        attempt: u32,
        last: bool,
    ) -> Option<std::time::Duration> {
        last.then(|| t.retry.after_error(e, attempt, Some(self.deadline)))
            .flatten()
    }

    /// The whole answer of `chat` over the route: the answer and the attempts before it, or the
    /// last failure and the attempts before it.
    pub async fn complete(
        &self,
        chat: &ChatRequest,
        requested: &str,
    ) -> Result<(ChatResponse, u32), (ProviderError, u32)> {
        let order = self.order().await;
        let mut tries = 0u32;
        let mut last_err = None;
        for (n, &(i, probe)) in order.iter().enumerate() {
            if last_err.is_some() && Instant::now() >= self.deadline {
                break;
            }
            let t = &self.targets[i];
            self.serve(t);
            let req = Self::chat(t, chat);
            let mut attempt = 0;
            loop {
                let result = t.client.complete(&req).await;
                let outcome = result
                    .as_ref()
                    .map_or_else(Outcome::of, |_| Outcome::Answered);
                self.report(t, outcome, probe && attempt == 0, requested)
                    .await;
                match result {
                    Ok(resp) => return Ok((resp, tries)),
                    Err(e) => {
                        if let Some(wait) = self.retry_wait(t, &e, attempt, n + 1 == order.len()) {
                            tracing::debug!(deployment = %t.id, attempt, ?wait, "retrying upstream call");
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            tries += 1;
                            continue;
                        }
                        if !outcome.moves_on() {
                            return Err((e, tries));
                        }
                        tracing::debug!(deployment = %t.id, "moving to the next deployment: {}", super::exec::scrub(&e.to_string()));
                        last_err = Some(e);
                        tries += 1;
                        break;
                    }
                }
            }
        }
        let e = last_err.expect("a route has at least one candidate");
        Err((e, tries.saturating_sub(1)))
    }

    /// The streamed answer of `chat` over the route: a failure before the first text moves on
    /// (or is retried, on the last candidate); after it, or when no candidate is left, it is the
    /// stream's last item. Each item comes with the attempts before it.
    pub fn stream(
        self,
        chat: ChatRequest,
        requested: String,
    ) -> impl futures_util::Stream<Item = Result<(StreamEvent, u32), (ProviderError, u32)>>
    + Send
    + 'static {
        async_stream::stream! {
            let order = self.order().await;
            let mut tries = 0u32;
            let mut last_err = None;
            'targets: for (n, &(i, probe)) in order.iter().enumerate() {
                if last_err.is_some() && Instant::now() >= self.deadline {
                    break;
                }
                let t = &self.targets[i];
                self.serve(t);
                let req = Self::chat(t, &chat);
                let mut attempt = 0;
                'attempts: loop {
                    let mut upstream = t.client.stream(&req);
                    let mut sent = false;
                    while let Some(item) = upstream.next().await {
                        match item {
                            Ok(event) => {
                                sent |= event.is_output();
                                if matches!(event, StreamEvent::Usage(_)) {
                                    self.report(t, Outcome::Answered, probe && attempt == 0, &requested).await;
                                }
                                yield Ok((event, tries));
                            }
                            Err(e) => {
                                let outcome = Outcome::of(&e);
                                self.report(t, outcome, probe && attempt == 0, &requested).await;
                                if !sent {
                                    if let Some(wait) = self.retry_wait(t, &e, attempt, n + 1 == order.len()) {
                                        drop(upstream);
                                        tokio::time::sleep(wait).await;
                                        attempt += 1;
                                        tries += 1;
                                        continue 'attempts;
                                    }
                                    if outcome.moves_on() {
                                        last_err = Some(e);
                                        tries += 1;
                                        continue 'targets;
                                    }
                                }
                                yield Err((e, tries));
                                return;
                            }
                        }
                    }
                    return;
                }
            }
            if let Some(e) = last_err {
                yield Err((e, tries.saturating_sub(1)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_listed_twice_is_tried_once_in_its_first_place() {
        let mut table = Table::default();
        let list = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        table
            .fallbacks
            .insert("a".into(), list(&["b", "c", "b", "a"]));
        table.fallbacks.insert("c".into(), list(&["d", "b"]));
        assert_eq!(table.chain("a"), ["a", "b", "c", "d"]);
    }
}
