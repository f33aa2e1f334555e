//! Provider API keys, found by the wire contract's lookup order. The client's direct mode and
//! the server's upstreams both call [`resolve_key`], so the order is written down once.

use std::path::Path;

use super::ProviderKind;
use crate::config::Secret;

/// The provider's own SDK env var (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`); Ollama has none.
pub fn conventional_env(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
        ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
        ProviderKind::Ollama => None,
    }
}

/// `VIBECTL_<NAME>_API_KEY` for a provider name (`-` and `.` become `_`).
pub fn key_env(name: &str) -> String {
    format!(
        "VIBECTL_{}_API_KEY",
        name.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// `VIBECTL_<NAME>_API_KEY_FILE` for a provider name.
pub fn key_file_env(name: &str) -> String {
    format!("{}_FILE", key_env(name))
}

fn read_key_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the API key file {}: {e}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!("the API key file {} is empty", path.display()));
    }
    Ok(Secret::new(key))
}

/// The API key of provider `name`, first found wins: env `VIBECTL_<NAME>_API_KEY`; the file
/// named by env `VIBECTL_<NAME>_API_KEY_FILE`; `key` (the config's `providers.<name>.key`);
/// the file at `key_file`; then the kind's conventional env var. Empty values count as unset.
/// `Ok(None)` when no source has one; `Err` when a named file cannot be read. The key stays a
/// [`Secret`] from here to the request header it goes into.
pub fn resolve_key(
    name: &str,
    kind: ProviderKind,
    key: Option<&Secret>,
    key_file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, String> {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    if let Some(k) = set(env(&key_env(name))) {
        return Ok(Some(Secret::new(k.trim())));
    }
    if let Some(f) = set(env(&key_file_env(name))) {
        return read_key_file(Path::new(&f)).map(Some);
    }
    if let Some(k) = key.filter(|k| !k.is_blank()) {
        return Ok(Some(k.trimmed()));
    }
    if let Some(f) = key_file {
        return read_key_file(f).map(Some);
    }
    Ok(conventional_env(kind)
        .and_then(|var| set(env(var)))
        .map(|k| Secret::new(k.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_order_is_env_env_file_key_key_file_conventional() {
        let dir = tempfile::tempdir().expect("temp dir");
        let env_file = dir.path().join("env-key");
        let cfg_file = dir.path().join("cfg-key");
        std::fs::write(&env_file, "from-env-file\n").expect("write");
        std::fs::write(&cfg_file, " from-key-file ").expect("write");
        let env_file_s = env_file.to_string_lossy().into_owned();
        let kind = ProviderKind::OpenAi;
        let all = env_of(&[
            ("VIBECTL_OPENAI_API_KEY", "from-env"),
            ("VIBECTL_OPENAI_API_KEY_FILE", &env_file_s),
            ("OPENAI_API_KEY", "from-sdk-env"),
        ]);
        let r = |env: &dyn Fn(&str) -> Option<String>, key: Option<&str>, file| {
            let key = key.map(Secret::new);
            resolve_key("openai", kind, key.as_ref(), file, env)
                .expect("resolves")
                .map(|k| k.expose().to_owned())
        };
        assert_eq!(
            r(&all, Some("k"), Some(&cfg_file)).as_deref(),
            Some("from-env")
        );
        let no_env = env_of(&[
            ("VIBECTL_OPENAI_API_KEY_FILE", &env_file_s),
            ("OPENAI_API_KEY", "x"),
        ]);
        assert_eq!(
            r(&no_env, Some("k"), Some(&cfg_file)).as_deref(),
            Some("from-env-file")
        );
        let sdk = env_of(&[("OPENAI_API_KEY", "from-sdk-env")]);
        assert_eq!(r(&sdk, Some("k"), Some(&cfg_file)).as_deref(), Some("k"));
        assert_eq!(
            r(&sdk, None, Some(&cfg_file)).as_deref(),
            Some("from-key-file")
        );
        assert_eq!(r(&sdk, None, None).as_deref(), Some("from-sdk-env"));
        assert_eq!(r(&env_of(&[]), Some(""), None), None);
    }

    #[test]
    fn names_are_upper_cased_and_unreadable_files_are_errors() {
        assert_eq!(key_env("my-gw.eu"), "VIBECTL_MY_GW_EU_API_KEY");
        let env = env_of(&[]);
        let missing = Path::new("/nonexistent/vibectl-key");
        let err = resolve_key("ollama", ProviderKind::Ollama, None, Some(missing), &env)
            .expect_err("an unreadable file is an error");
        assert!(err.contains("/nonexistent/vibectl-key"), "{err}");
        assert_eq!(
            resolve_key("ollama", ProviderKind::Ollama, None, None, &env),
            Ok(None)
        );
    }
}
