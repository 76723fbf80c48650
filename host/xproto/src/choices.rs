//! Django's `choices` option, as xproto carries it: a Python tuple of
//! pairs, `"(('vm', 'Virtual Machine'), (None, 'Default'))"`. The core's
//! write checks and model definitions and the guest model generators read
//! it through [`choice_pairs`].

/// The pairs of a `choices` option, each element a string or `None`
/// (Python's `None`, kept as `None`). `None` when the text is not a tuple
/// of pairs of quoted strings (with `\` escapes) or `None`s.
pub fn choice_pairs(text: &str) -> Option<Vec<(Option<String>, Option<String>)>> {
    let mut items: Vec<Option<String>> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '\\' => s.push(chars.next()?),
                        end if end == c => break,
                        other => s.push(other),
                    }
                }
                items.push(Some(s));
            }
            'N' => {
                for expected in "one".chars() {
                    if chars.next()? != expected {
                        return None;
                    }
                }
                items.push(None);
            }
            '(' | ')' | ',' => {}
            c if c.is_whitespace() => {}
            _ => return None,
        }
    }
    if items.is_empty() || !items.len().is_multiple_of(2) {
        return None;
    }
    Some(
        items
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect(),
    )
}
