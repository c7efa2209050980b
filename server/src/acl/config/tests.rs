//! Goal: `plain_acl.yml` loads as the reference reads it, and a bad file names the place
//! and the reason.

use super::*;

/// The reference's shipped `distribution/conf/plain_acl.yml` (5.1.4), comments dropped.
const REFERENCE_SAMPLE: &str = "\
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      # the group should convert to retry topic
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    # if it is admin, it could access all resources
    admin: true
";

fn invalid_message(text: &str) -> String {
    match parse(text) {
        Err(ConfigError::Invalid { message }) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn reference_sample_loads() {
    let config = parse(REFERENCE_SAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.global_white.len(), 2);
    let a = &config.accounts["RocketMQ"];
    assert_eq!(a.secret_key, "12345678", "a numeric secret reads as its text");
    assert_eq!(a.white, AddressPattern::Blank);
    assert!(!a.admin);
    assert_eq!((a.default_topic_perm, a.default_group_perm), (Perm::DENY, Perm::SUB));
    assert_eq!(a.perms["topicB"], Perm::PUB_SUB);
    assert_eq!(a.perms["%RETRY%groupA"], Perm::DENY, "groups are keyed by retry topic");
    assert_eq!(a.perms.len(), 6);
    let b = &config.accounts["rocketmq2"];
    assert!(b.admin);
    assert_eq!((b.default_topic_perm, b.default_group_perm), (Perm::DENY, Perm::DENY));
    assert!(!format!("{a:?}").contains("12345678"), "Debug hides the secret");
}

#[test]
fn empty_file_is_an_empty_config() {
    for text in ["", "  \n", "# only a comment\n", "~\n"] {
        let config = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(config.accounts.is_empty() && config.global_white.is_empty());
    }
}

#[test]
fn syntax_error_has_line_and_column() {
    let text = "accounts:\n  - accessKey: RocketMQ\n   secretKey: [unclosed\n";
    match parse(text) {
        Err(ConfigError::Yaml { line: Some(line), column: Some(_), .. }) => assert!(line >= 2),
        other => panic!("expected Yaml with a location, got {other:?}"),
    }
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    let text = "accounts:\n  - accessKey: RocketMQ\n    secretKey: 12345678\n    admn: true\n";
    match parse(text) {
        Err(e @ ConfigError::Yaml { line: Some(4), .. }) => assert!(e.to_string().contains("admn")),
        other => panic!("expected Yaml at line 4, got {other:?}"),
    }
}

#[test]
fn refused_values_name_the_entry() {
    let account = |extra: &str| {
        format!("accounts:\n  - accessKey: RocketMQ\n    secretKey: 12345678\n{extra}")
    };
    let m = invalid_message("accounts:\n  - accessKey: short\n    secretKey: 12345678\n");
    assert!(m.contains("accounts[0]") && m.contains("longer than 6"), "{m}");
    let m = invalid_message(&account("    topicPerms: [topicA=PUB | SUB]\n"));
    assert!(m.contains("topicPerms") && m.contains("unknown permission"), "{m}");
    let m = invalid_message(&account("    groupPerms: [groupA]\n"));
    assert!(m.contains("groupPerms") && m.contains("name=PERM"), "{m}");
    let m = invalid_message(&account("    defaultTopicPerm: ALL\n"));
    assert!(m.contains("defaultTopicPerm"), "{m}");
    let m = invalid_message(&account("    whiteRemoteAddress: 192.168.1\n"));
    assert!(m.contains("whiteRemoteAddress"), "{m}");
    let m = invalid_message("globalWhiteRemoteAddresses: ['300.1.1.1']\n");
    assert!(m.contains("globalWhiteRemoteAddresses[0]"), "{m}");
    let twice = format!("{}{}", account(""), "  - accessKey: RocketMQ\n    secretKey: 87654321\n");
    assert!(invalid_message(&twice).contains("repeated"));
}

#[test]
fn topic_perms_override_group_perms_for_the_same_name() {
    let text = "accounts:\n  - accessKey: RocketMQ\n    secretKey: 12345678\n    \
                groupPerms: [g=SUB]\n    topicPerms: ['%RETRY%g=DENY', 'a==PUB']\n";
    let config = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let a = &config.accounts["RocketMQ"];
    assert_eq!(a.perms["%RETRY%g"], Perm::DENY);
    // StringUtils.split drops the empty piece between the two '='.
    assert_eq!(a.perms["a"], Perm::PUB);
}

#[test]
fn path_defaults_as_the_reference() {
    let cwd = Path::new("/srv/broker");
    let p = |acl, home| acl_file_path(acl, home, cwd).map_err(|e| e.to_string());
    assert_eq!(p(None, Some("/opt/rmq")), Ok(PathBuf::from("/opt/rmq/conf/plain_acl.yml")));
    assert_eq!(p(Some("/etc/acl.yml"), Some("/opt/rmq")), Ok(PathBuf::from("/etc/acl.yml")));
    assert_eq!(p(Some("conf/a.yml"), None), Ok(PathBuf::from("/srv/broker/conf/a.yml")));
    assert_eq!(p(None, Some("rmq")), Ok(PathBuf::from("/srv/broker/rmq/conf/plain_acl.yml")));
    assert!(p(None, None).is_err() && p(Some(" "), Some("")).is_err());
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("plain_acl.yml");
    assert!(matches!(load(&missing), Err(ConfigError::Io { .. })));
}
