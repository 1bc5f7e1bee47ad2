//! What an ARN says: its fields, the account a principal belongs to, a principal
//! without its session, and the partition of a Region.

/// The fields of an ARN, `arn:<partition>:<service>:<region>:<account>:<resource>`
/// (the resource keeps its own colons).
pub struct ArnParts<'a> {
    pub service: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

pub fn arn_parts(arn: &str) -> Option<ArnParts<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some(service), Some(_), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some(ArnParts {
        service,
        account,
        resource,
    })
}

/// The account an IAM or STS principal ARN names (`arn:<partition>:<service>::<account>:...`),
/// when it is a 12-digit account id.
pub fn principal_account(arn: &str) -> Option<&str> {
    let account = arn_parts(arn)?.account;
    crate::log_keys::is_account_id(account).then_some(account)
}

/// An STS principal without its session: `(arn:<partition>:sts::<account>:assumed-role/<role>,
/// <session>)` for an assumed role, `(arn:<partition>:sts::<account>:federated-user,
/// <name>)` for a federated user. IAM users, root and anything else have no session.
pub fn without_session(arn: &str) -> Option<(&str, &str)> {
    principal_account(arn)?;
    let ArnParts {
        service, resource, ..
    } = arn_parts(arn)?;
    if service != "sts" {
        return None;
    }
    let resource_start = arn.len() - resource.len();
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        let (role, session) = rest.split_once('/')?;
        if role.is_empty() || session.is_empty() {
            return None;
        }
        let end = resource_start + "assumed-role/".len() + role.len();
        return Some((&arn[..end], session));
    }
    let name = resource.strip_prefix("federated-user/")?;
    (!name.is_empty()).then(|| (&arn[..resource_start + "federated-user".len()], name))
}

/// The principal a rule that looks across sessions groups by: the role or federated
/// principal without its session, else the principal as written.
pub fn principal_without_session(arn: &str) -> &str {
    without_session(arn).map_or(arn, |(principal, _)| principal)
}

/// The AWS partition of a region, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_come_off_assumed_roles_and_federated_users_only() {
        assert_eq!(
            without_session("arn:aws:sts::111122223333:assumed-role/ops/i-0abc"),
            Some(("arn:aws:sts::111122223333:assumed-role/ops", "i-0abc"))
        );
        assert_eq!(
            without_session("arn:aws:sts::111122223333:federated-user/carol"),
            Some(("arn:aws:sts::111122223333:federated-user", "carol"))
        );
        for none in [
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:root",
            "arn:aws:sts::111122223333:assumed-role/ops",
            "arn:aws:sts::111122223333:assumed-role/ops/",
            "arn:aws:iam::111122223333:role/assumed-role/x/y",
            "arn:aws:sts::not-an-account:assumed-role/ops/s",
            "assumed-role/ops/s",
        ] {
            assert_eq!(without_session(none), None, "{none}");
            assert_eq!(principal_without_session(none), none);
        }
        assert_eq!(
            principal_without_session("arn:aws-cn:sts::111122223333:assumed-role/r/s/extra"),
            "arn:aws-cn:sts::111122223333:assumed-role/r"
        );
    }
}
