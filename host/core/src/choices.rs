//! Django's `choices` option, as xproto carries it: a Python tuple of
//! pairs, `"(('vm', 'Virtual Machine'), (None, 'Default'))"`. The write
//! checks take the first elements (`constraints`), model definitions the
//! pairs (`modeldefs`). The parser lives in `syncplane-xproto`, which the
//! guest model generators share.

pub(crate) use syncplane_xproto::choice_pairs as pairs;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_of_strings_and_nones_are_read() {
        assert_eq!(
            pairs(r#"((None, 'Default'), ("pub", 'Pub\'lic'))"#),
            Some(vec![
                (None, Some("Default".to_owned())),
                (Some("pub".to_owned()), Some("Pub'lic".to_owned())),
            ])
        );
        assert_eq!(pairs("(('a',),)"), None);
        assert_eq!(pairs("[x]"), None);
        assert_eq!(pairs("(('a', 'b"), None);
        assert_eq!(pairs("((Nope, 'x'),)"), None);
    }
}
