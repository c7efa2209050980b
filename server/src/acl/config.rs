//! The `plain_acl.yml` model and its loading, as the reference reads it (RocketMQ 5.1.4
//! `acl/plain/PlainAccessData.java`, `PlainAccessConfig`, `PlainPermissionManager.load`,
//! `PlainAccessResource.build`, `Permission.parseResourcePerms`):
//!
//! ```yaml
//! globalWhiteRemoteAddresses: [10.10.103.*]     # matching peers skip every check
//! accounts:
//!   - accessKey: RocketMQ                       # more than 6 characters
//!     secretKey: 12345678                       # more than 6; a number reads as text
//!     whiteRemoteAddress: 192.168.0.*           # matching peers skip signature + perms
//!     admin: false                              # admin: every resource, admin codes
//!     defaultTopicPerm: DENY                    # absent = DENY
//!     defaultGroupPerm: SUB                     # absent = DENY
//!     topicPerms: [topicA=DENY, topicB=PUB|SUB]
//!     groupPerms: [groupA=SUB]                  # stored as the topic %RETRY%groupA
//! ```
//!
//! Where the reference loads silently but ramjet refuses the file with a reason: an
//! unknown permission word (the reference reads it as DENY), a repeated access key (the
//! reference keeps the last), and a range pattern without a usable wildcard. Unknown keys
//! are refused by both (SnakeYAML's bean loading throws on them).
//!
//! The path: broker.conf's `aclFilePath` when set (ramjet's key, see DESIGN), else the
//! reference's default `$ROCKETMQ_HOME/conf/plain_acl.yml`; a relative path is relative to
//! the working directory. Not carried over from the reference: its `rocketmq.home.dir` and
//! `rocketmq.acl.plain.file` Java system properties, and the extra `*.yml` files it also
//! loads from `$ROCKETMQ_HOME/conf/acl/` (multi-file ACL); one file is read.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::address::{AddressPattern, PatternError};
use super::perm::Perm;
use super::resource::Resource;

/// `AclConstants.ACCESS_KEY_MIN_LENGTH` / `SECRET_KEY_MIN_LENGTH`: keys must be *longer*.
pub const KEY_LENGTH_MIN_EXCLUSIVE: usize = 6;

/// The loaded, validated ACL configuration. Immutable; a reload builds a new one.
#[derive(Debug, Clone, Default)]
pub struct AclConfig {
    /// `globalWhiteRemoteAddresses`: a peer matching any of these skips every check.
    pub global_white: Vec<AddressPattern>,
    /// Accounts by access key.
    pub accounts: HashMap<String, Account>,
}

/// One account of `accounts`.
#[derive(Clone)]
pub struct Account {
    /// `accessKey`.
    pub access_key: String,
    /// `secretKey` (kept out of `Debug`).
    pub secret_key: String,
    /// `whiteRemoteAddress`: a matching peer skips the signature and permission checks.
    pub white: AddressPattern,
    /// `admin`.
    pub admin: bool,
    /// `defaultTopicPerm`, for topics not in `perms`.
    pub default_topic_perm: Perm,
    /// `defaultGroupPerm`, for groups not in `perms`.
    pub default_group_perm: Perm,
    /// `topicPerms` and `groupPerms` (groups as their retry topic), by resource name.
    pub perms: HashMap<String, Perm>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("white", &self.white)
            .field("admin", &self.admin)
            .field("default_topic_perm", &self.default_topic_perm)
            .field("default_group_perm", &self.default_group_perm)
            .field("perms", &self.perms)
            .finish()
    }
}

