//! The ACME account: the one stored under `acme/` for this directory URL, or a new one
//! (then stored, 0600).

use std::path::Path;

use instant_acme::{Account, AccountCredentials, NewAccount};

use super::{AcmeError, DIR, chain, fail};
use crate::config::generated::server::{Acme, key};
use crate::config::store;

const ACCOUNT: &str = "account.json";

/// The stored account for this directory, or a new one (then stored, 0600).
pub(super) async fn account(cfg: &Acme, dir: &Path) -> Result<Account, AcmeError> {
    let builder = || match &cfg.ca_cert_file {
        Some(p) => Account::builder_with_root(p).map_err(|e| AcmeError::Config {
            key: key::ACME_CA_CERT_FILE,
            detail: format!("cannot use {}: {}", p.display(), chain(&e)),
        }),
        None => Account::builder().map_err(|e| AcmeError::Config {
            key: key::ACME_DIRECTORY_URL,
            detail: format!("no system trust store: {}", chain(&e)),
        }),
    };
    let path = dir.join(DIR).join(ACCOUNT);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(stored) = serde_json::from_str::<serde_json::Value>(&text)
        && stored["directory_url"] == cfg.directory_url.as_str()
        && let Ok(creds) =
            serde_json::from_value::<AccountCredentials>(stored["credentials"].clone())
    {
        return builder()?
            .from_credentials(creds)
            .await
            .map_err(fail(cfg, "the stored account"));
    }
    let contact: Vec<String> = cfg.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, creds) = builder()?
        .create(&new, cfg.directory_url.clone(), None)
        .await
        .map_err(fail(cfg, "a new account"))?;
    let stored = serde_json::json!({ "directory_url": cfg.directory_url, "credentials": creds });
    store::write_atomic(&path, &stored.to_string(), true).map_err(|e| AcmeError::Store {
        what: "account",
        path: path.clone(),
        detail: e.to_string(),
    })?;
    Ok(account)
}
