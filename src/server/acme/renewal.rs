//! The ACME certificate over time: the one to serve at startup (the stored one unless it is
//! missing or due) and the background task that renews it
//! `acme.renew_days_before_expiry` days before it expires.

use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use super::{AcmeError, CertFiles, cert_files, obtain};
use crate::config::generated::server::{Acme, key};
use crate::server::ca;

/// The longest sleep of the renewal task between two looks at the certificate.
const RENEW_CHECK: Duration = Duration::from_secs(12 * 3600);
/// How long the renewal task waits after a failed renewal before trying again.
const RENEW_RETRY: Duration = Duration::from_secs(3600);

/// When the stored certificate expires, if there is one that loads with its key.
fn stored_expiry(files: &CertFiles) -> Option<OffsetDateTime> {
    files.load().ok()?;
    ca::inspect(&files.cert).ok().map(|c| c.not_after)
}

/// Whether a certificate expiring at `not_after` is due for renewal.
pub fn due(not_after: OffsetDateTime, renew_days_before_expiry: i64) -> bool {
    not_after - time::Duration::days(renew_days_before_expiry) <= OffsetDateTime::now_utc()
}

/// The certificate to serve at startup: the stored one unless it is missing or due, else a new
/// one. When a renewal fails but the stored certificate is still valid, it is kept.
pub async fn ensure(cfg: &Acme, dir: &Path) -> Result<CertFiles, AcmeError> {
    let files = cert_files(dir);
    match stored_expiry(&files) {
        Some(t) if !due(t, cfg.renew_days_before_expiry) => Ok(files),
        Some(t) => match obtain(cfg, dir).await {
            Ok(f) => Ok(f),
            Err(e) => {
                tracing::warn!(
                    "keeping the ACME certificate that expires {t}: renewal failed: {e}"
                );
                Ok(files)
            }
        },
        None => obtain(cfg, dir).await,
    }
}

/// Renew in the background before expiry; a failure is logged and retried, and the last good
/// certificate stays in place meanwhile.
pub fn spawn_renewal(cfg: Acme, dir: PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let files = cert_files(&dir);
            let wait = match stored_expiry(&files) {
                Some(t) => {
                    let renew_at = t - time::Duration::days(cfg.renew_days_before_expiry);
                    let left = (renew_at - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
                    Duration::try_from(left).unwrap_or(Duration::ZERO)
                }
                None => Duration::ZERO,
            };
            if !wait.is_zero() {
                tokio::time::sleep(wait.min(RENEW_CHECK)).await;
                continue;
            }
            match obtain(&cfg, &dir).await {
                Err(e) => {
                    tracing::warn!("ACME renewal failed, keeping the current certificate: {e}");
                    tokio::time::sleep(RENEW_RETRY).await;
                }
                // A CA issuing certificates shorter than the renewal window would otherwise be
                // asked again at once, for ever.
                Ok(_) => {
                    if stored_expiry(&cert_files(&dir))
                        .is_some_and(|t| due(t, cfg.renew_days_before_expiry))
                    {
                        tracing::warn!(
                            "the renewed certificate is already due for renewal: the CA issues \
                             certificates shorter than {}; next try in {RENEW_RETRY:?}",
                            key::ACME_RENEW_DAYS_BEFORE_EXPIRY
                        );
                        tokio::time::sleep(RENEW_RETRY).await;
                    }
                }
            }
        }
    })
}
