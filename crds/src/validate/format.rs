//! Syntax rules for single values. Each returns the problem with a message that says what is allowed.

use std::net::IpAddr;
use std::time::Duration as StdDuration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::Problem;
use crate::kinds::Framework;
use crate::window::parse_time_of_day;

/// Kubernetes' limit on the total size of an object's annotations.
pub(super) const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

type Rule = Result<(), Problem>;

/// A DNS-1123 label: a site name (it becomes a namespace), a partner id.
pub(super) fn dns_label(s: &str) -> Rule {
    if s.len() > 63 {
        return Err(Problem::too_long(format!(
            "must be at most 63 characters, not {} (it is a DNS-1123 label)",
            s.len()
        )));
    }
    if is_dns_label(s) {
        Ok(())
    } else {
        Err(Problem::invalid(
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a \
             letter or digit (e.g. clinic-a)",
        ))
    }
}

/// A DNS-1123 subdomain: the name of most objects.
pub(super) fn dns_subdomain(s: &str) -> Rule {
    if s.len() > 253 {
        return Err(Problem::too_long(format!(
            "must be at most 253 characters, not {} (it is a DNS-1123 subdomain)",
            s.len()
        )));
    }
    if s.split('.').all(is_dns_label) {
        Ok(())
    } else {
        Err(Problem::invalid(
            "must be a DNS-1123 subdomain: dot-separated parts of lowercase letters, digits and '-', \
             each starting and ending with a letter or digit (e.g. audit-logging or cis.5.2.8)",
        ))
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A label key (also annotation keys and finalizers), by the selector module's rules.
pub(super) fn label_key(s: &str) -> Rule {
    crate::selector::validate_key(s).map_err(|e| {
        Problem::invalid(format!(
            "{e}; a key is an optional DNS subdomain prefix and '/', then a name of at most 63 letters, \
             digits, '-', '_' and '.' (e.g. osiriscare.net/role)"
        ))
    })
}

/// A label value.
pub(super) fn label_value(s: &str) -> Rule {
    crate::selector::validate_value(s).map_err(|e| Problem::invalid(format!("label value: {e}")))
}

/// A label selector string, by the selector module's parser.
pub(super) fn selector(s: &str) -> Rule {
    crate::selector::parse(s).map(drop).map_err(|e| {
        Problem::invalid(format!(
            "invalid label selector at position {}: {}; e.g. role=ehr,tier!=test or env in (prod,staging)",
            e.position, e.kind
        ))
    })
}

/// `HH:MM` in 24-hour time.
pub(super) fn time_of_day(s: &str) -> Rule {
    parse_time_of_day(s)
        .map(drop)
        .ok_or_else(|| Problem::invalid("must be HH:MM in 24-hour time, e.g. 02:00 or 23:30"))
}

/// An IANA timezone name.
pub(super) fn timezone(s: &str) -> Rule {
    s.parse::<chrono_tz::Tz>().map(drop).map_err(|_| {
        Problem::invalid(
            "must be an IANA timezone name such as America/New_York, Europe/Berlin or UTC \
             (names are case-sensitive)",
        )
    })
}

/// A duration within `[min, max]`.
pub(super) fn duration_between(value: StdDuration, min: StdDuration, max: StdDuration) -> Rule {
    if value < min || value > max {
        Err(Problem::invalid(format!(
            "must be between {} and {}",
            crate::Duration::from_std(min),
            crate::Duration::from_std(max)
        )))
    } else {
        Ok(())
    }
}

/// An integer within `[min, max]`.
pub(super) fn int_between(value: i64, min: i64, max: i64) -> Rule {
    if value < min || value > max {
        Err(Problem::invalid(format!("must be between {min} and {max}")))
    } else {
        Ok(())
    }
}

/// A string of at most `max` bytes.
pub(super) fn max_len(s: &str, max: usize) -> Rule {
    if s.len() > max {
        Err(Problem::too_long(format!(
            "must be at most {max} bytes, not {}",
            s.len()
        )))
    } else {
        Ok(())
    }
}

/// An absolute URL with one of `schemes`, a host, and no credentials.
pub(super) fn url(s: &str, schemes: &[&str]) -> Rule {
    let allowed = schemes.join(" or ");
    let parsed = url::Url::parse(s).map_err(|e| {
        Problem::invalid(format!(
            "must be an absolute {allowed} URL such as https://example.com/path ({e})"
        ))
    })?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(Problem::invalid(format!(
            "scheme {:?} is not allowed; use {allowed}",
            parsed.scheme()
        )));
    }
    if parsed.host().is_none() {
        return Err(Problem::invalid("must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Problem::invalid(
            "must not carry credentials (they would be shown and logged); use a secretRef",
        ));
    }
    Ok(())
}

/// 64 lowercase hex digits.
pub(super) fn sha256_hex(s: &str) -> Rule {
    if is_lower_hex(s, 64) {
        Ok(())
    } else {
        Err(Problem::invalid(
            "must be a SHA-256 digest: exactly 64 lowercase hex digits",
        ))
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `sha256:` followed by 64 lowercase hex digits.
pub(super) fn digest(s: &str) -> Rule {
    s.strip_prefix("sha256:")
        .filter(|hex| sha256_hex(hex).is_ok())
        .map(drop)
        .ok_or_else(|| Problem::invalid("must be \"sha256:\" followed by 64 lowercase hex digits"))
}

/// A semantic version.
pub(super) fn semver(s: &str) -> Rule {
    semver::Version::parse(s).map(drop).map_err(|e| {
        Problem::invalid(format!(
            "must be a semantic version such as 1.4.2 or 2.0.0-rc.1 ({e})"
        ))
    })
}

/// Standard base64 of exactly `len` bytes, described as `what` in the message.
pub(super) fn base64_bytes(s: &str, len: usize, what: &str) -> Rule {
    match BASE64.decode(s) {
        Ok(bytes) if bytes.len() == len => Ok(()),
        Ok(bytes) => Err(Problem::invalid(format!(
            "must be {what}: standard base64 of exactly {len} bytes, not {}",
            bytes.len()
        ))),
        Err(e) => Err(Problem::invalid(format!(
            "must be {what}: standard base64 of exactly {len} bytes ({e})"
        ))),
    }
}

/// An Ed25519 public key.
pub(super) fn ed25519_public_key(s: &str) -> Rule {
    base64_bytes(s, 32, "an Ed25519 public key")
}

/// An Ed25519 signature.
pub(super) fn ed25519_signature(s: &str) -> Rule {
    base64_bytes(s, 64, "an Ed25519 signature")
}

/// A DSSE keyid as `osc_proto::dsse` derives it: `ed25519:` and 32 lowercase hex digits (the first 16
/// bytes of the SHA-256 of the public key).
pub(super) fn dsse_keyid(s: &str) -> Rule {
    s.strip_prefix("ed25519:")
        .filter(|hex| is_lower_hex(hex, 32))
        .map(drop)
        .ok_or_else(|| {
            Problem::invalid(
                "must be the signing key's DSSE keyid: \"ed25519:\" and 32 lowercase hex digits, the \
                 first 16 bytes of the SHA-256 of its public key",
            )
        })
}

/// A host to connect to: an IP address or a DNS host name.
pub(super) fn host(s: &str) -> Rule {
    if s.parse::<IpAddr>().is_ok() || is_hostname(s) {
        Ok(())
    } else {
        Err(Problem::invalid(
            "must be an IP address or a DNS host name (letters, digits, '-' and '.'), e.g. \
             ehr01.clinic.local or 10.0.0.5",
        ))
    }
}

fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `host:port`, with IPv6 literals in brackets.
pub(super) fn host_port(s: &str) -> Rule {
    let usage = "must be host:port, e.g. logs.msp.example:514 or [2001:db8::1]:514";
    let (host_part, port) = s.rsplit_once(':').ok_or_else(|| Problem::invalid(usage))?;
    let host_ok = match host_part
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
    {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host_part.contains(':') && host(host_part).is_ok(),
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(Problem::invalid(usage))
    }
}

/// A parameter name, usable as an environment variable name.
pub(super) fn env_name(s: &str) -> Rule {
    let mut bytes = s.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(
            "must be an environment variable name: letters, digits and '_', not starting with a digit, \
             at most 128 characters (e.g. MAX_AGE_DAYS)",
        ))
    }
}

/// A control identifier in the notation of `framework`.
pub(super) fn control_id(framework: Framework, id: &str) -> Rule {
    let (ok, example) = match framework {
        Framework::Hipaa => (
            hipaa_citation(id),
            "a HIPAA Security Rule citation such as 164.312(b) or 164.308(a)(1)(ii)(D)",
        ),
        Framework::Soc2 => (
            soc2_criterion(id),
            "a SOC 2 criterion such as CC6.1, A1.2, C1.1, PI1.3 or P4.1",
        ),
        Framework::PciDss => (
            pci_requirement(id),
            "a PCI DSS requirement such as 8.3.6, 12.10.1 or A1.1.1",
        ),
        Framework::NistCsf => (
            nist_csf_subcategory(id),
            "a NIST CSF subcategory such as PR.AC-1 (1.1) or PR.AA-01 (2.0)",
        ),
        Framework::Cis => (
            dotted_numbers(id, 1, 5),
            "a CIS recommendation number such as 5.2.8 or 1.1.1.1",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(format!(
            "is not a {} control id; write {example}",
            framework.as_str()
        )))
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `n(.n)*` with between `min` and `max` numbers.
fn dotted_numbers(s: &str, min: usize, max: usize) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    (min..=max).contains(&parts.len()) && parts.iter().all(|p| is_digits(p))
}

/// `164.` three digits, then any number of `(x)` paragraph designators.
fn hipaa_citation(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("164.") else {
        return false;
    };
    let (Some(section), Some(mut rest)) = (rest.get(..3), rest.get(3..)) else {
        return false;
    };
    if !is_digits(section) {
        return false;
    }
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('(') else {
            return false;
        };
        let Some((designator, after)) = inner.split_once(')') else {
            return false;
        };
        if designator.is_empty() || !designator.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return false;
        }
        rest = after;
    }
    true
}

