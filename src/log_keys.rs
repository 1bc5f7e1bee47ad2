//! AWS's key layouts for log objects, and what a key in one of them says: whose logs
//! the object holds (docs/DESIGN.md, "A record speaks only for its own account").
//!
//! - Bedrock model-invocation logs: `[prefix/]AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<file>`,
//!   with large payloads in a `data/` folder below the region.
//! - CloudTrail: `[prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`.
//! - An organization trail: `[prefix/]AWSLogs/<org-id>/<account>/CloudTrail/<region>/...`.
//!
//! Every key with an `AWSLogs/<account>/` (or `AWSLogs/<org-id>/<account>/`) pair
//! speaks only for that account, whatever follows it ([`key_account`]): the first
//! such pair decides, so a writer confined to `AWSLogs/<its account>/` (the
//! organization bucket's policy) cannot speak for another account by nesting a pair
//! deeper, or by writing outside the services' folders.

/// The folder name under which AWS services write their logs.
pub const AWS_LOGS: &str = "AWSLogs";
/// Bedrock's folder below the account.
pub const BEDROCK_FOLDER: &str = "BedrockModelInvocationLogs";
/// CloudTrail's folder below the account.
pub const CLOUDTRAIL_FOLDER: &str = "CloudTrail";

/// Which service's layout a key follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    BedrockInvocationLogs,
    CloudTrail,
}

/// A key in one of AWS's log layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKey<'a> {
    /// The account whose folder holds the object.
    pub account: &'a str,
    /// The organization of an organization trail's folder.
    pub organization: Option<&'a str>,
    pub service: Service,
    /// What follows the service's folder: `<region>/YYYY/MM/DD/...`.
    pub rest: &'a str,
}

impl LogKey<'_> {
    /// Bedrock's large-payload file (`<region>/.../data/<file>`): its invocation, with
    /// the error code, is logged in the main log line.
    pub fn is_large_payload(&self) -> bool {
        if self.service != Service::BedrockInvocationLogs {
            return false;
        }
        let mut folders = self.rest.split('/').collect::<Vec<_>>();
        folders.pop(); // the file name
        folders.iter().skip(1).any(|f| *f == "data")
    }
}

/// A 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Bytes of a Region name accepted (AWS's are at most 14 or so).
pub const MAX_REGION_BYTES: usize = 32;

/// Whether `region` can be a Region name: lower-case letters, digits and `-`, at most
/// [`MAX_REGION_BYTES`].
pub fn is_region_name(region: &str) -> bool {
    (2..=MAX_REGION_BYTES).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An AWS Organizations id: `o-` and 10 to 32 lower-case letters or digits.
pub fn is_organization_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|r| {
        (10..=32).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// The layout `key` follows, if any: decided by its first `AWSLogs` segment.
pub fn parse(key: &str) -> Option<LogKey<'_>> {
    let mut at = 0;
    let mut segments = key.split('/');
    loop {
        let segment = segments.next()?;
        at += segment.len() + 1;
        if segment == AWS_LOGS {
            break;
        }
    }
    let first = segments.next()?;
    let (organization, account) = if is_organization_id(first) {
        (Some(first), segments.next()?)
    } else {
        (None, first)
    };
    let folder = segments.next()?;
    if !is_account_id(account) {
        return None;
    }
    let service = match (folder, organization) {
        (BEDROCK_FOLDER, None) => Service::BedrockInvocationLogs,
        (CLOUDTRAIL_FOLDER, _) => Service::CloudTrail,
        _ => return None,
    };
    let consumed =
        at + organization.map_or(0, |o| o.len() + 1) + account.len() + 1 + folder.len() + 1;
    Some(LogKey {
        account,
        organization,
        service,
        rest: key.get(consumed..).unwrap_or_default(),
    })
}

/// The account the object at `key` speaks for: the account of the first
/// `AWSLogs/<account>/` or `AWSLogs/<org-id>/<account>/` pair in the key, whatever
/// follows it (a service folder of AWS's layouts or any other).
pub fn key_account(key: &str) -> Option<&str> {
    let mut segments = key.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segment != AWS_LOGS {
            continue;
        }
        let &first = segments.peek()?;
        if is_account_id(first) {
            return Some(first);
        }
        if is_organization_id(first) {
            segments.next();
            if let Some(&account) = segments.peek() {
                if is_account_id(account) {
                    return Some(account);
                }
            }
        }
    }
    None
}

/// The Region folder of a key in one of AWS's layouts (`<region>/YYYY/...`), when it
/// can be a Region name ([`is_region_name`]).
pub fn region<'a>(key: &LogKey<'a>) -> Option<&'a str> {
    let region = key.rest.split('/').next()?;
    is_region_name(region).then_some(region)
}

