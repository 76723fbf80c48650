//! Where the service graph puts its nodes when an operator said so: the
//! `ServiceGraphConstraint` with the highest `priority`, as in XOS. Its
//! `constraints` is a list of columns, left to right, each a service or a
//! list of services stacked top to bottom:
//! `[volt, vsg, [address_manager, vrouter]]` (names may be quoted, as in
//! JSON). Services it does not name are laid out after its columns.

use syncplane_api::AppState;
use syncplane_core::Query;

use crate::error::GuiError;
use crate::session::Viewer;

/// The model holding the constraints.
const MODEL: &str = "ServiceGraphConstraint";

/// The columns `text` sets, or `None` when it is not such a list.
pub(crate) fn parse(text: &str) -> Option<Vec<Vec<String>>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut items = Vec::new();
    let (mut depth, mut start) = (0u8, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            '[' => return None,
            ']' if depth == 1 => depth = 0,
            ']' => return None,
            ',' if depth == 0 => {
                items.push(inner.get(start..i)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    let last = inner.get(start..)?;
    if !(items.is_empty() && last.trim().is_empty()) {
        items.push(last);
    }
    let name = |s: &str| {
        let s = s.trim().trim_matches(|c| c == '"' || c == '\'').trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    items
        .into_iter()
        .map(|item| match item.trim().strip_prefix('[') {
            Some(list) => list.strip_suffix(']')?.split(',').map(name).collect(),
            None => Some(vec![name(item)?]),
        })
        .collect()
}

/// The columns of the highest-priority constraint the viewer may read:
/// `Ok(None)` without one, `Err(text)` with the text when it does not
/// parse (the page says so and lays the graph out itself).
pub(crate) async fn columns(
    state: &AppState,
    viewer: &Viewer,
) -> Result<Result<Option<Vec<Vec<String>>>, String>, GuiError> {
    let core = state.host.core();
    let asked = [
        ("ordering".to_owned(), "-priority".to_owned()),
        ("page_size".to_owned(), "1".to_owned()),
    ];
    let Ok(query) = Query::parse(&core.registry(), MODEL, &asked) else {
        return Ok(Ok(None));
    };
    let listing = core
        .query_as(&viewer.user.principal(), MODEL, &query)
        .await?;
    let Some(text) = listing
        .objects
        .first()
        .and_then(|o| o.str_field("constraints"))
    else {
        return Ok(Ok(None));
    };
    Ok(parse(text).map(Some).ok_or_else(|| text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|c| c.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn columns_of_names_and_stacks() {
        assert_eq!(
            parse("[volt, vsg, [address_manager, vrouter]]"),
            Some(cols(&[
                &["volt"],
                &["vsg"],
                &["address_manager", "vrouter"]
            ]))
        );
        assert_eq!(
            parse(r#"[["a", "b"], "c"]"#),
            Some(cols(&[&["a", "b"], &["c"]]))
        );
        assert_eq!(parse("[]"), Some(Vec::new()));
    }

    #[test]
    fn what_is_not_such_a_list_is_refused() {
        for text in ["volt", "[a, [b]", "[a,, b]", "[[a, [b]]]", ""] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
