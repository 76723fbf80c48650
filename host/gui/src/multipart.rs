//! Just enough of `multipart/form-data` (RFC 7578) for the one form that
//! uploads a file: parts with a name, an optional file name and their
//! bytes. The body is already bounded by the route's size limit; a form
//! with more than [`MAX_PARTS`] parts, or that does not parse, is refused.

use crate::error::GuiError;

/// The most parts a form may have.
const MAX_PARTS: usize = 8;

/// One part of a form.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    /// Its field name.
    pub(crate) name: String,
    /// Its file name, for a file input.
    pub(crate) filename: Option<String>,
    /// Its bytes.
    pub(crate) data: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn bad() -> GuiError {
    GuiError::BadRequest("the form did not arrive whole; reload the page and try again".into())
}

/// A `name="value"` parameter of a `Content-Disposition` header.
fn parameter(header: &str, key: &str) -> Option<String> {
    header.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The parts of `body`, delimited by `boundary`.
///
/// # Errors
///
/// [`GuiError::BadRequest`] when the body is not such a form.
pub(crate) fn parse<'a>(boundary: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, GuiError> {
    let delimiter = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let start = find(body, delimiter.as_bytes()).ok_or_else(bad)?;
    let mut rest = body.get(start + delimiter.len()..).ok_or_else(bad)?;
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or_else(bad)?;
        let end = find(rest, b"\r\n\r\n").ok_or_else(bad)?;
        let headers = String::from_utf8_lossy(rest.get(..end).ok_or_else(bad)?);
        rest = rest.get(end + 4..).ok_or_else(bad)?;
        let disposition = headers
            .split("\r\n")
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then_some(value)
            })
            .ok_or_else(bad)?;
        let name = parameter(disposition, "name").ok_or_else(bad)?;
        let filename = parameter(disposition, "filename");
        let end = find(rest, next.as_bytes()).ok_or_else(bad)?;
        parts.push(Part {
            name,
            filename,
            data: rest.get(..end).ok_or_else(bad)?,
        });
        if parts.len() > MAX_PARTS {
            return Err(bad());
        }
        rest = rest.get(end + next.len()..).ok_or_else(bad)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boundary_is_read_quoted_or_not() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=x; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
    }

    #[test]
    fn fields_and_files_are_parsed() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nt0k\r\n\
--XX\r\nContent-Disposition: form-data; name=\"package\"; filename=\"a.spkg\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\x00\r\n--X\xff\r\n--XX--\r\n";
        let parts = parse("XX", body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data),
            ("csrf", &b"t0k"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("a.spkg"));
        assert_eq!(parts[1].data, b"\x00\r\n--X\xff");
    }

    #[test]
    fn broken_forms_are_refused() {
        for body in [
            &b""[..],
            b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            b"--XX\r\nno headers end",
            b"--XX\r\nX-Other: 1\r\n\r\nv\r\n--XX--",
        ] {
            assert!(parse("XX", body).is_err(), "{body:?}");
        }
    }
}
