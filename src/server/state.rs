//! Everything a request needs, built from one validated config: the catalog, the upstream
//! clients and the token verifier. Swapped whole on reload.

use std::path::Path;

use indexmap::IndexMap;

use super::auth::{self, SecretOrigin, Verifier};
use super::catalog::Catalog;
use super::routing::Table;
use super::upstream::{self, Upstream};
use crate::config::ServerConfig;
use crate::config::generated::server::{ServerLimitsBackend, key};

/// The server's working state.
pub struct State {
    pub config: ServerConfig,
    pub catalog: Catalog,
    pub upstreams: IndexMap<String, Upstream>,
    /// The deployments and fallbacks of the models that have them.
    pub routes: Table,
    /// `None` when authentication is off.
    pub verifier: Option<Verifier>,
    pub secret_origin: Option<SecretOrigin>,
}

/// A config key and what is wrong with it.
pub type KeyProblem = (String, String);

impl State {
    /// Build from a config that passed schema validation. `dir` is where a generated JWT secret
    /// is kept. Every problem found is returned at once.
    pub fn build(
        config: ServerConfig,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<State, Vec<KeyProblem>> {
        let mut problems = upstream::entry_problems(&config);
        let upstreams = upstream::build(&config, env);
        let routes: Vec<_> = upstreams
            .values()
            .map(|u| (u.kind, u.name.clone()))
            .collect();
        let catalog = match Catalog::new(&config, &routes) {
            Ok(c) => Some(c),
            Err(super::catalog::CatalogError::Config { key, detail }) => {
                problems.push((key, detail));
                None
            }
            Err(e) => {
                problems.push((key::MODELS.to_owned(), e.to_string()));
                None
            }
        };
        let routes = match Table::build(&config, &upstreams, catalog.as_ref(), env) {
            Ok(t) => Some(t),
            Err(found) => {
                problems.extend(found);
                None
            }
        };
        let limits = &config.server.limits;
        if limits.backend == ServerLimitsBackend::Redis {
            match limits.redis_url.as_deref() {
                None => problems.push((
                    key::SERVER_LIMITS_REDIS_URL.to_owned(),
                    format!("must be set when {} is redis", key::SERVER_LIMITS_BACKEND),
                )),
                Some(url) => {
                    if let Err(e) = redis::Client::open(url) {
                        problems.push((key::SERVER_LIMITS_REDIS_URL.to_owned(), e.to_string()));
                    }
                }
            }
        }
        let mut verifier = None;
        let mut secret_origin = None;
        if config.jwt.enabled {
            match auth::resolve_secret(&config.jwt, dir, env) {
                Ok((secret, origin)) => {
                    verifier = Some(Verifier::new(&secret, &config.jwt));
                    secret_origin = Some(origin);
                }
                Err(e) => problems.push((key::JWT_SECRET_KEY.to_owned(), e.to_string())),
            }
        }
        match (catalog, routes) {
            (Some(catalog), Some(routes)) if problems.is_empty() => Ok(State {
                config,
                catalog,
                upstreams,
                routes,
                verifier,
                secret_origin,
            }),
            _ => Err(problems),
        }
    }
}
