//! DNS names as users write them and as PowerDNS wants them: absolute,
//! lowercase, with a trailing dot.

/// The absolute name of a zone: `Example.org` → `example.org.`.
pub fn zone_fqdn(zone: &str) -> String {
    absolute(zone)
}

/// The absolute owner name of a record `name` in `zone_fqdn`: `@` or an
/// empty name is the zone itself, a name ending in a dot is absolute
/// already, anything else is relative to the zone.
pub fn record_fqdn(name: &str, zone_fqdn: &str) -> String {
    let name = name.trim();
    if name.is_empty() || name == "@" {
        zone_fqdn.to_owned()
    } else if name.ends_with('.') {
        name.to_ascii_lowercase()
    } else {
        format!("{}.{zone_fqdn}", name.to_ascii_lowercase())
    }
}

/// The name a user would write for `fqdn` in `zone_fqdn`: `@` for the zone,
/// the relative part for a name inside it, the absolute name otherwise.
pub fn relative_name(fqdn: &str, zone_fqdn: &str) -> String {
    let fqdn = fqdn.to_ascii_lowercase();
    if fqdn == zone_fqdn {
        return "@".to_owned();
    }
    match fqdn
        .strip_suffix(zone_fqdn)
        .and_then(|prefix| prefix.strip_suffix('.'))
    {
        Some(relative) if !relative.is_empty() => relative.to_owned(),
        _ => fqdn,
    }
}

/// The name servers of a zone from its comma-separated `nameservers`
/// field, as absolute names; `ns1.<zone>` when there are none.
pub fn nameservers(field: Option<&str>, zone_fqdn: &str) -> Vec<String> {
    let listed: Vec<String> = field
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(absolute)
        .collect();
    if listed.is_empty() {
        vec![format!("ns1.{zone_fqdn}")]
    } else {
        listed
    }
}

fn absolute(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_absolute_relative_to_their_zone() {
        let zone = zone_fqdn("Example.org");
        assert_eq!(zone, "example.org.");
        assert_eq!(record_fqdn("www", &zone), "www.example.org.");
        assert_eq!(record_fqdn("@", &zone), "example.org.");
        assert_eq!(record_fqdn("", &zone), "example.org.");
        assert_eq!(record_fqdn("Mail.Example.org.", &zone), "mail.example.org.");
    }

    #[test]
    fn absolute_names_become_relative_again() {
        assert_eq!(relative_name("www.example.org.", "example.org."), "www");
        assert_eq!(relative_name("example.org.", "example.org."), "@");
        assert_eq!(relative_name("other.net.", "example.org."), "other.net.");
        assert_eq!(
            relative_name("badexample.org.", "example.org."),
            "badexample.org."
        );
    }

    #[test]
    fn nameservers_default_to_ns1_of_the_zone() {
        assert_eq!(nameservers(None, "example.org."), ["ns1.example.org."]);
        assert_eq!(
            nameservers(Some(" a.example.net, b.example.net. "), "example.org."),
            ["a.example.net.", "b.example.net."]
        );
    }
}