/// Why an ACL file could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// No path: neither `aclFilePath` nor `ROCKETMQ_HOME` is set.
    NoPath,
    /// The file could not be read (missing, unreadable).
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// Not valid YAML, or a key or value of the wrong shape.
    Yaml {
        /// Where the error is, 1-based, when the parser knows.
        line: Option<usize>,
        /// Column, 1-based, when the parser knows.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// Well-formed YAML with a value the ACL refuses.
    Invalid {
        /// Which entry (`accounts[1] (accessKey=foo) topicPerms`), and why.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoPath => {
                write!(f, "ACL is enabled but neither aclFilePath nor ROCKETMQ_HOME is set")
            }
            ConfigError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            ConfigError::Yaml { line: Some(l), column: Some(c), message } => {
                write!(f, "line {l} column {c}: {message}")
            }
            ConfigError::Yaml { message, .. } => write!(f, "{message}"),
            ConfigError::Invalid { message } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The ACL file's path: `acl_file_path` (broker.conf `aclFilePath`) when set, else
/// `$ROCKETMQ_HOME/conf/plain_acl.yml` (`PlainPermissionManager.defaultAclFile`); a
/// relative result is joined to `cwd`.
///
/// # Errors
/// [`ConfigError::NoPath`] when both are absent (the reference would look for
/// `null/conf/plain_acl.yml`).
pub fn acl_file_path(
    acl_file_path: Option<&str>,
    rocketmq_home: Option<&str>,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    let path = match (acl_file_path.filter(|p| !p.trim().is_empty()), rocketmq_home) {
        (Some(p), _) => PathBuf::from(p.trim()),
        (None, Some(home)) if !home.trim().is_empty() => {
            Path::new(home.trim()).join("conf").join("plain_acl.yml")
        }
        _ => return Err(ConfigError::NoPath),
    };
    Ok(if path.is_absolute() { path } else { cwd.join(path) })
}

/// Parses the text of a `plain_acl.yml`. An empty document is an empty configuration
/// (the reference logs "No data" and carries on).
///
/// # Errors
/// [`ConfigError::Yaml`] with line and column for syntax and shape errors,
/// [`ConfigError::Invalid`] naming the entry for refused values.
pub fn parse(text: &str) -> Result<AclConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(AclConfig::default());
    }
    let file: Option<FileModel> = serde_yaml_ng::from_str(text).map_err(|e| {
        let location = e.location();
        ConfigError::Yaml {
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: e.to_string(),
        }
    })?;
    let Some(file) = file else { return Ok(AclConfig::default()) };
    let invalid = |message: String| ConfigError::Invalid { message };
    let mut config = AclConfig::default();
    for (i, text) in file.global_white_remote_addresses.unwrap_or_default().iter().enumerate() {
        let pattern = AddressPattern::parse(text)
            .map_err(|e| invalid(format!("globalWhiteRemoteAddresses[{i}]: {e}")))?;
        config.global_white.push(pattern);
    }
    for (i, model) in file.accounts.unwrap_or_default().into_iter().enumerate() {
        let account = build_account(model).map_err(|m| invalid(format!("accounts[{i}]{m}")))?;
        if config.accounts.contains_key(&account.access_key) {
            let message = format!("accounts[{i}]: accessKey {} repeated", account.access_key);
            return Err(invalid(message));
        }
        config.accounts.insert(account.access_key.clone(), account);
    }
    Ok(config)
}

/// Reads and parses the file at `path`.
///
/// # Errors
/// [`ConfigError::Io`] when it cannot be read, else as [`parse`].
pub fn load(path: &Path) -> Result<AclConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::Io { path: path.to_path_buf(), error })?;
    parse(&text)
}