/// The account and Region of a CloudTrail log stream in CloudWatch Logs:
/// `<account>_CloudTrail_<region>[_<n>]`, or an organization trail's
/// `<org-id>_<account>_CloudTrail_<region>[_<n>]`. CloudTrail names the stream; only
/// the log group's account and CloudTrail can write to it.
pub fn cloudtrail_stream(stream: &str) -> Option<(Option<&str>, &str, &str)> {
    let mut parts = stream.split('_');
    let mut first = parts.next()?;
    let organization = if is_organization_id(first) {
        let org = first;
        first = parts.next()?;
        Some(org)
    } else {
        None
    };
    if !is_account_id(first) || parts.next()? != CLOUDTRAIL_FOLDER {
        return None;
    }
    let region = parts.next()?;
    match parts.next() {
        None => {}
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {}
        Some(_) => return None,
    }
    if parts.next().is_some() || !is_region_name(region) {
        return None;
    }
    Some((organization, first, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_layouts() {
        let b = parse(
            "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/x.json.gz",
        )
        .expect("bedrock");
        assert_eq!(b.account, "111122223333");
        assert_eq!(b.service, Service::BedrockInvocationLogs);
        assert_eq!(b.rest, "us-east-1/2026/03/14/09/x.json.gz");
        assert!(!b.is_large_payload());

        let t = parse("team/AWSLogs/444455556666/CloudTrail/eu-west-1/2026/03/14/f.json.gz")
            .expect("trail");
        assert_eq!(
            (t.account, t.service, t.organization),
            ("444455556666", Service::CloudTrail, None)
        );

        let o =
            parse("AWSLogs/o-a1b2c3d4e5/444455556666/CloudTrail/us-east-1/2026/03/14/f.json.gz")
                .expect("organization trail");
        assert_eq!(o.account, "444455556666");
        assert_eq!(o.organization, Some("o-a1b2c3d4e5"));
        assert_eq!(o.rest, "us-east-1/2026/03/14/f.json.gz");
        // Only CloudTrail writes below an organization id.
        assert_eq!(
            parse("AWSLogs/o-a1b2c3d4e5/444455556666/BedrockModelInvocationLogs/us-east-1/x"),
            None
        );
    }

    #[test]
    fn keys_outside_the_layouts() {
        for key in [
            "exports/team a/bedrock invocations.json",
            "AWSLogs/not-an-account/CloudTrail/us-east-1/x.json",
            "AWSLogs/11112222333/CloudTrail/us-east-1/x.json",
            "AWSLogs/111122223333/Config/us-east-1/x.json",
            "AWSLogs/111122223333",
            "plain.json",
        ] {
            assert_eq!(parse(key), None, "{key}");
        }
    }

    #[test]
    fn the_first_account_pair_decides_whatever_follows() {
        let nested =
            "AWSLogs/111122223333/CloudTrail/us-east-1/AWSLogs/444455556666/CloudTrail/x.json";
        assert_eq!(key_account(nested), Some("111122223333"));
        for key in [
            "AWSLogs/111122223333/notes/x.json",
            "AWSLogs/111122223333/AWSLogs/444455556666/BedrockModelInvocationLogs/us-east-1/x",
            "AWSLogs/111122223333/x.json",
            "team/AWSLogs/111122223333/Config/us-east-1/x.json",
            "AWSLogs/o-a1b2c3d4e5/111122223333/notes/AWSLogs/444455556666/x",
        ] {
            assert_eq!(key_account(key), Some("111122223333"), "{key}");
            assert_eq!(parse(key), None, "outside the services' layouts: {key}");
        }
        // An AWSLogs segment without an account is no pair: the next one decides.
        let odd = "AWSLogs/other/AWSLogs/444455556666/CloudTrail/us-east-1/x.json";
        assert_eq!(key_account(odd), Some("444455556666"));
        for key in [
            "exports/x.json",
            "AWSLogs/",
            "AWSLogs",
            "AWSLogs/11112222333/x.json",
            "AWSLogs/o-a1b2c3d4e5/x.json",
            "xAWSLogs/111122223333/x.json",
        ] {
            assert_eq!(key_account(key), None, "{key}");
        }
    }

    #[test]
    fn cloudtrail_log_streams() {
        assert_eq!(
            cloudtrail_stream("111122223333_CloudTrail_us-east-1"),
            Some((None, "111122223333", "us-east-1"))
        );
        assert_eq!(
            cloudtrail_stream("o-a1b2c3d4e5_444455556666_CloudTrail_eu-west-1_2"),
            Some((Some("o-a1b2c3d4e5"), "444455556666", "eu-west-1"))
        );
        for stream in [
            "2026/03/14/[$LATEST]abc",
            "111122223333_CloudTrail",
            "111122223333_Other_us-east-1",
            "o-a1b2c3d4e5_CloudTrail_us-east-1",
            "111122223333_CloudTrail_us-east-1_x",
            "111122223333_CloudTrail_us-east-1_2_3",
            "111122223333_CloudTrail_US",
        ] {
            assert_eq!(cloudtrail_stream(stream), None, "{stream}");
        }
    }

    #[test]
    fn region_folders() {
        let key = |k| parse(k).expect("layout");
        assert_eq!(
            region(&key(
                "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/14/f.json.gz"
            )),
            Some("eu-west-1")
        );
        assert_eq!(
            region(&key(
                "AWSLogs/111122223333/CloudTrail/EU West/2026/f.json.gz"
            )),
            None
        );
    }

    #[test]
    fn large_payloads_only_where_bedrock_puts_them() {
        let large = |key: &str| parse(key).is_some_and(|k| k.is_large_payload());
        assert!(large(
            "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/data/abc.json.gz"
        ));
        assert!(!large(
            "security/data/bedrock/AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/x.json.gz"
        ));
        assert!(!large(
            "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/data"
        ));
        assert!(!large(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/14/data/x.json.gz"
        ));
    }

    #[test]
    fn organization_ids() {
        assert!(is_organization_id("o-a1b2c3d4e5"));
        assert!(!is_organization_id("o-short"));
        assert!(!is_organization_id("o-A1B2C3D4E5"));
        assert!(!is_organization_id("111122223333"));
    }
}