/// A trust-services category prefix, then `n.n`.
fn soc2_criterion(s: &str) -> bool {
    ["CC", "PI", "A", "C", "P"]
        .iter()
        .find_map(|prefix| s.strip_prefix(prefix))
        .is_some_and(|rest| dotted_numbers(rest, 2, 2))
}

/// A requirement number 1–12 or appendix A1–A3, then up to three `.n`.
fn pci_requirement(s: &str) -> bool {
    let (first, rest) = s.split_once('.').unwrap_or((s, ""));
    let first_ok = match first.strip_prefix('A') {
        Some(appendix) => matches!(appendix, "1" | "2" | "3"),
        None => is_digits(first) && first.parse::<u32>().is_ok_and(|n| (1..=12).contains(&n)),
    };
    first_ok && (rest.is_empty() || dotted_numbers(rest, 1, 3))
}

/// `FN.CA-n` with a CSF function, a two-letter category and one or two digits.
fn nist_csf_subcategory(s: &str) -> bool {
    let Some((function, rest)) = s.split_once('.') else {
        return false;
    };
    let Some((category, number)) = rest.split_once('-') else {
        return false;
    };
    ["GV", "ID", "PR", "DE", "RS", "RC"].contains(&function)
        && category.len() == 2
        && category.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=2).contains(&number.len())
        && is_digits(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rule: Rule) -> bool {
        rule.is_ok()
    }

    #[test]
    fn dns_names_table() {
        let long_label = "a".repeat(64);
        let long_subdomain = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        let cases: &[(&str, bool, bool)] = &[
            // (value, valid label, valid subdomain)
            ("clinic-a", true, true),
            ("a", true, true),
            ("0day", true, true),
            ("cis.5.2.8", false, true),
            ("Clinic", false, false),
            ("-a", false, false),
            ("a-", false, false),
            ("a_b", false, false),
            ("a..b", false, false),
            ("", false, false),
            (&long_label, false, false),
            (&long_subdomain, false, false),
        ];
        for (value, label, subdomain) in cases {
            assert_eq!(ok(dns_label(value)), *label, "label {value:?}");
            assert_eq!(ok(dns_subdomain(value)), *subdomain, "subdomain {value:?}");
        }
        assert_eq!(
            dns_label(&long_label).unwrap_err().reason,
            super::super::FieldErrorReason::TooLong
        );
    }

    #[test]
    fn control_ids_table() {
        use Framework::*;
        let cases = [
            (Hipaa, "164.312(b)", true),
            (Hipaa, "164.308(a)(1)(ii)(D)", true),
            (Hipaa, "164.312", true),
            (Hipaa, "164.31(b)", false),
            (Hipaa, "164.312(b", false),
            (Hipaa, "164.312()", false),
            (Hipaa, "164.31é", false),
            (Hipaa, "CC6.1", false),
            (Soc2, "CC6.1", true),
            (Soc2, "A1.2", true),
            (Soc2, "PI1.3", true),
            (Soc2, "CC6", false),
            (Soc2, "XX6.1", false),
            (PciDss, "8.3.6", true),
            (PciDss, "12.10.1", true),
            (PciDss, "A1.1.1", true),
            (PciDss, "8", true),
            (PciDss, "13.1", false),
            (PciDss, "8.3.6.1.2", false),
            (PciDss, "A4.1", false),
            (NistCsf, "PR.AC-1", true),
            (NistCsf, "PR.AA-01", true),
            (NistCsf, "GV.OC-01", true),
            (NistCsf, "XX.AC-1", false),
            (NistCsf, "PR.AC-001", false),
            (NistCsf, "PR.ac-1", false),
            (Cis, "5.2.8", true),
            (Cis, "1.1.1.1", true),
            (Cis, "5.2.", false),
            (Cis, "v5", false),
        ];
        for (framework, id, expected) in cases {
            assert_eq!(
                ok(control_id(framework, id)),
                expected,
                "{framework:?} {id}"
            );
        }
        let message = control_id(Hipaa, "CC6.1").unwrap_err().message;
        assert!(message.contains("164.308(a)(1)(ii)(D)"), "{message}");
    }

    #[test]
    fn value_formats_table() {
        let key = BASE64.encode([7u8; 32]);
        let sig = BASE64.encode([7u8; 64]);
        let sha = "ab".repeat(32);
        let cases: Vec<(&str, Rule, bool)> = vec![
            ("time 02:00", time_of_day("02:00"), true),
            ("time 24:00", time_of_day("24:00"), false),
            ("tz New York", timezone("America/New_York"), true),
            ("tz UTC", timezone("UTC"), true),
            ("tz lowercase", timezone("america/new_york"), false),
            ("tz garbage", timezone("EST5EDT6"), false),
            (
                "https url",
                url("https://hooks.msp.example/x", &["http", "https"]),
                true,
            ),
            ("ftp url", url("ftp://x/y", &["http", "https"]), false),
            ("relative url", url("/x", &["https"]), false),
            (
                "url with password",
                url("https://u:p@x/y", &["https"]),
                false,
            ),
            ("http for https-only", url("http://x/y", &["https"]), false),
            ("sha256", sha256_hex(&sha), true),
            ("sha256 uppercase", sha256_hex(&sha.to_uppercase()), false),
            ("sha256 short", sha256_hex("abc"), false),
            ("digest", digest(&format!("sha256:{sha}")), true),
            ("digest without prefix", digest(&sha), false),
            ("semver", semver("1.4.2"), true),
            ("semver pre-release", semver("2.0.0-rc.1"), true),
            ("semver v-prefix", semver("v1.4.2"), false),
            ("semver two parts", semver("1.4"), false),
            ("ed25519 key", ed25519_public_key(&key), true),
            (
                "ed25519 key 31 bytes",
                ed25519_public_key(&BASE64.encode([7u8; 31])),
                false,
            ),
            (
                "ed25519 key not base64",
                ed25519_public_key("not base64!"),
                false,
            ),
            ("ed25519 sig", ed25519_signature(&sig), true),
            ("ed25519 sig as key", ed25519_signature(&key), false),
            (
                "dsse keyid",
                dsse_keyid("ed25519:0123456789abcdef0123456789abcdef"),
                true,
            ),
            ("dsse keyid as a name", dsse_keyid("release-2026-a"), false),
            (
                "dsse keyid uppercase",
                dsse_keyid("ed25519:0123456789ABCDEF0123456789ABCDEF"),
                false,
            ),
            (
                "dsse keyid whole digest",
                dsse_keyid(&format!("ed25519:{sha}")),
                false,
            ),
            ("host ip", host("10.0.0.5"), true),
            ("host ipv6", host("2001:db8::1"), true),
            ("host name", host("EHR01.clinic.local"), true),
            ("host with space", host("ehr 01"), false),
            ("host with scheme", host("ssh://ehr01"), false),
            ("host:port", host_port("logs.msp.example:514"), true),
            ("[v6]:port", host_port("[2001:db8::1]:6514"), true),
            ("no port", host_port("logs.msp.example"), false),
            ("port 0", host_port("logs:0"), false),
            ("bare v6", host_port("2001:db8::1:514"), false),
            ("env name", env_name("MAX_AGE_DAYS"), true),
            ("env name digit", env_name("1X"), false),
            ("env name dash", env_name("max-age"), false),
            ("selector", selector("role=ehr,tier!=test"), true),
            ("selector empty", selector(""), true),
            ("selector broken", selector("role in (a"), false),
            ("label key", label_key("osiriscare.net/role"), true),
            ("label key bad", label_key("-role"), false),
            ("label value", label_value("ehr"), true),
            ("label value bad", label_value("a b"), false),
            ("within bounds", int_between(3, 1, 10), true),
            ("out of bounds", int_between(11, 1, 10), false),
            ("short enough", max_len("abc", 3), true),
            ("too long", max_len("abcd", 3), false),
            (
                "duration in range",
                duration_between(
                    StdDuration::from_secs(60),
                    StdDuration::from_secs(1),
                    StdDuration::from_secs(3600),
                ),
                true,
            ),
            (
                "duration zero",
                duration_between(
                    StdDuration::ZERO,
                    StdDuration::from_secs(1),
                    StdDuration::from_secs(3600),
                ),
                false,
            ),
        ];
        for (name, rule, expected) in cases {
            assert_eq!(rule.is_ok(), expected, "{name}: {rule:?}");
        }
    }

    #[test]
    fn messages_say_what_is_allowed() {
        let cases = [
            (
                time_of_day("25:00"),
                "must be HH:MM in 24-hour time, e.g. 02:00",
            ),
            (timezone("Mars/Olympus"), "America/New_York"),
            (
                selector("role in (a"),
                "invalid label selector at position 10",
            ),
            (
                duration_between(
                    StdDuration::ZERO,
                    StdDuration::from_secs(1),
                    StdDuration::from_secs(3600),
                ),
                "must be between 1s and 1h",
            ),
            (ed25519_public_key("AAAA"), "exactly 32 bytes, not 3"),
        ];
        for (rule, expected) in cases {
            let message = rule.unwrap_err().message;
            assert!(
                message.contains(expected),
                "{expected:?} not in {message:?}"
            );
        }
    }
}
