//! Splitting an `http(s)://authority/path?query` URL into what
//! `wasi:http` asks for.

/// The parts of a URL `wasi:http` sets one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    /// Whether the scheme is `https`.
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
    /// `/path?query`, at least `/`.
    pub path_with_query: String,
}

/// Splits `url`; the fragment is dropped, as a client never sends it.
pub(crate) fn split(url: &str) -> Result<Parts, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not an absolute URL (http://host/path)"))?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        other => {
            return Err(format!(
                "`{url}`: scheme `{other}` is not supported (http or https)"
            ));
        }
    };
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if authority.contains('@') {
        return Err(format!(
            "`{url}`: user names and passwords in URLs are not supported; send a header"
        ));
    }
    if authority
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("`{url}`: the host contains whitespace"));
    }
    let path_with_query = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    Ok(Parts {
        https,
        authority: authority.to_owned(),
        path_with_query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_splits_into_scheme_authority_and_path() {
        let parts = split("http://127.0.0.1:8081/api/v1/servers?x=1#frag").expect("valid");
        assert_eq!(
            parts,
            Parts {
                https: false,
                authority: "127.0.0.1:8081".into(),
                path_with_query: "/api/v1/servers?x=1".into()
            }
        );
    }

    #[test]
    fn a_url_without_path_gets_the_root() {
        assert_eq!(
            split("HTTPS://example.com").expect("valid").path_with_query,
            "/"
        );
        assert_eq!(
            split("http://example.com?q")
                .expect("valid")
                .path_with_query,
            "/?q"
        );
    }

    #[test]
    fn other_schemes_credentials_and_relative_urls_are_refused() {
        assert!(split("ftp://example.com/").is_err());
        assert!(split("http://user:pw@example.com/").is_err());
        assert!(split("/relative").is_err());
        assert!(split("http:///path").is_err());
    }
}
