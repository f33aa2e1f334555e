//! The model catalog: which models the server offers, their aliases, and which provider (and
//! upstream model name) serves each one.

use indexmap::IndexMap;

use crate::config::KeyPath;
use crate::config::ServerConfig;
use crate::config::generated::server::key;
use crate::llm::ProviderKind;

/// One model the server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    pub id: String,
    /// The name of the provider entry that serves it.
    pub provider: String,
    /// The model name sent upstream.
    pub upstream: String,
    pub display_name: String,
    pub aliases: Vec<String>,
    pub max_context_length: Option<i32>,
    pub supports_streaming: bool,
    /// USD per million input and output tokens, when priced.
    pub input_cost_per_mtok: Option<f64>,
    pub output_cost_per_mtok: Option<f64>,
    /// Whether the id is a key of `models` (else the client named it: an open route).
    pub configured: bool,
}

/// Longest model name kept in a usage record for a model the client named (not configured).
pub const MAX_USAGE_MODEL_BYTES: usize = 64;

impl ModelDef {
    /// The price in US dollars of `input` and `output` tokens: the one cost rule of the server,
    /// behind the wire metrics, the usage records, the quotas and the Prometheus counter. Each
    /// side is priced by its own price, so a model with only an input price costs its input; a
    /// model with no price at all has no cost (`None`), while a priced model that used nothing
    /// costs 0.
    pub fn cost_usd(&self, input: u64, output: u64) -> Option<f64> {
        if self.input_cost_per_mtok.is_none() && self.output_cost_per_mtok.is_none() {
            return None;
        }
        let part = |price: Option<f64>, n: u64| price.unwrap_or(0.0) * n as f64 / 1_000_000.0;
        Some(part(self.input_cost_per_mtok, input) + part(self.output_cost_per_mtok, output))
    }

    /// The model as usage records name it: its id when configured, else the requested name cut
    /// to [`MAX_USAGE_MODEL_BYTES`] (names are printable ASCII, checked before the lookup, so
    /// the cut falls on a character boundary; any other byte is replaced).
    pub fn usage_name(&self) -> String {
        if self.configured {
            return self.id.clone();
        }
        self.id
            .bytes()
            .take(MAX_USAGE_MODEL_BYTES)
            .map(|b| {
                if crate::server::governance::fields::is_model_byte(b) {
                    b as char
                } else {
                    '?'
                }
            })
            .collect()
    }
}

/// Why a model request cannot be served.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("no model was requested and {} is not set", key::SERVER_DEFAULT_MODEL)]
    NoModel,
    #[error("model `{name}` is not available; available: {}", available.join(", "))]
    NotFound {
        name: String,
        available: Vec<String>,
    },
    #[error("{key}: {detail}")]
    Config { key: String, detail: String },
}

/// Models, aliases and the default model, as configured.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub models: IndexMap<String, ModelDef>,
    /// Alias to model id: `model_aliases` and each model's `aliases`.
    pub aliases: IndexMap<String, String>,
    pub default_model: Option<String>,
    /// Provider entry names by kind, for models routed by name when `models` is empty.
    open_routes: Vec<(ProviderKind, String)>,
}

pub use crate::llm::kind_for_model;

/// `provider/model` split, when the first part names a provider entry or kind.
fn split_provider<'a>(
    name: &'a str,
    providers: &[(ProviderKind, String)],
) -> Option<(&'a str, &'a str)> {
    let (p, m) = name.split_once('/')?;
    (providers.iter().any(|(k, n)| n == p || k.as_str() == p) && !m.is_empty()).then_some((p, m))
}

