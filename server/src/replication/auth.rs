//! Mutual authentication of a replication session with `haAuthSecret` (beyond the
//! reference, whose HA port trusts anyone who connects).
//!
//! Lives on: the replication shard (master and slave sides); pure functions.
//!
//! ```text
//! slave  ── HELLO(..., nonce_s) ─────────────────────────▶ master
//! slave ◀── CHALLENGE(nonce_m, proof("master")) ────────── master   (slave checks it)
//! slave  ── AUTH(proof("slave")) ────────────────────────▶ master   (master checks it)
//! slave ◀── WELCOME, then DATA ─────────────────────────── master
//!
//! proof(role) = HMAC-SHA256(secret, "ramjet-ha" | role | nonce_s | nonce_m | HELLO body)
//! ```
//!
//! Each side's proof covers the other side's fresh nonce, so a recorded proof is useless
//! on a later connection, and both cover the HELLO, so its logs and address cannot be
//! changed in flight. Nothing after the handshake is authenticated (a party that can
//! rewrite TCP can still inject DATA): only TLS or a private network prevents that.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::wire::{self, Message, NONCE_BYTES, PROOF_BYTES};

/// The replication secret (`haAuthSecret`). Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct HaSecret(Vec<u8>);

impl HaSecret {
    /// The secret from its configured text; `None` when empty (authentication off).
    pub fn new(text: &str) -> Option<HaSecret> {
        (!text.is_empty()).then(|| HaSecret(text.as_bytes().to_vec()))
    }
}

impl std::fmt::Debug for HaSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HaSecret(..)")
    }
}

/// Which side a proof speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The master's proof, in CHALLENGE.
    Master,
    /// The slave's proof, in AUTH.
    Slave,
}

/// A fresh nonce from the operating system's generator.
///
/// # Errors
/// When the generator fails (the session is not started).
pub fn nonce() -> Result<[u8; NONCE_BYTES], String> {
    let mut n = [0u8; NONCE_BYTES];
    getrandom::getrandom(&mut n).map_err(|e| format!("no random nonce: {e}"))?;
    Ok(n)
}

fn mac(
    secret: &HaSecret,
    role: Role,
    slave_nonce: &[u8; NONCE_BYTES],
    master_nonce: &[u8; NONCE_BYTES],
    hello: &Message,
) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length: `None` never happens in practice.
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).ok()?;
    mac.update(b"ramjet-ha");
    mac.update(match role {
        Role::Master => b"master",
        Role::Slave => b"slave\0",
    });
    mac.update(slave_nonce);
    mac.update(master_nonce);
    mac.update(&wire::encode(hello));
    Some(mac)
}

/// The proof `role` sends for this handshake (all zeros if HMAC refused the key, which
/// it never does: such a proof verifies nowhere).
pub fn proof(
    secret: &HaSecret,
    role: Role,
    slave_nonce: &[u8; NONCE_BYTES],
    master_nonce: &[u8; NONCE_BYTES],
    hello: &Message,
) -> [u8; PROOF_BYTES] {
    mac(secret, role, slave_nonce, master_nonce, hello)
        .map_or([0; PROOF_BYTES], |m| m.finalize().into_bytes().into())
}

/// Whether `proof` is `role`'s proof for this handshake (constant time).
pub fn verify(
    secret: &HaSecret,
    role: Role,
    slave_nonce: &[u8; NONCE_BYTES],
    master_nonce: &[u8; NONCE_BYTES],
    hello: &Message,
    proof: &[u8; PROOF_BYTES],
) -> bool {
    mac(secret, role, slave_nonce, master_nonce, hello)
        .is_some_and(|m| m.verify_slice(proof).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::wire::LogState;

    fn hello(addr: &str) -> Message {
        Message::Hello {
            version: crate::replication::wire::VERSION,
            segment_size_bytes: 1 << 20,
            logs: vec![LogState { start: 0, end: 5, durable: 5 }],
            nonce: Some([9; NONCE_BYTES]),
            broker_addr: addr.into(),
        }
    }

    #[test]
    fn a_proof_verifies_only_with_the_same_secret_role_nonces_and_hello() {
        let secret = HaSecret::new("s3cret").expect("secret");
        let (ns, nm) = ([1; NONCE_BYTES], [2; NONCE_BYTES]);
        let h = hello("127.0.0.1:1");
        let p = proof(&secret, Role::Slave, &ns, &nm, &h);
        assert!(verify(&secret, Role::Slave, &ns, &nm, &h, &p));
        let other = HaSecret::new("s3creT").expect("secret");
        assert!(!verify(&other, Role::Slave, &ns, &nm, &h, &p), "another secret");
        assert!(!verify(&secret, Role::Master, &ns, &nm, &h, &p), "the other role");
        assert!(!verify(&secret, Role::Slave, &nm, &ns, &h, &p), "nonces swapped");
        assert!(!verify(&secret, Role::Slave, &ns, &[3; NONCE_BYTES], &h, &p), "a new nonce");
        assert!(!verify(&secret, Role::Slave, &ns, &nm, &hello("127.0.0.1:2"), &p), "hello");
        let mut flipped = p;
        flipped[31] ^= 1;
        assert!(!verify(&secret, Role::Slave, &ns, &nm, &h, &flipped), "a flipped bit");
    }

    #[test]
    fn an_empty_secret_is_off_and_debug_hides_the_value() {
        assert_eq!(HaSecret::new(""), None);
        let s = HaSecret::new("hidden").expect("secret");
        assert!(!format!("{s:?}").contains("hidden"));
        assert_ne!(nonce().expect("nonce"), nonce().expect("nonce"));
    }
}