/// `PlainPermissionManager.checkPlainAccessConfig` + `PlainAccessResource.build`. The
/// error text starts with the account's identity, for `accounts[i]` to prefix.
fn build_account(model: AccountModel) -> Result<Account, String> {
    let access_key = model.access_key.unwrap_or_default();
    let secret_key = model.secret_key.unwrap_or_default();
    let who = format!(" (accessKey={access_key})");
    if access_key.chars().count() <= KEY_LENGTH_MIN_EXCLUSIVE
        || secret_key.chars().count() <= KEY_LENGTH_MIN_EXCLUSIVE
    {
        return Err(format!(
            "{who}: accessKey and secretKey are required and must be longer than 6 characters"
        ));
    }
    let white = AddressPattern::parse(model.white_remote_address.as_deref().unwrap_or(""))
        .map_err(|e: PatternError| format!("{who} whiteRemoteAddress: {e}"))?;
    let default_perm = |field: &str, word: Option<String>| match word {
        None => Ok(Perm::DENY),
        Some(w) => {
            Perm::parse(&w).ok_or_else(|| format!("{who} {field}: unknown permission {w:?}"))
        }
    };
    let default_topic_perm = default_perm("defaultTopicPerm", model.default_topic_perm)?;
    let default_group_perm = default_perm("defaultGroupPerm", model.default_group_perm)?;
    let mut perms = HashMap::new();
    // Groups first, then topics, as PlainAccessResource.build: a later entry replaces.
    for entry in model.group_perms.unwrap_or_default() {
        let (name, perm) = resource_perm(&entry).map_err(|e| format!("{who} groupPerms: {e}"))?;
        perms.insert(Resource::group(name).into_name(), perm);
    }
    for entry in model.topic_perms.unwrap_or_default() {
        let (name, perm) = resource_perm(&entry).map_err(|e| format!("{who} topicPerms: {e}"))?;
        perms.insert(name.to_string(), perm);
    }
    Ok(Account {
        access_key,
        secret_key,
        white,
        admin: model.admin.unwrap_or(false),
        default_topic_perm,
        default_group_perm,
        perms,
    })
}

/// `name=PERM`, split as `StringUtils.split(entry, "=")` (empty pieces dropped, exactly
/// two left), both sides trimmed.
fn resource_perm(entry: &str) -> Result<(&str, Perm), String> {
    let pieces: Vec<&str> = entry.split('=').filter(|p| !p.is_empty()).collect();
    let [name, word] = pieces.as_slice() else {
        return Err(format!("{entry:?} is not name=PERM"));
    };
    let perm = Perm::parse(word).ok_or_else(|| format!("{entry:?}: unknown permission"))?;
    Ok((name.trim(), perm))
}

/// The file as YAML sees it (`PlainAccessData`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileModel {
    #[serde(default, deserialize_with = "scalar_list")]
    global_white_remote_addresses: Option<Vec<String>>,
    #[serde(default)]
    accounts: Option<Vec<AccountModel>>,
    /// Written by the reference's admin API; not used for decisions.
    #[serde(default, rename = "dataVersion")]
    _data_version: Option<serde_yaml_ng::Value>,
}

/// One account as YAML sees it (`PlainAccessConfig`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountModel {
    #[serde(default, deserialize_with = "scalar")]
    access_key: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    secret_key: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    white_remote_address: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    admin: Option<bool>,
    #[serde(default, deserialize_with = "scalar")]
    default_topic_perm: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    default_group_perm: Option<String>,
    #[serde(default, deserialize_with = "scalar_list")]
    topic_perms: Option<Vec<String>>,
    #[serde(default, deserialize_with = "scalar_list")]
    group_perms: Option<Vec<String>>,
}

/// Any YAML scalar as its text (`secretKey: 12345678` is a number to YAML but a String
/// property to the reference's SnakeYAML bean); null is `None`.
struct ScalarText;

impl<'de> Visitor<'de> for ScalarText {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ScalarText)
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(ScalarText)
}

fn scalar_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "scalar")] Option<String>);
    let items: Option<Vec<Item>> = Option::deserialize(d)?;
    Ok(items.map(|v| v.into_iter().filter_map(|Item(s)| s).collect()))
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match scalar(d)?.as_deref().map(str::trim) {
        None => Ok(None),
        Some(t) if t.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(t) if t.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(t) => Err(de::Error::custom(format!("admin: expected true or false, got {t:?}"))),
    }
}

#[cfg(test)]
mod tests;
