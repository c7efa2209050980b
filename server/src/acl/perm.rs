//! Permissions as the reference's `acl/common/Permission.java` (RocketMQ 5.1.4) defines
//! them: a bit set where DENY wins over everything.
//!
//! ```text
//! bit 0  DENY  (1)    bit 2  PUB (4)
//! bit 1  ANY   (2)    bit 3  SUB (8)     ANY is only ever *needed*, never owned.
//! ```

/// A permission bit set (`Permission.DENY|ANY|PUB|SUB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm(u8);

impl Perm {
    /// Nothing allowed; wins over any other bit.
    pub const DENY: Perm = Perm(1);
    /// Needed by requests satisfied by either PUB or SUB.
    pub const ANY: Perm = Perm(1 << 1);
    /// Publish.
    pub const PUB: Perm = Perm(1 << 2);
    /// Subscribe.
    pub const SUB: Perm = Perm(1 << 3);
    /// Publish and subscribe.
    pub const PUB_SUB: Perm = Perm((1 << 2) | (1 << 3));

    /// Parses a permission word of `plain_acl.yml`: `DENY`, `PUB`, `SUB`, `PUB|SUB` or
    /// `SUB|PUB`, surrounding whitespace ignored. `None` for anything else.
    ///
    /// The reference (`Permission.parsePermFromString`) silently reads an unknown word as
    /// DENY when it loads the file; ramjet refuses the file instead (the reference's own
    /// `checkResourcePerms` does so for the admin API), so a typo cannot lock users out
    /// without a word.
    pub fn parse(word: &str) -> Option<Perm> {
        match word.trim() {
            "PUB" => Some(Perm::PUB),
            "SUB" => Some(Perm::SUB),
            "PUB|SUB" | "SUB|PUB" => Some(Perm::PUB_SUB),
            "DENY" => Some(Perm::DENY),
            _ => None,
        }
    }

    /// `Permission.checkPermission(needed, owned)`: does owning `self` grant `needed`?
    pub fn grants(self, needed: Perm) -> bool {
        if self.0 & Perm::DENY.0 != 0 {
            return false;
        }
        if needed.0 & Perm::ANY.0 != 0 {
            return self.0 & (Perm::PUB.0 | Perm::SUB.0) != 0;
        }
        needed.0 & self.0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the decision table of Permission.checkPermission, every owned x needed pair.
    #[test]
    fn grants_table() {
        let owned = [Perm::DENY, Perm::PUB, Perm::SUB, Perm::PUB_SUB];
        let needed = [Perm::PUB, Perm::SUB, Perm::ANY];
        // Rows: owned; columns: needed PUB, SUB, ANY.
        let expected =
            [[false, false, false], [true, false, true], [false, true, true], [true, true, true]];
        for (o, row) in owned.iter().zip(expected) {
            for (n, want) in needed.iter().zip(row) {
                assert_eq!(o.grants(*n), want, "owned {o:?} needed {n:?}");
            }
        }
    }

    #[test]
    fn parse_words() {
        assert_eq!(Perm::parse(" PUB|SUB "), Some(Perm::PUB_SUB));
        assert_eq!(Perm::parse("SUB|PUB"), Some(Perm::PUB_SUB));
        assert_eq!(Perm::parse("DENY"), Some(Perm::DENY));
        assert_eq!(Perm::parse("pub"), None);
        assert_eq!(Perm::parse("PUB | SUB"), None);
    }
}
