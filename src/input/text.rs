//! Bytes to text: UTF-8, a leading byte-order mark dropped (editors on
//! Windows write one; it carries no content).

use std::path::Path;

use super::InputError;

const BOM: &str = "\u{FEFF}";

/// The text without a leading byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// UTF-8 text of `bytes`, without a leading byte-order mark.
pub fn to_text(path: &Path, bytes: Vec<u8>) -> Result<String, InputError> {
    let mut text = String::from_utf8(bytes).map_err(|e| InputError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    if text.starts_with(BOM) {
        text.drain(..BOM.len());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_is_dropped_and_bad_utf8_located() {
        let p = Path::new("x.yaml");
        assert_eq!(to_text(p, b"\xEF\xBB\xBFa: 1".to_vec()).unwrap(), "a: 1");
        assert_eq!(strip_bom("\u{FEFF}a"), "a");
        let e = to_text(p, b"ab\xFF".to_vec()).unwrap_err();
        assert!(e.to_string().contains("at byte 2"), "{e}");
    }
}
