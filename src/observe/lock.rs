//! The deterministic name of a target's execution object (the lock).

use sha2::{Digest, Sha256};

/// `wfe-` + the first 16 hex digits of sha256(target).
pub fn lock_name(target: &str) -> String {
    let digest = Sha256::digest(target.as_bytes());
    format!("wfe-{}", &hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_kubernaut() {
        assert_eq!(
            super::lock_name("default/deployment/my-app"),
            "wfe-c00449355dfb987a"
        );
    }
}