impl Catalog {
    /// Build from the config; `providers` are the provider entries in use, `(kind, name)`.
    pub fn new(
        cfg: &ServerConfig,
        providers: &[(ProviderKind, String)],
    ) -> Result<Catalog, CatalogError> {
        let mut models = IndexMap::new();
        let mut aliases = IndexMap::new();
        for (id, m) in &cfg.models {
            // A model served only by its deployments: the first one that names a provider.
            let by_deployment = m
                .deployments
                .values()
                .find_map(|d| d.provider.clone())
                .filter(|p| providers.iter().any(|(_, n)| n == p));
            let provider = match &m.provider {
                Some(p) => {
                    if !providers.iter().any(|(_, n)| n == p) {
                        return Err(CatalogError::Config {
                            key: KeyPath::fill(key::MODELS_ID_PROVIDER, &[id]).to_string(),
                            detail: format!(
                                "`{p}` is not a configured provider (add providers.{p})"
                            ),
                        });
                    }
                    p.clone()
                }
                None if by_deployment.is_some() => by_deployment.clone().unwrap_or_default(),
                None => {
                    let kind = kind_for_model(m.upstream_model.as_deref().unwrap_or(id));
                    let entry = kind.and_then(|k| providers.iter().find(|(pk, _)| *pk == k));
                    match entry {
                        Some((_, n)) => n.clone(),
                        None => {
                            return Err(CatalogError::Config {
                                key: KeyPath::fill(key::MODELS_ID_PROVIDER, &[id]).to_string(),
                                detail: "the provider cannot be told from the model name; set it"
                                    .into(),
                            });
                        }
                    }
                }
            };
            for a in &m.aliases {
                aliases.insert(a.clone(), id.clone());
            }
            models.insert(
                id.clone(),
                ModelDef {
                    id: id.clone(),
                    provider,
                    upstream: m.upstream_model.clone().unwrap_or_else(|| id.clone()),
                    display_name: m.display_name.clone().unwrap_or_else(|| id.clone()),
                    aliases: m.aliases.clone(),
                    max_context_length: m
                        .max_context_length
                        .map(|n| n.clamp(0, i32::MAX as i64) as i32),
                    supports_streaming: m.supports_streaming,
                    input_cost_per_mtok: m.input_cost_per_mtok,
                    output_cost_per_mtok: m.output_cost_per_mtok,
                    configured: true,
                },
            );
        }
        for (alias, target) in &cfg.model_aliases {
            aliases.insert(alias.clone(), target.clone());
        }
        let catalog = Catalog {
            models,
            aliases,
            default_model: cfg.server.default_model.clone(),
            open_routes: providers.to_vec(),
        };
        if !catalog.models.is_empty() {
            for (alias, target) in &cfg.model_aliases {
                if !catalog.models.contains_key(target) {
                    return Err(CatalogError::Config {
                        key: KeyPath::fill(key::MODEL_ALIASES_ALIAS, &[alias]).to_string(),
                        detail: format!("`{target}` is not a key of models"),
                    });
                }
            }
            if let Some(d) = &catalog.default_model
                && catalog.resolve(Some(d)).is_err()
            {
                return Err(CatalogError::Config {
                    key: key::SERVER_DEFAULT_MODEL.to_owned(),
                    detail: format!("`{d}` is not a key of models or model_aliases"),
                });
            }
        }
        Ok(catalog)
    }

    /// The model a request names (or the default), through aliases.
    pub fn resolve(&self, requested: Option<&str>) -> Result<ModelDef, CatalogError> {
        let name = requested
            .filter(|n| !n.trim().is_empty())
            .or(self.default_model.as_deref())
            .ok_or(CatalogError::NoModel)?;
        if let Some(m) = self.models.get(name) {
            return Ok(m.clone());
        }
        if let Some(m) = self.aliases.get(name).and_then(|id| self.models.get(id)) {
            return Ok(m.clone());
        }
        if let Some(m) = self.provider_prefixed(name) {
            return Ok(m);
        }
        if self.models.is_empty() {
            return self.open(name);
        }
        Err(CatalogError::NotFound {
            name: name.to_owned(),
            available: self.models.keys().cloned().collect(),
        })
    }

    /// A name written the direct way, `PROVIDER/MODEL` (`openai/gpt-4o`), for a configured
    /// model or alias `MODEL` that this provider serves (by its entry name or its kind).
    fn provider_prefixed(&self, name: &str) -> Option<ModelDef> {
        let (p, m) = split_provider(name, &self.open_routes)?;
        let id = if self.models.contains_key(m) {
            m
        } else {
            self.aliases.get(m)?.as_str()
        };
        let def = self.models.get(id)?;
        let served_by_p = self
            .open_routes
            .iter()
            .any(|(k, n)| *n == def.provider && (n == p || k.as_str() == p));
        served_by_p.then(|| def.clone())
    }

