//! ACL credentials of the admin tool: `--access-key` / `--secret-key`, else the
//! reference's tools file `$ROCKETMQ_HOME/conf/tools.yml` (`accessKey`, `secretKey`; as
//! `MQAdminStartup` reads it through `AclUtils.getAclRPCHook`), else none (unsigned).
//!
//! Stricter than the reference, which logs and carries on unsigned: one flag without the
//! other, or a tools file that exists but is not YAML or lacks a key, is a usage error.

use std::path::Path;

use ramjet_client::Credentials;
use serde::Deserialize;

use crate::error::AdminError;

/// `MixAll.ACL_CONF_TOOLS_FILE`, under `ROCKETMQ_HOME`.
pub const TOOLS_FILE: &str = "conf/tools.yml";

/// The tools file's keys (others are ignored, as the reference's JSON object does).
#[derive(Debug, Deserialize)]
struct ToolsFile {
    #[serde(rename = "accessKey")]
    access_key: Option<String>,
    #[serde(rename = "secretKey")]
    secret_key: Option<String>,
}

/// The credentials to sign with, if any.
///
/// # Errors
/// `Usage` for one flag without the other, or an unusable tools file (named).
pub fn resolve(
    access_key: Option<&str>,
    secret_key: Option<&str>,
    rocketmq_home: Option<&str>,
) -> Result<Option<Credentials>, AdminError> {
    match (access_key, secret_key) {
        (Some(a), Some(s)) => return Ok(Some(credentials(a, s))),
        (Some(_), None) | (None, Some(_)) => {
            return Err(AdminError::Usage("--access-key and --secret-key go together".to_string()))
        }
        (None, None) => {}
    }
    let Some(home) = rocketmq_home.filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    let path = Path::new(home.trim()).join(TOOLS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => from_tools_file(&path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AdminError::Usage(format!("{}: {e}", path.display()))),
    }
}

fn credentials(access_key: &str, secret_key: &str) -> Credentials {
    Credentials {
        access_key: access_key.to_string(),
        secret_key: secret_key.to_string(),
        security_token: None,
    }
}

/// Reads `accessKey` and `secretKey` from the text of the tools file at `path`.
fn from_tools_file(path: &Path, text: &str) -> Result<Credentials, AdminError> {
    let bad = |why: String| AdminError::Usage(format!("{}: {why}", path.display()));
    let file: ToolsFile = serde_yaml_ng::from_str(text).map_err(|e| bad(e.to_string()))?;
    match (file.access_key, file.secret_key) {
        (Some(a), Some(s)) if !a.trim().is_empty() && !s.trim().is_empty() => {
            Ok(credentials(&a, &s))
        }
        _ => Err(bad("accessKey and secretKey must both be set".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: flags win, go in pairs; the tools file is read when present, absent means
    // unsigned, and a broken one is an error naming it.
    #[test]
    fn flags_then_tools_file() {
        let got = resolve(Some("RocketMQ"), Some("12345678"), None).expect("flags");
        assert_eq!(got.map(|c| c.access_key), Some("RocketMQ".to_string()));
        assert!(matches!(resolve(Some("RocketMQ"), None, None), Err(AdminError::Usage(_))));
        assert!(resolve(None, None, None).expect("none").is_none());

        let home = std::env::temp_dir().join(format!("ramjet-admin-tools-{}", std::process::id()));
        std::fs::create_dir_all(home.join("conf")).expect("mkdir");
        let home_text = home.to_str().expect("utf-8 path");
        assert!(resolve(None, None, Some(home_text)).expect("no file").is_none());
        let file = home.join(TOOLS_FILE);
        std::fs::write(&file, "accessKey: rocketmq2\nsecretKey: 12345678\n").expect("write");
        let got = resolve(None, None, Some(home_text)).expect("file").expect("some");
        assert_eq!((got.access_key.as_str(), got.secret_key.as_str()), ("rocketmq2", "12345678"));
        let flags = resolve(Some("other12"), Some("secret12"), Some(home_text)).expect("flags");
        assert_eq!(flags.map(|c| c.access_key), Some("other12".to_string()));
        std::fs::write(&file, "accessKey: [unclosed\n").expect("write");
        let err = resolve(None, None, Some(home_text)).expect_err("bad file");
        assert!(err.to_string().contains("tools.yml"), "{err}");
        std::fs::write(&file, "accessKey: rocketmq2\n").expect("write");
        assert!(resolve(None, None, Some(home_text)).is_err());
        let _ = std::fs::remove_dir_all(&home);
    }
}