    /// With no models configured, any name is routed by `provider/model` or the name rule.
    fn open(&self, name: &str) -> Result<ModelDef, CatalogError> {
        let name = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        let (provider, upstream) = match split_provider(name, &self.open_routes) {
            Some((p, m)) => {
                let entry = self
                    .open_routes
                    .iter()
                    .find(|(k, n)| n == p || k.as_str() == p);
                (entry.map(|(_, n)| n.clone()), m.to_owned())
            }
            None => {
                let kind = kind_for_model(name);
                let entry = kind.and_then(|k| self.open_routes.iter().find(|(pk, _)| *pk == k));
                (
                    entry.map(|(_, n)| n.clone()),
                    name.strip_prefix("ollama:").unwrap_or(name).to_owned(),
                )
            }
        };
        let provider = provider.ok_or_else(|| CatalogError::NotFound {
            name: name.to_owned(),
            available: vec![
                "PROVIDER/MODEL, or a name starting claude-, gpt-, o1, o3 or ollama:".into(),
            ],
        })?;
        Ok(ModelDef {
            id: name.to_owned(),
            provider,
            upstream,
            display_name: name.to_owned(),
            aliases: Vec::new(),
            max_context_length: None,
            supports_streaming: true,
            input_cost_per_mtok: None,
            output_cost_per_mtok: None,
            configured: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priced(input: Option<f64>, output: Option<f64>) -> ModelDef {
        ModelDef {
            id: "m".into(),
            provider: "p".into(),
            upstream: "m".into(),
            display_name: "m".into(),
            aliases: Vec::new(),
            max_context_length: None,
            supports_streaming: true,
            input_cost_per_mtok: input,
            output_cost_per_mtok: output,
            configured: true,
        }
    }

    #[test]
    fn each_side_is_priced_by_its_own_price() {
        assert_eq!(priced(None, None).cost_usd(1_000_000, 1_000_000), None);
        assert_eq!(priced(Some(3.0), None).cost_usd(2_000_000, 5), Some(6.0));
        assert_eq!(priced(None, Some(15.0)).cost_usd(7, 1_000_000), Some(15.0));
        assert_eq!(
            priced(Some(3.0), Some(15.0)).cost_usd(1_000_000, 2_000_000),
            Some(33.0)
        );
        assert_eq!(priced(Some(3.0), Some(15.0)).cost_usd(0, 0), Some(0.0));
    }
}

#[cfg(test)]
mod prefixed_tests {
    use super::*;

    fn def(id: &str, provider: &str) -> ModelDef {
        ModelDef {
            id: id.into(),
            provider: provider.into(),
            upstream: id.into(),
            display_name: id.into(),
            aliases: Vec::new(),
            max_context_length: None,
            supports_streaming: true,
            input_cost_per_mtok: None,
            output_cost_per_mtok: None,
            configured: true,
        }
    }

    #[test]
    fn a_provider_prefixed_name_finds_the_model_its_provider_serves() {
        let mut models = IndexMap::new();
        models.insert("gpt-4o".to_owned(), def("gpt-4o", "work-openai"));
        models.insert("claude".to_owned(), def("claude", "anthropic"));
        let mut aliases = IndexMap::new();
        aliases.insert("fast".to_owned(), "gpt-4o".to_owned());
        let c = Catalog {
            models,
            aliases,
            default_model: None,
            open_routes: vec![
                (ProviderKind::OpenAi, "work-openai".to_owned()),
                (ProviderKind::Anthropic, "anthropic".to_owned()),
            ],
        };
        for name in ["openai/gpt-4o", "work-openai/gpt-4o", "openai/fast"] {
            assert_eq!(
                c.resolve(Some(name)).map(|m| m.id),
                Ok("gpt-4o".into()),
                "{name}"
            );
        }
        // Another provider's prefix does not reach it, and the error lists the names.
        let err = c.resolve(Some("anthropic/gpt-4o")).unwrap_err();
        assert!(
            err.to_string().contains("available: gpt-4o, claude"),
            "{err}"
        );
        assert!(c.resolve(Some("openai/claude")).is_err());
    }
}
